/** Runs the bundled `relavium` binary as a child process, as a user would. */
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

export const root = fileURLToPath(new URL("../../../", import.meta.url))
const bin = join(root, "apps/cli/bin/relavium.mjs")

export interface Result {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/** One data directory per test file, so tests never touch the user's own runs. */
const defaultDataDir = mkdtempSync(join(tmpdir(), "relavium-data-"))

export const relavium = (
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly input?: string; readonly env?: Readonly<Record<string, string>> } = {}
): Result => {
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd: options.cwd ?? root,
    input: options.input,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", RELAVIUM_DATA_DIR: defaultDataDir, ...options.env },
    timeout: 60_000
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

export const tempFile = (name: string, content: string): string => {
  const dir = mkdtempSync(join(tmpdir(), "relavium-test-"))
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

export const ndjson = (stdout: string) =>
  stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { type: string; sequenceNumber: number; [k: string]: unknown })

/** The same, without blocking this process (needed when the test itself serves HTTP to the CLI). */
export const relaviumAsync = (
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly input?: string; readonly env?: Readonly<Record<string, string>> } = {}
): Promise<Result> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: options.cwd ?? root,
      env: { ...process.env, NO_COLOR: "1", RELAVIUM_DATA_DIR: defaultDataDir, ...options.env }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")))
    child.on("error", reject)
    if (options.input !== undefined) child.stdin.end(options.input)
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })

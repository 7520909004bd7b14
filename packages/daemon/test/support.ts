/**
 * Test helpers: temporary workspaces on disk, a daemon started in a test's
 * scope, and a one-call helper that returns the result or the ToolError.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Context, Effect, Layer, Stream } from "effect"
import { DaemonRouter, type ToolError, type ToolResult } from "@relavium/ports"
import { collectResult, type DaemonOptions, type DaemonService, makeDaemon, type ToolPolicy } from "../src/index.js"

/** A fresh directory under the system temp dir, removed when the process exits. */
export const tempDir = (prefix = "relavium-daemon-"): string => {
  const dir = Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix)))
  process.once("exit", () => Fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A workspace with a few files in it. */
export const makeWorkspace = (files: Record<string, string> = {}): string => {
  const root = tempDir()
  for (const [name, content] of Object.entries(files)) {
    const file = Path.join(root, name)
    Fs.mkdirSync(Path.dirname(file), { recursive: true })
    Fs.writeFileSync(file, content)
  }
  return root
}

export const startDaemon = (options: DaemonOptions) => makeDaemon(options)

let callCounter = 0
export const callOf = (name: string, args: unknown, policy?: ToolPolicy) => ({
  runId: "run-test",
  nodeId: "agent",
  callId: `call-${++callCounter}`,
  name,
  args,
  policy
})

/** Runs one call to its result; a ToolError comes back as a value. */
export const run = (
  daemon: DaemonService,
  name: string,
  args: unknown,
  policy?: ToolPolicy
): Effect.Effect<ToolResult | ToolError> =>
  collectResult(daemon.execute(callOf(name, args, policy))).pipe(Effect.merge)

export const isToolError = (value: ToolResult | ToolError): value is ToolError => "_tag" in value && value._tag === "ToolError"

/** Every chunk of one call, in order. */
export const chunks = (daemon: DaemonService, name: string, args: unknown, policy?: ToolPolicy) =>
  daemon.execute(callOf(name, args, policy)).pipe(Stream.runCollect, Effect.map((c) => [...c]))

/** Whether a process with this pid exists (a zombie counts as gone). */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z"
  } catch {
    return false
  }
}

/** Polls until `check` holds or `timeoutMs` passes. */
export const waitFor = (check: () => boolean, timeoutMs = 5000, what = "condition") =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("25 millis")
    }
  })

export const readPids = (file: string): Array<number> =>
  Fs.existsSync(file)
    ? Fs.readFileSync(file, "utf8")
        .split(/\s+/)
        .filter((s) => s !== "")
        .map(Number)
    : []

/** The router a layer provides, built in the test's scope (so it lives until the test ends). */
export const routerFrom = (layer: Layer.Layer<DaemonRouter>) => Layer.build(layer).pipe(Effect.map(Context.get(DaemonRouter)))

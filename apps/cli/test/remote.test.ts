/**
 * `relavium run|gate|runs --server URL` against a `relavium monolith` child
 * process over HTTPS on loopback: the CLI finds the monolith's certificate and
 * token in the data directory (RELAVIUM_DATA_DIR), follows the run over SSE and
 * exits as a local run does.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ndjson, relaviumAsync, root } from "./relavium.js"

const bin = join(root, "apps/cli/bin/relavium.mjs")
const dataDir = mkdtempSync(join(tmpdir(), "relavium-remote-"))
let monolith: ChildProcess
let url: string

beforeAll(async () => {
  monolith = spawn(process.execPath, [bin, "monolith", "--port", "0", "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" }
  })
  let output = ""
  monolith.stdout!.on("data", (chunk) => (output += chunk))
  monolith.stderr!.on("data", (chunk) => (output += chunk))
  url = await new Promise<string>((resolve, reject) => {
    monolith.stdout!.on("data", () => {
      const match = /listening on (https:\/\/\S+)/.exec(output)
      if (match) resolve(match[1]!)
    })
    monolith.once("exit", (code) => reject(new Error(`monolith exited with ${code}:\n${output}`)))
    setTimeout(() => reject(new Error(`monolith did not start:\n${output}`)), 20_000).unref()
  })
}, 30_000)

afterAll(async () => {
  if (monolith && monolith.exitCode === null && monolith.signalCode === null) {
    const exited = new Promise((r) => monolith.once("exit", r))
    monolith.kill("SIGTERM")
    await exited
  }
  rmSync(dataDir, { recursive: true, force: true })
})

const env = () => ({ RELAVIUM_DATA_DIR: dataDir })

describe("relavium --server", () => {
  it("runs a workflow on the monolith and prints its events as NDJSON (exit 0)", async () => {
    const r = await relaviumAsync(["run", "examples/parallel-merge.relavium.yaml", "--server", url, "--json"], { env: env() })
    expect(r.status, r.stderr).toBe(0)
    const events = ndjson(r.stdout)
    expect(events[0]!.type).toBe("run:started")
    expect(events.map((e) => e.sequenceNumber)).toEqual(events.map((_, i) => i))
    expect(events.at(-1)).toMatchObject({
      type: "run:completed",
      outputs: {
        result: {
          count: 3,
          findings: ["loop reads past the end of the array (use <)", "rename t to total", "split the function over several lines"]
        }
      }
    })
  })

  it("renders like a local run", async () => {
    const r = await relaviumAsync(["run", "examples/parallel-merge.relavium.yaml", "--server", url], { env: env() })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain("Running Parallel fan-out with merge")
    expect(r.stdout).toMatch(/Completed .* ms/)
    const token = readFileSync(join(dataDir, "monolith.token"), "utf8").trim()
    expect(r.stdout + r.stderr).not.toContain(token)
  })

  it("stops at a human gate (exit 3), and `gate --approve --server` finishes the run there", async () => {
    const r = await relaviumAsync(
      ["run", "examples/approval-gate.relavium.yaml", "--server", url, "--json", "--input", "version=2.0.1"],
      { env: env() }
    )
    expect(r.status, r.stderr).toBe(3)
    const events = ndjson(r.stdout)
    expect(events.at(-1)!.type).toBe("run:paused")
    const runId = events[0]!.runId as string
    const shown = await relaviumAsync(["runs", "show", runId, "--server", url, "--json"], { env: env() })
    expect(shown.status, shown.stderr).toBe(0)
    expect(JSON.parse(shown.stdout)).toMatchObject({ status: "waiting", workflowName: "approval-gate", inputs: { version: "2.0.1" } })
    const decided = await relaviumAsync(["gate", runId, "--approve", "--server", url, "--json"], { env: env() })
    expect(decided.status, decided.stderr).toBe(0)
    const rest = ndjson(decided.stdout)
    expect(rest[0]!.sequenceNumber).toBe(events.at(-1)!.sequenceNumber + 1)
    expect(rest.at(-1)).toMatchObject({ type: "run:completed", outputs: { result: { released: "2.0.1", approved: "approved" } } })
    const list = await relaviumAsync(["runs", "list", "--server", url, "--json", "--status", "completed"], { env: env() })
    expect(list.status, list.stderr).toBe(0)
    expect((JSON.parse(list.stdout) as Array<{ runId: string }>).map((x) => x.runId)).toContain(runId)
  })

  it("says the token was refused (exit 2) and never prints it", async () => {
    const r = await relaviumAsync(
      ["run", "examples/parallel-merge.relavium.yaml", "--server", url, "--token", "not-the-token-123456"],
      { env: env() }
    )
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/refused the bearer token \(401\)/)
    expect(r.stderr).not.toContain("not-the-token-123456")
    expect(r.stdout).toBe("")
  })

  it("reports input problems before contacting the server (exit 2)", async () => {
    const r = await relaviumAsync(["run", "examples/parallel-merge.relavium.yaml", "--server", url, "-i", "nope=1", "--json"], { env: env() })
    expect(r.status).toBe(2)
    expect(JSON.parse(r.stderr)).toMatchObject({ type: "error", message: expect.stringContaining("inputs.nope: unknown input") })
  })

  it("names an unreachable server and says how to start one (exit 2)", async () => {
    const r = await relaviumAsync(["run", "examples/parallel-merge.relavium.yaml", "--server", "https://127.0.0.1:1"], { env: env() })
    expect(r.status).toBe(2)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(r.stderr).toContain("cannot reach a relavium monolith at https://127.0.0.1:1")
    expect(r.stderr).toContain("relavium monolith")
  })

  it("refuses an untrusted certificate with a hint (exit 2)", async () => {
    const other = mkdtempSync(join(tmpdir(), "relavium-remote-empty-"))
    try {
      const r = await relaviumAsync(
        ["run", "examples/parallel-merge.relavium.yaml", "--server", url, "--token", "x".repeat(20)],
        { env: { RELAVIUM_DATA_DIR: other } }
      )
      expect(r.status).toBe(2)
      expect(r.stderr).toMatch(/TLS certificate is not trusted.*--ca/)
    } finally {
      rmSync(other, { recursive: true, force: true })
    }
  })
})

/**
 * `relavium runs logs|cancel` and `relavium resume` with `--server URL`
 * against a `relavium monolith` child process: the same output and exit codes
 * as the local commands (compared on the same data directory).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { exited, type Monolith, startMonolith } from "../../../packages/server/test/support/monolith.js"
import { ndjson, relaviumAsync, root } from "./relavium.js"

const bin = join(root, "apps/cli/bin/relavium.mjs")
const codeReviewCassette = "examples/cassettes/code-review.cassette.json"
const dataDir = mkdtempSync(join(tmpdir(), "relavium-remote-runs-"))
let m: Monolith

beforeAll(async () => {
  // The cassette stands in for the model of the run resumed here (the other workflows need none).
  m = await startMonolith(dataDir, ["--cassette", join(root, codeReviewCassette)])
}, 60_000)

afterAll(async () => {
  await m?.stop()
  rmSync(dataDir, { recursive: true, force: true })
})

const cli = (args: ReadonlyArray<string>) => relaviumAsync(args, { env: { RELAVIUM_DATA_DIR: dataDir } })
const remote = (args: ReadonlyArray<string>) => cli([...args, "--server", m.url])

/** A run of the approval-gate example, paused at its gate (exit 3). */
const pausedRun = async (version: string) => {
  const r = await remote(["run", "examples/approval-gate.relavium.yaml", "--json", "--input", `version=${version}`])
  expect(r.status, r.stderr).toBe(3)
  const events = ndjson(r.stdout)
  expect(events.at(-1)!.type).toBe("run:paused")
  return { runId: events[0]!.runId as string, events }
}

/** `relavium ARGS` running in the background, with its output so far. */
const background = (args: ReadonlyArray<string>) => {
  const child: ChildProcess = spawn(process.execPath, [bin, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", RELAVIUM_DATA_DIR: dataDir }
  })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString("utf8")))
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")))
  const printed = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => pattern.test(stdout) && resolve()
      check()
      child.stdout!.on("data", check)
      child.once("exit", (code) => reject(new Error(`exited with ${code} before printing ${pattern}:\n${stdout}${stderr}`)))
      setTimeout(() => reject(new Error(`did not print ${pattern} in time:\n${stdout}${stderr}`)), 20_000).unref()
    })
  return { child, printed, exit: exited(child), stdout: () => stdout, stderr: () => stderr }
}

describe("relavium runs logs --server", () => {
  it("prints the stored log exactly as the local command does, rendered and as NDJSON", async () => {
    const run = await remote(["run", "examples/parallel-merge.relavium.yaml", "--json"])
    expect(run.status, run.stderr).toBe(0)
    const runId = ndjson(run.stdout)[0]!.runId as string

    const json = await remote(["runs", "logs", runId, "--json"])
    expect(json.status, json.stderr).toBe(0)
    expect(json.stdout).toBe(run.stdout)
    // The same events (a local read of the store orders each object's keys differently).
    const localJson = await cli(["runs", "logs", runId, "--json", "--data-dir", dataDir])
    expect(ndjson(json.stdout)).toEqual(ndjson(localJson.stdout))

    const rendered = await remote(["runs", "logs", runId])
    const localRendered = await cli(["runs", "logs", runId, "--data-dir", dataDir])
    expect(rendered.status, rendered.stderr).toBe(0)
    expect(rendered.stdout).toBe(localRendered.stdout)
    expect(rendered.stdout).toContain(`Running parallel-merge run ${runId}`)
    expect(rendered.stdout + rendered.stderr).not.toContain(m.token)
  })

  it("of a paused run: prints up to the pause and exits 0; with --follow it keeps going through the gate to the end", async () => {
    const { events, runId } = await pausedRun("4.0.0")
    const upToPause = await remote(["runs", "logs", runId, "--json"])
    expect(upToPause.status, upToPause.stderr).toBe(0)
    expect(ndjson(upToPause.stdout)).toEqual(events)
    expect(upToPause.stderr).toBe("")

    const follower = background(["runs", "logs", runId, "--follow", "--json", "--server", m.url])
    await follower.printed(/"type":"run:paused"/)
    const approved = await remote(["gate", runId, "--approve", "--json"])
    expect(approved.status, approved.stderr).toBe(0)
    expect(await follower.exit).toBe(0)
    const followed = ndjson(follower.stdout())
    expect(followed.map((e) => e.sequenceNumber)).toEqual(followed.map((_, i) => i))
    expect(followed.at(-1)).toMatchObject({ type: "run:completed" })
    const stored = await remote(["runs", "logs", runId, "--json"])
    expect(follower.stdout()).toBe(stored.stdout)
  })

  it("an unknown run is exit 2 with one line", async () => {
    const r = await remote(["runs", "logs", "no-such-run"])
    expect(r.status).toBe(2)
    expect(r.stderr.trim().split("\n")).toEqual(["relavium: no run with id no-such-run"])
  })
})

describe("relavium runs cancel --server", () => {
  it("cancels a waiting run, then says it had already ended (exit 0 both times); resume then refuses (exit 2)", async () => {
    const { runId } = await pausedRun("5.0.0")
    const cancelled = await remote(["runs", "cancel", runId])
    expect(cancelled.status, cancelled.stderr).toBe(0)
    expect(cancelled.stdout).toBe(`run ${runId} cancelled\n`)
    const again = await remote(["runs", "cancel", runId])
    expect(again.status, again.stderr).toBe(0)
    expect(again.stdout).toBe(`run ${runId} had already ended (cancelled)\n`)
    const json = await remote(["runs", "cancel", runId, "--json"])
    expect(JSON.parse(json.stdout)).toEqual({ runId, status: "cancelled" })
    const local = await cli(["runs", "cancel", runId, "--data-dir", dataDir])
    expect(again.stdout).toBe(local.stdout)
    const shown = await remote(["runs", "show", runId, "--json"])
    expect(JSON.parse(shown.stdout)).toMatchObject({ status: "cancelled" })

    const resumed = await remote(["resume", runId])
    const resumedLocally = await cli(["resume", runId, "--data-dir", dataDir])
    expect(resumed.status).toBe(2)
    expect(resumed.stderr).toBe(`relavium: run ${runId} has already ended (cancelled); nothing to resume\n`)
    expect(resumed.stderr).toBe(resumedLocally.stderr)
  })

  it("an unknown run is exit 2", async () => {
    const r = await remote(["runs", "cancel", "no-such-run", "--json"])
    expect(r.status).toBe(2)
    expect(JSON.parse(r.stderr)).toMatchObject({ type: "error", code: "not_found", message: "no run with id no-such-run" })
  })
})

describe("relavium resume --server", () => {
  it("continues on the monolith a run whose process was killed, printing the events after where it stopped (exit 0)", async () => {
    // A local run on the monolith's data directory, killed while its agent streams.
    const local = background([
      "run", "examples/code-review.relavium.yaml", "--json", "--data-dir", dataDir,
      "--cassette", codeReviewCassette, "--token-delay-ms", "50"
    ])
    await local.printed(/"type":"agent:token"/)
    local.child.kill("SIGKILL")
    await local.exit
    const runId = ndjson(local.stdout().split("\n")[0]!)[0]!.runId as string
    const before = await remote(["runs", "show", runId, "--json"])
    expect(JSON.parse(before.stdout)).toMatchObject({ status: "running" })
    const stoppedAt = JSON.parse(before.stdout).lastSequenceNumber as number

    const resumed = await remote(["resume", runId, "--json"])
    expect(resumed.status, resumed.stderr).toBe(0)
    const events = ndjson(resumed.stdout)
    expect(events[0]!.sequenceNumber).toBe(stoppedAt + 1)
    expect(events.at(-1)).toMatchObject({ type: "run:completed" })
    const stored = ndjson((await remote(["runs", "logs", runId, "--json"])).stdout)
    expect(stored.slice(stoppedAt + 1)).toEqual(events)
  })

  it("--workspace belongs to the monolith, not to a remote resume (exit 2)", async () => {
    const r = await remote(["resume", "any-run", "--workspace", "."])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain("--workspace applies to local runs")
  })
})

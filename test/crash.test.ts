/**
 * Crash safety, end to end: real `relavium run` processes are SIGKILLed at many
 * points, continued with `relavium resume`, and the event logs are checked:
 * every run completes with the outputs of an uninterrupted run, sequence
 * numbers have no gap, and no completed node ran again.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ndjson, relavium, relaviumAsync, root } from "../apps/cli/test/relavium.js"

// Each busy node spins for a few tens of milliseconds so a kill can land inside it, and stays far
// below the sandbox's 1 s limit on an expression even on a loaded machine.
const busy = (value: string) => `'(() => { let x = 0; for (let i = 0; i < 300000; i++) x += i % 7; return ${value} })()'`
const workflow = `schema_version: '1.0'
workflow:
  id: crash-chain
  nodes:
    - { id: start, type: input }
    - { id: split, type: parallel, parallel_of: [left, right] }
    - { id: left, type: transform, transform: ${busy('"L"')} }
    - { id: right, type: transform, transform: ${busy('"R"')} }
    - { id: both, type: merge, merge_strategy: concat }
    - { id: step-1, type: transform, transform: ${busy('run.outputs["both"].join("") + "1"')} }
    - { id: step-2, type: transform, transform: ${busy('run.outputs["step-1"] + "2"')} }
    - { id: step-3, type: transform, transform: ${busy('run.outputs["step-2"] + "3"')} }
    - { id: out, type: output }
  edges:
    - { from: start, to: split }
    - { from: left, to: both }
    - { from: right, to: both }
    - { from: both, to: step-1 }
    - { from: step-1, to: step-2 }
    - { from: step-2, to: step-3 }
    - { from: step-3, to: out }
`

const bin = join(root, "apps/cli/bin/relavium.mjs")

/** Starts `relavium run --json` and SIGKILLs it right after it has printed `killAfter` events. */
const runAndKill = (file: string, dataDir: string, killAfter: number) =>
  new Promise<{ runId: string; seen: number }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "run", file, "--json"], {
      cwd: root,
      env: { ...process.env, RELAVIUM_DATA_DIR: dataDir, NO_COLOR: "1" }
    })
    let buffer = ""
    let runId = ""
    let seen = 0
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8")
      let newline = buffer.indexOf("\n")
      while (newline >= 0) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        newline = buffer.indexOf("\n")
        const event = JSON.parse(line) as { runId: string }
        runId = event.runId
        seen++
        if (seen === killAfter) child.kill("SIGKILL")
      }
    })
    child.on("error", reject)
    child.on("exit", () => resolve({ runId, seen }))
  })

const logOf = async (runId: string, dataDir: string) => {
  const result = await relaviumAsync(["runs", "logs", runId, "--json"], { env: { RELAVIUM_DATA_DIR: dataDir } })
  assert.strictEqual(result.status, 0, result.stderr)
  return ndjson(result.stdout)
}

/** How many kill positions run at once (each a `run`, a `resume` and a `runs logs` process in turn). */
const LANES = 2

describe("crash safety", () => {
  it("a run SIGKILLed at any point is completed by `relavium resume` with the same outputs, no completed node run twice", { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "relavium-crash-"))
    const file = join(dir, "crash-chain.relavium.yaml")
    writeFileSync(file, workflow)

    const clean = await relaviumAsync(["run", file, "--json"], { env: { RELAVIUM_DATA_DIR: join(dir, "clean") } })
    assert.strictEqual(clean.status, 0, clean.stderr)
    const cleanEvents = ndjson(clean.stdout)
    const expected = cleanEvents.at(-1)!.outputs
    assert.deepStrictEqual(expected, { out: "LR123" })
    const total = cleanEvents.length

    /** Kills a run after `killAfter` events, resumes it, and checks its log; whether the resume continued it. */
    const killResumeAndCheck = async (killAfter: number, dataDir: string) => {
      const { runId, seen } = await runAndKill(file, dataDir, killAfter)
      assert.isNotEmpty(runId)
      // The kill may land after the run has committed its end; `resume` then says so and changes nothing.
      const resumed = await relaviumAsync(["resume", runId, "--json"], { env: { RELAVIUM_DATA_DIR: dataDir } })
      const continued = resumed.status === 0
      if (!continued) {
        assert.match(resumed.stdout + resumed.stderr, /already ended \(completed\)/, `resume after ${killAfter} events (exit ${resumed.status}): ${resumed.stdout}${resumed.stderr}`)
        assert.strictEqual(resumed.status, 2)
      } else assert.isBelow(seen, total, `a run that printed its end was resumed (killed after ${killAfter})`)

      const log = await logOf(runId, dataDir)
      log.forEach((event, i) => assert.strictEqual(event.sequenceNumber, i, `gap in run killed after ${killAfter}`))
      const terminals = log.filter((e) => ["run:completed", "run:failed", "run:cancelled"].includes(e.type))
      assert.deepStrictEqual(terminals.map((e) => e.type), ["run:completed"])
      assert.deepStrictEqual(log.at(-1)!.outputs, expected)
      // No node completed twice, and none started again after it had completed.
      const completedAt = new Map<string, number>()
      for (const event of log) {
        const nodeId = event.nodeId as string | undefined
        if (event.type === "node:completed") {
          assert.isFalse(completedAt.has(nodeId!), `${nodeId} completed twice (killed after ${killAfter})`)
          completedAt.set(nodeId!, event.sequenceNumber)
        }
        if (event.type === "node:started") assert.isFalse(completedAt.has(nodeId!), `${nodeId} ran again after completing`)
      }
      assert.strictEqual(completedAt.size, 9)
      return continued
    }

    // Kill after each event position (before, during and after node commits), then resume. The
    // positions are independent runs: a few at a time, each lane on a data directory of its own.
    const positions = Array.from({ length: total - 1 }, (_, i) => i + 1)
    const lanes = Array.from({ length: LANES }, async (_, lane) => {
      const dataDir = join(dir, `lane-${lane}`)
      let resumed = 0
      for (let next = positions.shift(); next !== undefined; next = positions.shift()) {
        if (await killResumeAndCheck(next, dataDir)) resumed++
      }
      return resumed
    })
    const resumedRuns = (await Promise.all(lanes)).reduce((a, b) => a + b, 0)
    // Most kills must have interrupted a live run, or this test proves nothing.
    assert.isAtLeast(resumedRuns, Math.ceil((total - 1) / 2))
  })

  it("a gate paused in one process is approved from another, which completes the run", () => {
    const dataDir = mkdtempSync(join(tmpdir(), "relavium-gate-"))
    const env = { RELAVIUM_DATA_DIR: dataDir }
    const paused = relavium(["run", "examples/approval-gate.relavium.yaml", "--json"], { env })
    assert.strictEqual(paused.status, 3, paused.stderr)
    const runId = ndjson(paused.stdout)[0]!.runId as string

    const listed = relavium(["gate", "list", "--json"], { env })
    assert.strictEqual(listed.status, 0, listed.stderr)
    const gates = JSON.parse(listed.stdout) as Array<{ runId: string; nodeId: string }>
    assert.deepStrictEqual(gates.map((g) => [g.runId, g.nodeId]), [[runId, "approve-release"]])

    const approved = relavium(["gate", runId, "--approve", "--json"], { env })
    assert.strictEqual(approved.status, 0, approved.stderr)
    const done = ndjson(approved.stdout).at(-1)!
    assert.strictEqual(done.type, "run:completed")
    assert.deepStrictEqual(done.outputs, { result: { released: "1.4.0", approved: "approved" } })

    const again = relavium(["gate", runId, "--approve"], { env })
    assert.strictEqual(again.status, 2)
    const shown = relavium(["runs", "show", runId, "--json"], { env })
    assert.strictEqual((JSON.parse(shown.stdout) as { status: string }).status, "completed")
  })
})

/**
 * Forking and retrying runs over the HTTP API of a `relavium monolith` child process (HTTPS on
 * loopback): `POST /runs/{runId}/fork` and `/retry` start a new run that reuses the recorded
 * outputs of the nodes it does not run again; bad requests are refused with a clear error and
 * create no run; secret inputs are given again and never shown; each fork is in the audit trail.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { monolithBinary } from "./support/buildMonolith.js"
import { collect, type Monolith, type SseEvent, startMonolith } from "./support/monolith.js"

const wf = (body: string) => `schema_version: '1.0'\nworkflow:\n${body.replace(/^/gm, "  ")}\n`

/** Five steps; `scale` is read only by `c`, and `c` fails for a negative `scale`. */
const chain = wf(`id: fork-chain
inputs:
  - { name: scale, type: number, default: 1 }
  - { name: token, type: secret, required: false }
nodes:
  - { id: a, type: transform, transform: '1' }
  - { id: b, type: transform, transform: 'run.outputs["a"] + 1' }
  - { id: c, type: transform, transform: 'inputs.scale >= 0 ? run.outputs["b"] * inputs.scale : undefined.negative' }
  - { id: d, type: transform, transform: 'run.outputs["c"] + 1' }
  - { id: e, type: transform, transform: '({ value: run.outputs["d"], real: inputs.token === "tok-s3cr3t-value" })' }
  - { id: out, type: output }
edges:
  - { from: a, to: b }
  - { from: b, to: c }
  - { from: c, to: d }
  - { from: d, to: e }
  - { from: e, to: out }`)

const gated = wf(`id: fork-gated
nodes:
  - { id: a, type: transform, transform: '1' }
  - { id: gate, type: human_gate, gate_type: approval }
  - { id: out, type: output }
edges:
  - { from: a, to: gate }
  - { from: gate, to: out }`)

const dirs: Array<string> = []
let m: Monolith

const upload = async (yaml: string) => {
  const response = await m.api("POST", "/workflows", { yaml, file: "fork.relavium.yaml" })
  expect(response.status, response.text).toBe(201)
  return response.json.workflowId as string
}

/** The run's whole log, once it has ended. */
const untilEnd = (runId: string) => collect(m.events(runId), () => false)

const startAndEnd = async (workflowId: string, inputs: Record<string, unknown>) => {
  const started = await m.api("POST", "/runs", { workflowId, inputs })
  expect(started.status, started.text).toBe(201)
  const runId = started.json.runId as string
  return { runId, events: await untilEnd(runId) }
}

const reused = (events: ReadonlyArray<SseEvent>) =>
  events.filter((e) => e.type === "node:completed" && e.data.reusedFrom !== undefined).map((e) => e.data.nodeId)
const started = (events: ReadonlyArray<SseEvent>) => events.filter((e) => e.type === "node:started").map((e) => e.data.nodeId)
const runCount = async () => ((await m.api("GET", "/runs?limit=500")).json.runs as Array<unknown>).length

beforeAll(async () => {
  await monolithBinary()
  const dir = mkdtempSync(join(tmpdir(), "relavium-fork-"))
  dirs.push(dir)
  m = await startMonolith(dir)
}, 60_000)

afterAll(async () => {
  await m?.stop()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe("POST /runs/{runId}/fork and /retry on a monolith", () => {
  it("forks a completed run from its third node with a changed input: only c, d, e run again", async () => {
    const workflowId = await upload(chain)
    const original = await startAndEnd(workflowId, { scale: 3, token: "tok-s3cr3t-value" })
    expect(original.events.at(-1)!.data.outputs).toEqual({ out: { value: 7, real: true } })

    const forked = await m.api("POST", `/runs/${original.runId}/fork`, { from: "c", inputs: { scale: 10, token: "tok-s3cr3t-value" } })
    expect(forked.status, forked.text).toBe(201)
    const events = await untilEnd(forked.json.runId)
    expect(reused(events)).toEqual(["a", "b"])
    expect(started(events)).toEqual(["c", "d", "e", "out"])
    expect(events[0]!.data).toMatchObject({
      type: "run:started",
      forkedFrom: { runId: original.runId, nodeId: "c", kind: "fork" },
      inputs: { scale: 10, token: { secret: true, ref: "inputs.token" } }
    })
    expect(events.at(-1)!.data).toMatchObject({ type: "run:completed", outputs: { out: { value: 21, real: true } } })
    expect(JSON.stringify(events)).not.toContain("tok-s3cr3t-value")

    const summary = await m.api("GET", `/runs/${forked.json.runId}`)
    expect(summary.json.forkedFrom).toEqual({ runId: original.runId, nodeId: "c", kind: "fork" })
    expect(summary.json.nodes.filter((n: { reusedFrom?: string }) => n.reusedFrom === original.runId).map((n: { nodeId: string }) => n.nodeId)).toEqual(["a", "b"])
    expect(summary.text).not.toContain("tok-s3cr3t-value")

    const audit = await m.api("GET", "/audit")
    const entry = (audit.json.entries ?? audit.json).find((e: { action: string; target: string }) => e.action === "run.fork" && e.target === forked.json.runId)
    expect(entry?.detail).toEqual({ fromRun: original.runId, fromNode: "c" })
  }, 60_000)

  it("retries a failed run as a new run that runs only the failed node and what follows", async () => {
    const workflowId = await upload(chain)
    const original = await startAndEnd(workflowId, { scale: -1 })
    expect(original.events.at(-1)!.data).toMatchObject({ type: "run:failed", error: { nodeId: "c" } })

    // A retry takes the failed run's inputs: it fails again the same way, reusing a and b.
    const retried = await m.api("POST", `/runs/${original.runId}/retry`, {})
    expect(retried.status, retried.text).toBe(201)
    const events = await untilEnd(retried.json.runId)
    expect(events[0]!.data.forkedFrom).toEqual({ runId: original.runId, kind: "retry" })
    expect(reused(events)).toEqual(["a", "b"])
    expect(started(events)).toEqual(["c"])
    expect(events.at(-1)!.data).toMatchObject({ type: "run:failed", error: { nodeId: "c" } })
    const audit = await m.api("GET", "/audit")
    const entry = (audit.json.entries ?? audit.json).find((e: { action: string; target: string }) => e.action === "run.retry" && e.target === retried.json.runId)
    expect(entry?.detail).toEqual({ fromRun: original.runId })

    // Forked from the failed node with a fixed input, it completes.
    const fixed = await m.api("POST", `/runs/${original.runId}/fork`, { from: "c", inputs: { scale: 2 } })
    expect(fixed.status, fixed.text).toBe(201)
    const fixedEvents = await untilEnd(fixed.json.runId)
    expect(started(fixedEvents)).toEqual(["c", "d", "e", "out"])
    expect(fixedEvents.at(-1)!.data).toMatchObject({ type: "run:completed", outputs: { out: { value: 5, real: false } } })
  }, 60_000)

  it("forks a fan-out from one branch: its siblings are reused, the gate after the merge asks again", async () => {
    const workflowId = await upload(
      wf(`id: fork-fan-out
inputs:
  - { name: b, type: string, default: bee }
nodes:
  - { id: pick, type: human_gate, gate_type: input }
  - { id: split, type: parallel, parallel_of: [x, y, z] }
  - { id: x, type: transform, transform: 'run.outputs["pick"].tag + "-x"' }
  - { id: y, type: transform, transform: 'inputs.b' }
  - { id: z, type: transform, transform: '"zed"' }
  - { id: gather, type: merge, merge_strategy: concat }
  - { id: ship, type: human_gate, gate_type: approval }
  - { id: out, type: transform, transform: 'run.outputs["gather"].join(",")' }
  - { id: result, type: output }
edges:
  - { from: pick, to: split }
  - { from: x, to: gather }
  - { from: y, to: gather }
  - { from: z, to: gather }
  - { from: gather, to: ship }
  - { from: ship, to: out }
  - { from: out, to: result }`)
    )
    const decide = async (runId: string, path: string, body: unknown) => {
      const gates = await m.api("GET", `/gates?runId=${runId}`)
      expect(gates.json, gates.text).toHaveLength(1)
      const decided = await m.api("POST", `/runs/${runId}/gates/${encodeURIComponent(gates.json[0].gateId)}/${path}`, body)
      expect(decided.status, decided.text).toBe(200)
    }
    const untilPaused = (runId: string, after: number) =>
      collect(m.events(runId, { lastEventId: after }), (received) => received.some((e) => e.type === "run:paused"))

    const runId = (await m.api("POST", "/runs", { workflowId })).json.runId as string
    const first = await untilPaused(runId, -1)
    await decide(runId, "input", { value: { tag: "v1" } })
    await untilPaused(runId, first.at(-1)!.id)
    await decide(runId, "approve", {})
    expect((await untilEnd(runId)).at(-1)!.data).toMatchObject({ type: "run:completed", outputs: { result: "v1-x,bee,zed" } })

    const forked = await m.api("POST", `/runs/${runId}/fork`, { from: "y", inputs: { b: "bumblebee" } })
    expect(forked.status, forked.text).toBe(201)
    const upToGate = await untilPaused(forked.json.runId, -1)
    expect(reused(upToGate)).toEqual(["pick", "split", "x", "z"])
    expect(upToGate.filter((e) => e.type === "human_gate:paused").map((e) => e.data.nodeId)).toEqual(["ship"])
    await decide(forked.json.runId, "approve", {})
    const events = await untilEnd(forked.json.runId)
    expect(started(events)).toEqual(["y", "gather", "ship", "out", "result"])
    expect(events.at(-1)!.data).toMatchObject({ type: "run:completed", outputs: { result: "v1-x,bumblebee,zed" } })
  }, 60_000)

  it("refuses bad requests with a clear error and creates no run", async () => {
    const chainId = await upload(chain)
    const ended = await startAndEnd(chainId, { scale: 1, token: "tok-s3cr3t-value" })
    const gatedId = await upload(gated)
    const waiting = await m.api("POST", "/runs", { workflowId: gatedId })
    const waitingId = waiting.json.runId as string
    await collect(m.events(waitingId), (received) => received.some((e) => e.type === "run:paused"))
    const before = await runCount()

    const unknownRun = await m.api("POST", "/runs/no-such-run/fork", { from: "a" })
    expect(unknownRun.status).toBe(404)
    expect(unknownRun.json).toMatchObject({ _tag: "NotFound", message: "no run with id no-such-run" })
    expect((await m.api("POST", "/runs/no-such-run/retry", {})).status).toBe(404)
    const noBody = await m.api("POST", "/runs/no-such-run/retry")
    expect(noBody.status, noBody.text).toBe(404)

    const unknownNode = await m.api("POST", `/runs/${ended.runId}/fork`, { from: "zz", inputs: { token: "tok-s3cr3t-value" } })
    expect(unknownNode.status).toBe(400)
    expect(unknownNode.json.message).toContain("has no node 'zz' (nodes: a, b, c, d, e, out)")

    const running = await m.api("POST", `/runs/${waitingId}/fork`, { from: "a" })
    expect(running.status).toBe(409)
    expect(running.json).toMatchObject({ _tag: "Conflict" })
    expect(running.json.message).toContain("only an ended run can be forked")
    expect((await m.api("POST", `/runs/${waitingId}/retry`, {})).status).toBe(409)
    expect((await m.api("POST", `/runs/${ended.runId}/retry`, {})).status).toBe(409)

    const badInput = await m.api("POST", `/runs/${ended.runId}/fork`, { from: "c", inputs: { scale: "lots", token: "tok-s3cr3t-value" } })
    expect(badInput.status).toBe(400)
    expect(badInput.json.issues).toEqual([{ path: "inputs.scale", message: 'must be a number, got "lots"' }])

    const noSecret = await m.api("POST", `/runs/${ended.runId}/fork`, { from: "c" })
    expect(noSecret.status).toBe(400)
    expect(noSecret.json.issues[0]).toMatchObject({ path: "inputs.token" })
    expect(noSecret.text).not.toContain("tok-s3cr3t-value")

    const noFrom = await m.api("POST", `/runs/${ended.runId}/fork`, { inputs: {} })
    expect(noFrom.status).toBe(400)
    expect(noFrom.text).toContain("from")

    expect(await runCount()).toBe(before)
  }, 60_000)
})

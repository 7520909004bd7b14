/**
 * A node's completion is committed together with the orchestrator step it makes possible. That
 * step is taken before the completion is applied (`Orchestrator.step(state, completing)`); it must
 * decide exactly what the step taken after applying it decides, or a run would start, skip or
 * settle differently depending on how its events were batched.
 */
import { assert, describe, it } from "@effect/vitest"
import type { RunEvent as RE } from "@relavium/domain"
import * as Orchestrator from "../src/Orchestrator.js"
import { stepDrafts } from "../src/RunLoop.js"
import { applyEvents, initialState, isTerminalState, nodeState, type RunState } from "../src/RunState.js"
import { compile } from "./harness.js"

const wf = (body: string) => `schema_version: '1.0'\nworkflow:\n${body.replace(/^/gm, "  ")}\n`

const timestamp = "2026-12-05T00:00:00.000Z"

/** Numbers drafts after the state's last event. */
const numbered = (state: RunState, drafts: ReadonlyArray<RE.RunEventDraft>): Array<RE.RunEvent> =>
  drafts.map((draft, i) => ({ ...draft, sequenceNumber: state.lastSequenceNumber + 1 + i }) as RE.RunEvent)

/**
 * Runs a workflow to its end, settling running nodes one at a time in plan order (a node with
 * several targets picks the first; `fail` fails instead of completing, and the next node's
 * completion comes before the failure's step). At each completion it
 * compares the step taken with the completion pending against the step taken after applying it.
 * Returns the log and the number of completions compared.
 */
const simulate = (yaml: string, fail?: string) => {
  const plan = compile(yaml)
  const runId = "run-1"
  // Two copies of one run: `pending` takes the step before a completion is applied, `applied` after.
  const pending = initialState(runId, plan)
  const applied = initialState(runId, plan)
  const log: Array<RE.RunEvent> = []
  const apply = (drafts: ReadonlyArray<RE.RunEventDraft>) => {
    const events = numbered(applied, drafts)
    assert.isTrue(applyEvents(applied, events))
    assert.isTrue(applyEvents(pending, events))
    log.push(...events)
  }
  apply([{ type: "run:started", runId, timestamp, workflowId: "wf", inputs: {}, executionMode: "local" }])
  apply(stepDrafts(applied, Orchestrator.step(applied), timestamp))
  let compared = 0
  for (let guard = 0; guard < 1000 && !isTerminalState(applied); guard++) {
    const nodeId = plan.order.find((id) => nodeState(applied, id).status === "running")
    assert.isDefined(nodeId, `a running node while the run is ${applied.status}`)
    if (nodeId === fail) {
      // The failure's own step is not taken yet: a sibling's completion comes first.
      apply([{ type: "node:failed", runId, timestamp, nodeId, error: { code: "tool_failed", message: "failed", retryable: false } }])
      continue
    }
    const targets = [...new Set((plan.outgoing.get(nodeId) ?? []).map((e) => e.to))]
    const selected = targets.length > 1 ? [targets[0]!] : undefined
    const output = { from: nodeId }
    const completed: RE.RunEventDraft = {
      type: "node:completed",
      runId,
      timestamp,
      nodeId,
      output,
      tokensUsed: { input: 1, output: 2 },
      durationMs: 0,
      selected
    }
    const before = Orchestrator.step(pending, { nodeId, output, selected })
    const beforeDrafts = stepDrafts(pending, before, timestamp, { tokensUsed: { input: 1, output: 2 } })
    apply([completed])
    const after = Orchestrator.step(applied)
    assert.deepStrictEqual(before, after, `the step after completing ${nodeId}`)
    assert.deepStrictEqual(beforeDrafts, stepDrafts(applied, after, timestamp), `the events after completing ${nodeId}`)
    compared += 1
    apply(stepDrafts(applied, after, timestamp))
  }
  return { log, compared }
}

const types = (log: ReadonlyArray<RE.RunEvent>) => log.map((e) => ("nodeId" in e ? `${e.type} ${e.nodeId}` : e.type))

describe("Orchestrator.step with the completing node pending", () => {
  it("decides what the step after the completion decides: a chain to its end", () => {
    const { compared, log } = simulate(
      wf(`id: chain
nodes:
  - { id: a, type: transform, transform: '1' }
  - { id: b, type: transform, transform: '2' }
  - { id: out, type: output }
edges:
  - { from: a, to: b }
  - { from: b, to: out }`)
    )
    assert.strictEqual(compared, 3)
    assert.deepStrictEqual(types(log).slice(-2), ["node:completed out", "run:completed"])
    const end = log.at(-1)!
    assert.deepStrictEqual(end.type === "run:completed" ? [end.outputs, end.totalTokensUsed] : [], [{ out: { from: "out" } }, { input: 3, output: 6 }])
  })

  it("a branch not taken is skipped, and what only it feeds is unreachable", () => {
    const { compared, log } = simulate(
      wf(`id: routed
nodes:
  - { id: pick, type: transform, transform: '1' }
  - { id: left, type: transform, transform: '1' }
  - { id: right, type: transform, transform: '2' }
  - { id: after-right, type: transform, transform: '3' }
  - { id: done, type: output }
edges:
  - { from: pick, to: left }
  - { from: pick, to: right }
  - { from: right, to: after-right }
  - { from: left, to: done }
  - { from: after-right, to: done }`)
    )
    assert.strictEqual(compared, 3)
    assert.includeMembers(types(log), ["node:skipped right", "node:skipped after-right", "run:completed"])
  })

  it("four roots under max_parallel 2 start as others complete, then merge", () => {
    const { compared, log } = simulate(
      wf(`id: fan
max_parallel: 2
nodes:
  - { id: m1, type: transform, transform: '1' }
  - { id: m2, type: transform, transform: '2' }
  - { id: m3, type: transform, transform: '3' }
  - { id: m4, type: transform, transform: '4' }
  - { id: gather, type: merge, merge_strategy: concat }
edges:
  - { from: m1, to: gather }
  - { from: m2, to: gather }
  - { from: m3, to: gather }
  - { from: m4, to: gather }`)
    )
    assert.isAtLeast(compared, 5)
    assert.strictEqual(log.at(-1)!.type, "run:completed")
  })

  it("after a sibling failed, the completing node's output is in the run's partial outputs", () => {
    const { log } = simulate(
      wf(`id: failing
nodes:
  - { id: bad, type: transform, transform: '1' }
  - { id: good, type: transform, transform: '2' }
  - { id: next, type: transform, transform: '3' }
edges:
  - { from: good, to: next }`),
      "bad"
    )
    const end = log.at(-1)!
    assert.strictEqual(end.type, "run:failed")
    assert.deepStrictEqual(end.type === "run:failed" ? end.partialOutputs : undefined, { good: { from: "good" } })
  })
})

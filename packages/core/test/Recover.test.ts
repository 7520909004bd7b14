import { assert, describe, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import type { RunEvent as RE } from "@relavium/domain"
import { maxCrashResumes, recoverAtStart, RunState, WorkflowEngine } from "../src/index.js"
import { RunStore, WorkflowStore } from "@relavium/ports"
import { advanceTo, answer, checkLog, collectAll, compile, engineLayer, last, ofType, scriptedModel } from "./harness.js"

const yaml = `schema_version: '1.0'
workflow:
  id: recovering
  agents:
    - { id: bot, provider: anthropic, model: claude-sonnet-4, system_prompt: hi, retry: { max: 1, backoff: linear } }
  nodes:
    - { id: first, type: transform, transform: '"done before the crash"' }
    - { id: ask, type: agent, agent_ref: bot, prompt_template: go }
    - { id: out, type: output }
  edges:
    - { from: first, to: ask }
    - { from: ask, to: out }
`

describe("recovering a run whose process died", () => {
  it.live("records the interrupted tool call and attempt, re-runs only the unfinished node, and completes", () =>
    Effect.gen(function* () {
      const store = yield* RunStore
      const workflows = yield* WorkflowStore
      const engine = yield* WorkflowEngine
      const stored = yield* workflows.put({ name: "recovering", source: yaml, file: "recovering.relavium.yaml" })
      const runId = "run-after-crash"
      const t = new Date().toISOString()
      // The log a killed process left: `first` completed, `ask` was inside a tool call.
      yield* store.create({ runId, workflowId: stored.workflowId, workflowName: "recovering", createdAt: t })
      yield* store.append(runId, [
        { type: "run:started", runId, timestamp: t, workflowId: stored.workflowId, inputs: {}, executionMode: "local" },
        { type: "node:started", runId, timestamp: t, nodeId: "first", nodeType: "transform", attemptNumber: 1 },
        { type: "node:completed", runId, timestamp: t, nodeId: "first", output: "done before the crash", tokensUsed: { input: 0, output: 0 }, durationMs: 1 },
        { type: "node:started", runId, timestamp: t, nodeId: "ask", nodeType: "agent", attemptNumber: 1 },
        { type: "agent:tool_call", runId, timestamp: t, nodeId: "ask", model: "claude-sonnet-4", toolId: "call_1", toolName: "read_file", toolInput: { path: "a" } }
      ])

      yield* engine.recover(runId)
      const events = yield* collectAll(runId)
      checkLog(events)
      const interruptedTool = ofType(events, "agent:tool_result").find((e) => e.toolId === "call_1")!
      assert.isFalse(interruptedTool.success)
      assert.match(interruptedTool.outputSummary, /^interrupted/)
      const retrying = ofType(events, "node:retrying")
      assert.deepStrictEqual(retrying.map((e) => [e.nodeId, e.attemptNumber, e.interrupted]), [["ask", 2, true]])
      // `first` did not run again; `ask` ran as attempt 2 even though its policy allows one attempt.
      assert.deepStrictEqual(ofType(events, "node:started").map((e) => [e.nodeId, e.attemptNumber]), [
        ["first", 1],
        ["ask", 1],
        ["ask", 2],
        ["out", 1]
      ])
      const done = last(events)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: "recovered" })
      else assert.fail(done.type)

      // Recovering an ended run does nothing.
      yield* engine.recover(runId)
      assert.strictEqual((yield* store.events(runId)).length, events.length)
    }).pipe(Effect.provide(engineLayer({ model: scriptedModel([answer("recovered")]).layer }))))
})

/** The log of a run whose `ask` node was interrupted `times` times and was running again when its process died. */
const interruptedLog = (runId: string, workflowId: string, times: number): Array<RE.RunEventDraft> => {
  const t = new Date().toISOString()
  const drafts: Array<RE.RunEventDraft> = [
    { type: "run:started", runId, timestamp: t, workflowId, inputs: {}, executionMode: "local" },
    { type: "node:started", runId, timestamp: t, nodeId: "first", nodeType: "transform", attemptNumber: 1 },
    { type: "node:completed", runId, timestamp: t, nodeId: "first", output: "done before the crash", tokensUsed: { input: 0, output: 0 }, durationMs: 1 },
    { type: "node:started", runId, timestamp: t, nodeId: "ask", nodeType: "agent", attemptNumber: 1 }
  ]
  for (let attempt = 2; attempt <= times + 1; attempt++) {
    drafts.push(
      {
        type: "node:retrying",
        runId,
        timestamp: t,
        nodeId: "ask",
        attemptNumber: attempt,
        error: { code: "internal", message: "interrupted", retryable: true },
        delayMs: 0,
        interrupted: true
      },
      { type: "node:started", runId, timestamp: t, nodeId: "ask", nodeType: "agent", attemptNumber: attempt }
    )
  }
  return drafts
}

describe("poison runs", () => {
  it.live("recovery at start fails a run whose node was interrupted after its last resume allowed, and resumes the others", () =>
    Effect.gen(function* () {
      const store = yield* RunStore
      const workflows = yield* WorkflowStore
      const stored = yield* workflows.put({ name: "recovering", source: yaml, file: "recovering.relavium.yaml" })
      const t = new Date().toISOString()
      for (const [runId, times] of [["poisoned", maxCrashResumes], ["interrupted-once", 1]] as const) {
        yield* store.create({ runId, workflowId: stored.workflowId, workflowName: "recovering", createdAt: t })
        yield* store.append(runId, interruptedLog(runId, stored.workflowId, times))
      }

      const report = yield* recoverAtStart
      assert.deepStrictEqual(report.resumed, ["interrupted-once"])
      assert.deepStrictEqual(report.poisoned.map((p) => [p.runId, p.nodeId]), [["poisoned", "ask"]])
      assert.deepStrictEqual(report.failed, [])

      const poisoned = yield* collectAll("poisoned")
      checkLog(poisoned)
      const failed = last(poisoned)
      if (failed.type !== "run:failed") return assert.fail(failed.type)
      assert.strictEqual(failed.error.code, "poison_run")
      assert.strictEqual(failed.error.nodeId, "ask")
      assert.strictEqual(failed.error.message, report.poisoned[0]!.message)
      assert.match(failed.error.message, /interrupted 4 times while running node 'ask'/)
      assert.deepStrictEqual(failed.partialOutputs, { first: "done before the crash" })
      assert.deepStrictEqual(ofType(poisoned, "node:failed").map((e) => [e.nodeId, e.error.code]), [["ask", "poison_run"]])
      // Failed, not run: no attempt after the one that was running.
      assert.deepStrictEqual(ofType(poisoned, "node:started").at(-1)!.attemptNumber, maxCrashResumes + 1)

      const resumed = yield* collectAll("interrupted-once")
      checkLog(resumed)
      assert.strictEqual(last(resumed).type, "run:completed")

      // Nothing is left to recover.
      const again = yield* recoverAtStart
      assert.deepStrictEqual([again.resumed, again.poisoned], [[], []])
    }).pipe(Effect.provide(engineLayer({ model: scriptedModel([answer("recovered")]).layer }))))

  it("an interruption counts against the bound only while the node makes no progress", () => {
    const plan = compile(yaml)
    const state = RunState.initialState("run", plan)
    const drafts = interruptedLog("run", "wf", maxCrashResumes)
    const numbered = (list: ReadonlyArray<RE.RunEventDraft>, from: number) =>
      list.map((draft, i) => ({ ...draft, sequenceNumber: from + i }) as RE.RunEvent)
    RunState.applyEvents(state, numbered(drafts, 0))
    assert.strictEqual(RunState.nodeState(state, "ask").interruptions, maxCrashResumes)
    // A completed agent turn is progress: the count starts again.
    const turn: RE.RunEventDraft = {
      type: "agent:turn_completed",
      runId: "run",
      timestamp: new Date().toISOString(),
      nodeId: "ask",
      turn: 0,
      messages: [],
      inputTokens: 10,
      outputTokens: 5,
      attemptNumber: maxCrashResumes + 1
    }
    RunState.applyEvents(state, numbered([turn], drafts.length))
    assert.strictEqual(RunState.nodeState(state, "ask").interruptions, undefined)
  })
})

/** A run left paused at its gate `wait` at `t0` by a process that then went away. */
const pausedAtGate = (runId: string, gateTimeoutMs: number | undefined, t0: number) =>
  Effect.gen(function* () {
    const store = yield* RunStore
    const workflows = yield* WorkflowStore
    const yaml = `schema_version: '1.0'
workflow:
  id: gated-recovery
  timeout_ms: 90000
  nodes:
    - { id: wait, type: human_gate, gate_type: approval${gateTimeoutMs === undefined ? "" : `, timeout_ms: ${gateTimeoutMs}, timeout_action: approve`} }
    - { id: then, type: transform, transform: '"went on"' }
    - { id: out, type: output }
  edges:
    - { from: wait, to: then }
    - { from: then, to: out }
`
    const stored = yield* workflows.put({ name: "gated-recovery", source: yaml, file: "gated.relavium.yaml" })
    const at = (ms: number) => new Date(t0 + ms).toISOString()
    const gateId = `${runId}:wait`
    yield* store.create({ runId, workflowId: stored.workflowId, workflowName: "gated-recovery", createdAt: at(0) })
    yield* store.append(runId, [
      { type: "run:started", runId, timestamp: at(0), workflowId: stored.workflowId, inputs: {}, executionMode: "local" },
      { type: "node:started", runId, timestamp: at(0), nodeId: "wait", nodeType: "human_gate", attemptNumber: 1 },
      {
        type: "human_gate:paused",
        runId,
        timestamp: at(0),
        nodeId: "wait",
        gateId,
        gateType: "approval",
        message: "Go on?",
        ...(gateTimeoutMs === undefined ? {} : { timeoutMs: gateTimeoutMs, timeoutAction: "approve" as const, expiresAt: at(gateTimeoutMs) })
      },
      { type: "run:paused", runId, timestamp: at(0), pendingGateCount: 1, gateIds: [gateId] }
    ])
  })

describe("recovery re-arms what waits on the clock", () => {
  const t0 = Date.UTC(2026, 0, 1)

  it.effect("a gate that expired while no process ran times out as soon as the run is recovered", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      yield* pausedAtGate("expired-gate", 60_000, t0)
      // The process was gone for 70 s; the gate expired after 60 (the run's own deadline is at 90).
      yield* TestClock.setTime(t0 + 70_000)
      yield* engine.recover("expired-gate")
      const events = yield* collectAll("expired-gate")
      checkLog(events)
      const resumed = ofType(events, "human_gate:resumed")
      assert.deepStrictEqual(resumed.map((e) => [e.decision, e.decidedBy, e.timestamp]), [["approved", "timeout", new Date(t0 + 70_000).toISOString()]])
      const done = last(events)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: "went on" })
      else assert.fail(done.type)
    }).pipe(Effect.provide(engineLayer())))

  it.effect("a gate that has not expired yet times out at its expiresAt, counted from when it paused, not from the recovery", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      yield* pausedAtGate("pending-gate", 60_000, t0)
      yield* TestClock.setTime(t0 + 20_000)
      yield* engine.recover("pending-gate")
      yield* advanceTo(t0 + 60_000, "the gate's expiry, 60 s after it paused")
      const events = yield* collectAll("pending-gate")
      checkLog(events)
      const resumed = ofType(events, "human_gate:resumed")
      assert.deepStrictEqual(resumed.map((e) => [e.decidedBy, e.timestamp]), [["timeout", new Date(t0 + 60_000).toISOString()]])
      assert.strictEqual(last(events).type, "run:completed")
    }).pipe(Effect.provide(engineLayer())))

  it.effect("the run's deadline is counted from its start: a run recovered 30 s in times out 60 s later", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      yield* pausedAtGate("deadline", undefined, t0)
      yield* TestClock.setTime(t0 + 30_000)
      yield* engine.recover("deadline")
      yield* advanceTo(t0 + 90_000, "the run's deadline, 90 s after it started")
      const events = yield* collectAll("deadline")
      checkLog(events)
      assert.deepStrictEqual(ofType(events, "run:timeout").map((e) => [e.elapsedMs, e.timeoutMs]), [[90_000, 90_000]])
      const done = last(events)
      if (done.type === "run:failed") assert.strictEqual(done.error.code, "run_timeout")
      else assert.fail(done.type)
    }).pipe(Effect.provide(engineLayer())))
})

import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream, TestClock } from "effect"
import { Llm, type RunEvent as RE } from "@relavium/domain"
import { WorkflowEngine } from "../src/index.js"
import { ToolError } from "@relavium/ports"
import {
  advanceTo,
  answer,
  checkLog,
  collect,
  collectAll,
  engineLayer,
  last,
  ofType,
  runToRest,
  scriptedModel,
  start,
  storedEvent,
  storedEvents,
  toolCall
} from "./harness.js"

const wf = (body: string) => `schema_version: '1.0'\nworkflow:\n${body.replace(/^/gm, "  ")}\n`

const linear = wf(`id: linear
inputs:
  - { name: n, type: number, default: 2 }
nodes:
  - { id: start, type: input }
  - { id: double, type: transform, transform: 'inputs.n * 2' }
  - { id: plus-one, type: transform, transform: 'run.outputs["double"] + 1' }
  - { id: out, type: output }
edges:
  - { from: start, to: double }
  - { from: double, to: plus-one }
  - { from: plus-one, to: out }`)

describe("engine: linear runs", () => {
  it.live("runs nodes in order and completes with the output node's value", () =>
    Effect.gen(function* () {
      const { events, runId } = yield* runToRest(linear, { n: 5 })
      checkLog(events)
      const done = last(events)
      assert.strictEqual(done.type, "run:completed")
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: 11 })
      assert.deepStrictEqual(
        ofType(events, "node:completed").map((e) => e.nodeId),
        ["start", "double", "plus-one", "out"]
      )
      // The stored log is exactly what the stream delivered.
      assert.deepStrictEqual(yield* storedEvents(runId), events)
    }).pipe(Effect.provide(engineLayer())))

  it.live("applies input defaults and masks nothing that is not secret", () =>
    Effect.gen(function* () {
      const { events } = yield* runToRest(linear)
      const started = events[0]!
      assert.strictEqual(started.type, "run:started")
      if (started.type === "run:started") assert.deepStrictEqual(started.inputs, { n: 2 })
      const done = last(events)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: 5 })
    }).pipe(Effect.provide(engineLayer())))

  it.live("rejects bad inputs before anything starts", () =>
    Effect.gen(function* () {
      const error = yield* start(linear, { n: "many", extra: 1 }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "EngineError")
      if (error._tag === "EngineError") {
        assert.strictEqual(error.reason, "invalid_input")
        assert.match(error.message, /inputs\.extra/)
        assert.match(error.message, /inputs\.n/)
      }
    }).pipe(Effect.provide(engineLayer())))

  it.live("masks secret inputs in run:started", () =>
    Effect.gen(function* () {
      const { events } = yield* runToRest(
        wf(`id: secret
inputs:
  - { name: token, type: secret }
nodes:
  - { id: start, type: input }
  - { id: out, type: output }
edges:
  - { from: start, to: out }`),
        { token: "s3cr3t-value" }
      )
      checkLog(events)
      assert.notInclude(JSON.stringify(events), "s3cr3t-value")
      const started = events[0]!
      if (started.type === "run:started") assert.deepStrictEqual(started.inputs, { token: { secret: true, ref: "inputs.token" } })
    }).pipe(Effect.provide(engineLayer())))
})

const conditional = wf(`id: conditional
inputs:
  - { name: n, type: number }
nodes:
  - { id: start, type: input }
  - id: check
    type: condition
    expression: 'inputs.n >= 10'
    branches:
      - { when: true, target_node: hi }
      - { when: false, target_node: lo }
  - { id: hi, type: transform, transform: '"high"' }
  - { id: lo, type: transform, transform: '"low"' }
  - { id: lo-detail, type: transform, transform: 'run.outputs["lo"] + "!"' }
  - { id: out, type: output }
edges:
  - { from: start, to: check }
  - { from: hi, to: out }
  - { from: lo, to: lo-detail }
  - { from: lo-detail, to: out }`)

describe("engine: conditions and skip propagation", () => {
  it.live("takes the matching branch and skips the other, transitively", () =>
    Effect.gen(function* () {
      const { events } = yield* runToRest(conditional, { n: 12 })
      checkLog(events)
      const skipped = ofType(events, "node:skipped")
      assert.deepStrictEqual(
        skipped.map((e) => [e.nodeId, e.reason]),
        [
          ["lo", "branch_not_taken"],
          ["lo-detail", "upstream_unreachable"]
        ]
      )
      const check = ofType(events, "node:completed").find((e) => e.nodeId === "check")!
      assert.deepStrictEqual(check.selected, ["hi"])
      const done = last(events)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: "high" })
    }).pipe(Effect.provide(engineLayer())))

  it.live("the other value takes the other branch", () =>
    Effect.gen(function* () {
      const { events } = yield* runToRest(conditional, { n: 3 })
      const done = last(events)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: "low!" })
      assert.deepStrictEqual(ofType(events, "node:skipped").map((e) => e.nodeId), ["hi"])
    }).pipe(Effect.provide(engineLayer())))

  it.live("a value matching no branch goes to default, or fails the run without one", () =>
    Effect.gen(function* () {
      const withDefault = wf(`id: defaulted
nodes:
  - id: check
    type: condition
    expression: '"purple"'
    branches:
      - { when: red, target_node: a }
    default: b
  - { id: a, type: transform, transform: '1' }
  - { id: b, type: transform, transform: '2' }
  - { id: out, type: output }
edges:
  - { from: a, to: out }
  - { from: b, to: out }`)
      const first = yield* runToRest(withDefault)
      const done = last(first.events)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: 2 })
      else assert.fail(`expected completion, got ${done.type}`)

      const noDefault = withDefault.replace(/\n\s*default: b/, "")
      const second = yield* runToRest(noDefault)
      checkLog(second.events)
      const failed = last(second.events)
      assert.strictEqual(failed.type, "run:failed")
      if (failed.type === "run:failed") {
        assert.strictEqual(failed.error.code, "validation")
        assert.match(failed.error.message, /matches no branch/)
      }
    }).pipe(Effect.provide(engineLayer())))

  it.live("edge conditions choose which targets run", () =>
    Effect.gen(function* () {
      const { events } = yield* runToRest(
        wf(`id: edge-conditions
nodes:
  - { id: score, type: transform, transform: '7' }
  - { id: good, type: transform, transform: '"good"' }
  - { id: bad, type: transform, transform: '"bad"' }
  - { id: out, type: output }
edges:
  - { from: score, to: good, condition: 'run.outputs["score"] > 5' }
  - { from: score, to: bad, condition: 'run.outputs["score"] <= 5' }
  - { from: good, to: out }
  - { from: bad, to: out }`)
      )
      checkLog(events)
      assert.deepStrictEqual(ofType(events, "node:skipped").map((e) => e.nodeId), ["bad"])
      const done = last(events)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: "good" })
    }).pipe(Effect.provide(engineLayer())))
})

const fanOut = (strategy: string, extra = "") =>
  wf(`id: fan-out
nodes:
  - { id: start, type: input }
  - { id: split, type: parallel, parallel_of: [b, a, c] }
  - { id: a, type: transform, transform: '({ a: 1, shared: "a" })' }
  - { id: b, type: transform, transform: '({ b: 2, shared: "b" })' }
  - { id: c, type: transform, transform: '({ c: 3, shared: "c" })' }
  - { id: gather, type: merge, merge_strategy: ${strategy}${extra} }
  - { id: out, type: output }
edges:
  - { from: start, to: split }
  - { from: a, to: gather }
  - { from: b, to: gather }
  - { from: c, to: gather }
  - { from: gather, to: out }`)

describe("engine: parallel and merge", () => {
  const outputOf = (yaml: string) =>
    runToRest(yaml).pipe(
      Effect.map(({ events }) => {
        checkLog(events)
        const done = last(events)
        if (done.type !== "run:completed") throw new Error(`run ended with ${done.type}: ${JSON.stringify(done)}`)
        return done.outputs.out
      })
    )

  it.live("concat keeps parallel_of order", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* outputOf(fanOut("concat")), [
        { b: 2, shared: "b" },
        { a: 1, shared: "a" },
        { c: 3, shared: "c" }
      ])
    }).pipe(Effect.provide(engineLayer())))

  it.live("object_merge merges shallowly, later branches winning", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* outputOf(fanOut("object_merge")), { b: 2, a: 1, c: 3, shared: "c" })
    }).pipe(Effect.provide(engineLayer())))

  it.live("first takes the first branch in parallel_of order", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* outputOf(fanOut("first")), { b: 2, shared: "b" })
    }).pipe(Effect.provide(engineLayer())))

  it.live("custom runs merge_fn over the branches", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(
        yield* outputOf(fanOut("custom", ", merge_fn: 'branches.map(b => b.shared).join(\"+\")'")),
        "b+a+c"
      )
    }).pipe(Effect.provide(engineLayer())))

  it.live("skipped branches are dropped, and a merge with every branch skipped is skipped", () =>
    Effect.gen(function* () {
      const yaml = wf(`id: partial
inputs:
  - { name: pick, type: string }
nodes:
  - id: route
    type: condition
    expression: 'inputs.pick'
    branches:
      - { when: x, target_node: x }
      - { when: y, target_node: y }
      - { when: none, target_node: nothing }
  - { id: x, type: transform, transform: '"x"' }
  - { id: y, type: transform, transform: '"y"' }
  - { id: nothing, type: transform, transform: 'null' }
  - { id: gather, type: merge, merge_strategy: concat }
  - { id: out, type: output }
edges:
  - { from: x, to: gather }
  - { from: y, to: gather }
  - { from: gather, to: out }`)
      const one = yield* runToRest(yaml, { pick: "y" })
      const done = last(one.events)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: ["y"] })
      else assert.fail(done.type)

      const none = yield* runToRest(yaml, { pick: "none" })
      checkLog(none.events)
      assert.deepStrictEqual(
        ofType(none.events, "node:skipped").map((e) => e.nodeId),
        ["x", "y", "gather", "out"]
      )
      assert.strictEqual(last(none.events).type, "run:completed")
    }).pipe(Effect.provide(engineLayer())))

  it.live("max_parallel bounds how many nodes run at once", () =>
    Effect.gen(function* () {
      const members = Array.from({ length: 8 }, (_, i) => `m${i}`)
      const yaml = wf(`id: bounded
max_parallel: 2
nodes:
  - { id: split, type: parallel, parallel_of: [${members.join(", ")}] }
${members.map((m) => `  - { id: ${m}, type: transform, transform: '"${m}"' }`).join("\n")}
  - { id: gather, type: merge, merge_strategy: concat }
edges:
${members.map((m) => `  - { from: ${m}, to: gather }`).join("\n")}`)
      const { events } = yield* runToRest(yaml)
      checkLog(events)
      let running = 0
      let peak = 0
      for (const e of events) {
        if (e.type === "node:started") running++
        if (e.type === "node:completed" || e.type === "node:failed") running--
        peak = Math.max(peak, running)
      }
      assert.isAtMost(peak, 2)
      assert.strictEqual(ofType(events, "node:completed").length, 10)
    }).pipe(Effect.provide(engineLayer())))
})

describe("engine: failures, retries and timeouts", () => {
  it.live("a failing node fails the run once, skips what is downstream, keeps partial outputs", () =>
    Effect.gen(function* () {
      const { events } = yield* runToRest(
        wf(`id: failing
nodes:
  - { id: ok, type: transform, transform: '1' }
  - { id: boom, type: transform, transform: 'run.outputs["ok"].nope.deeper' }
  - { id: after, type: transform, transform: '2' }
  - { id: out, type: output }
edges:
  - { from: ok, to: boom }
  - { from: boom, to: after }
  - { from: after, to: out }`)
      )
      checkLog(events)
      const failed = ofType(events, "node:failed")
      assert.strictEqual(failed.length, 1)
      assert.strictEqual(failed[0]!.nodeId, "boom")
      assert.strictEqual(failed[0]!.error.code, "sandbox_error")
      assert.deepStrictEqual(ofType(events, "node:skipped").map((e) => e.nodeId), ["after", "out"])
      const done = last(events)
      assert.strictEqual(done.type, "run:failed")
      if (done.type === "run:failed") {
        assert.strictEqual(done.error.nodeId, "boom")
        assert.deepStrictEqual(done.partialOutputs, { ok: 1 })
      }
    }).pipe(Effect.provide(engineLayer())))

  it.effect("an infinite loop in an expression is stopped, retried after its backoff on the clock, then fails", () =>
    Effect.gen(function* () {
      const handle = yield* start(
        wf(`id: spinning
nodes:
  - id: spin
    type: transform
    transform: '(() => { while (true) {} })()'
    retry: { max: 2, backoff: linear, backoff_ms: 10 }
edges: []`)
      )
      const following = yield* Effect.fork(collect(handle.runId))
      const due = yield* storedEvent(handle.runId, "node:retrying", (e) => e.type === "node:retrying")
      yield* advanceTo(Date.parse(due.timestamp) + due.delayMs, "the second attempt, 10 ms after the first failed")
      const events = yield* Fiber.join(following)
      checkLog(events)
      const retrying = ofType(events, "node:retrying")
      assert.strictEqual(retrying.length, 1)
      assert.strictEqual(retrying[0]!.attemptNumber, 2)
      assert.strictEqual(retrying[0]!.delayMs, 10)
      assert.strictEqual(retrying[0]!.error.code, "sandbox_error")
      const failed = ofType(events, "node:failed")
      assert.strictEqual(failed.length, 1)
      assert.strictEqual(failed[0]!.attemptNumber, 2)
      assert.match(failed[0]!.error.message, /timed out/)
      assert.strictEqual(last(events).type, "run:failed")
    }).pipe(Effect.provide(engineLayer())))

  it.effect("a retry that succeeds completes the node; it starts when its backoff has passed on the clock", () =>
    Effect.gen(function* () {
      const model = scriptedModel([
        new Llm.LlmError({ kind: "rate_limit", retryable: true, provider: "openai", message: "slow down", status: 429 }),
        answer("fine now")
      ])
      const { events, started } = yield* Effect.gen(function* () {
        const handle = yield* start(
          wf(`id: flaky-model
agents:
  - { id: bot, provider: openai, model: gpt-4o-mini, system_prompt: hi, retry: { max: 3, backoff: exponential, backoff_ms: 5000 } }
nodes:
  - { id: ask, type: agent, agent_ref: bot, prompt_template: "hello" }
  - { id: out, type: output }
edges:
  - { from: ask, to: out }`)
        )
        const following = yield* Effect.fork(collect(handle.runId))
        const due = yield* storedEvent(handle.runId, "node:retrying", (e) => e.type === "node:retrying")
        assert.strictEqual(due.delayMs, 5000)
        yield* advanceTo(Date.parse(due.timestamp) + 5000, "the second attempt, 5 s after the first failed")
        const events = yield* Fiber.join(following)
        return { events, started: Date.parse(due.timestamp) }
      }).pipe(Effect.provide(engineLayer({ model: model.layer })))
      checkLog(events)
      const retrying = ofType(events, "node:retrying")
      assert.strictEqual(retrying.length, 1)
      assert.strictEqual(retrying[0]!.error.code, "provider_rate_limit")
      // The second attempt started 5 s (the policy's backoff) after the first failed.
      const second = ofType(events, "node:started").find((e) => e.nodeId === "ask" && e.attemptNumber === 2)!
      assert.strictEqual(Date.parse(second.timestamp) - started, 5000)
      const done = last(events)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: "fine now" })
      else assert.fail(done.type)
    }))

  it.live("a non-retryable error fails at once, whatever the policy", () =>
    Effect.gen(function* () {
      const model = scriptedModel([
        new Llm.LlmError({ kind: "auth", retryable: false, provider: "openai", message: "invalid key", status: 401 })
      ])
      const { events } = yield* runToRest(
        wf(`id: bad-key
agents:
  - { id: bot, provider: openai, model: gpt-4o-mini, system_prompt: hi, retry: { max: 3, backoff: linear, backoff_ms: 5 } }
nodes:
  - { id: ask, type: agent, agent_ref: bot }
edges: []`)
      ).pipe(Effect.provide(engineLayer({ model: model.layer })))
      checkLog(events)
      assert.strictEqual(ofType(events, "node:retrying").length, 0)
      const done = last(events)
      if (done.type === "run:failed") {
        assert.strictEqual(done.error.code, "provider_auth")
        assert.match(done.error.message, /HTTP 401/)
      } else assert.fail(done.type)
    }))

  it.effect("a run over its timeout_ms times out when that time has passed on the clock, and fails with run_timeout", () =>
    Effect.gen(function* () {
      const { runId, events: paused } = yield* runToRest(
        wf(`id: slow
timeout_ms: 3600000
nodes:
  - { id: wait, type: human_gate, gate_type: approval }
edges: []`)
      )
      const startedAt = Date.parse(paused[0]!.timestamp)
      yield* TestClock.adjust("3599999 millis")
      assert.strictEqual(ofType(yield* storedEvents(runId), "run:timeout").length, 0)
      yield* advanceTo(startedAt + 3_600_000, "the run's deadline, an hour after it started")
      const events = yield* collectAll(runId)
      checkLog(events)
      assert.deepStrictEqual(ofType(events, "run:timeout").map((e) => [e.elapsedMs, e.timeoutMs]), [[3_600_000, 3_600_000]])
      const done = last(events)
      if (done.type === "run:failed") assert.strictEqual(done.error.code, "run_timeout")
      else assert.fail(done.type)
    }).pipe(Effect.provide(engineLayer())))
})

const gated = (extra = "") =>
  wf(`id: gated
nodes:
  - { id: plan, type: transform, transform: '"plan"' }
  - { id: approve, type: human_gate, gate_type: approval, message_template: 'Ship {{ run.outputs["plan"] }}?'${extra} }
  - { id: ship, type: transform, transform: 'run.outputs["approve"]' }
  - { id: out, type: output }
edges:
  - { from: plan, to: approve }
  - { from: approve, to: ship }
  - { from: ship, to: out }`)

describe("engine: human gates", () => {
  it.live("pauses at a gate, then completes when it is approved", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const { events, runId } = yield* runToRest(gated())
      assert.strictEqual(last(events).type, "run:paused")
      const paused = ofType(events, "human_gate:paused")[0]!
      assert.strictEqual(paused.message, "Ship plan?")
      yield* engine.resume(runId, paused.gateId, { decision: "approved", decidedBy: "tester" })
      // Deciding twice changes nothing.
      yield* engine.resume(runId, paused.gateId, { decision: "rejected", decidedBy: "tester" })
      const all = yield* collectAll(runId)
      checkLog(all)
      const done = last(all)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: { decision: "approved" } })
      else assert.fail(done.type)
      assert.strictEqual(ofType(all, "human_gate:resumed").length, 1)
    }).pipe(Effect.provide(engineLayer())))

  it.live("a rejection does not fail the run; an input gate passes its payload on", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const rejected = yield* runToRest(gated())
      yield* engine.resume(rejected.runId, undefined, { decision: "rejected", decidedBy: "tester" })
      const done = last(yield* collectAll(rejected.runId))
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: { decision: "rejected" } })
      else assert.fail(done.type)

      const input = yield* runToRest(gated().replace("gate_type: approval", "gate_type: input"))
      yield* engine.resume(input.runId, undefined, { decision: "input_provided", decidedBy: "tester", payload: { tag: "v2" } })
      const doneInput = last(yield* collectAll(input.runId))
      if (doneInput.type === "run:completed") assert.deepStrictEqual(doneInput.outputs, { out: { tag: "v2" } })
      else assert.fail(doneInput.type)
    }).pipe(Effect.provide(engineLayer())))

  it.effect("a gate timeout approves or fails the run as timeout_action says, at the gate's expiresAt on the clock", () =>
    Effect.gen(function* () {
      const expiry = (events: ReadonlyArray<RE.RunEvent>) => Date.parse(ofType(events, "human_gate:paused")[0]!.expiresAt!)
      const approved = yield* runToRest(gated(", timeout_ms: 86400000, timeout_action: approve"))
      assert.strictEqual(expiry(approved.events) - Date.parse(approved.events[0]!.timestamp), 86_400_000)
      yield* advanceTo(expiry(approved.events), "the gate's expiry, a day after it paused")
      const doneApproved = last(yield* collectAll(approved.runId))
      if (doneApproved.type !== "run:completed") assert.fail(doneApproved.type)
      const resumed = ofType(yield* storedEvents(approved.runId), "human_gate:resumed")[0]!
      assert.strictEqual(resumed.decidedBy, "timeout")

      const rejected = yield* runToRest(gated(", timeout_ms: 30000"))
      yield* advanceTo(expiry(rejected.events), "the second gate's expiry")
      const all = yield* collectAll(rejected.runId)
      checkLog(all)
      const doneRejected = last(all)
      if (doneRejected.type === "run:failed") assert.strictEqual(doneRejected.error.code, "run_timeout")
      else assert.fail(doneRejected.type)
    }).pipe(Effect.provide(engineLayer())))

  it.live("cancel ends a paused run with one run:cancelled", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const { runId } = yield* runToRest(gated())
      yield* engine.cancel(runId, "changed my mind")
      yield* engine.cancel(runId)
      const all = yield* collectAll(runId)
      checkLog(all)
      assert.strictEqual(last(all).type, "run:cancelled")
      const error = yield* engine.resume(runId, undefined, { decision: "approved", decidedBy: "late" }).pipe(Effect.flip)
      assert.strictEqual(error.reason, "conflict")
    }).pipe(Effect.provide(engineLayer())))
})

const agentFlow = (extra = "") =>
  wf(`id: agent-flow
inputs:
  - { name: topic, type: string, default: "sums" }
context:
  - { key: tone, value: "plain" }
agents:
  - id: bot
    provider: anthropic
    model: claude-sonnet-4
    max_tokens: 1000
    system_prompt: 'Write in a {{ ctx.tone }} tone.'
    tools: [read_file]
nodes:
  - { id: ask, type: agent, agent_ref: bot, prompt_template: 'Tell me about {{ inputs.topic }}' }
  - { id: out, type: output }
edges:
  - { from: ask, to: out }${extra}`)

const readFileTool = {
  definition: { name: "read_file", description: "read a file", parameters: { type: "object", properties: { path: { type: "string" } } } },
  run: (call: { readonly args: unknown }) => {
    const path = (call.args as { path?: string }).path
    return path === "notes.txt"
      ? Effect.succeed({ output: "remember to check loop bounds" })
      : Effect.fail(new ToolError({ code: "tool_failed", message: `no such file: ${path}` }))
  }
}

describe("engine: agents", () => {
  it.live("streams tokens, calls tools through the router, feeds results back, and reports cost", () =>
    Effect.gen(function* () {
      const model = scriptedModel([
        [{ type: "text_delta", text: "Let me look. " }, ...toolCall("call_1", "read_file", { path: "notes.txt" })],
        answer("Check your loop bounds.", { inputTokens: 200, outputTokens: 40 })
      ])
      const { events } = yield* runToRest(agentFlow()).pipe(
        Effect.provide(engineLayer({ model: model.layer, tools: [readFileTool] }))
      )
      checkLog(events)
      const tokens = ofType(events, "agent:token").map((e) => e.token).join("")
      assert.strictEqual(tokens, "Let me look. Check your loop bounds.")
      const call = ofType(events, "agent:tool_call")[0]!
      assert.deepStrictEqual(call.toolInput, { path: "notes.txt" })
      const result = ofType(events, "agent:tool_result")[0]!
      assert.isTrue(result.success)
      assert.strictEqual(result.outputSummary, "remember to check loop bounds")
      // The model got the system prompt interpolated, the tool list, and the tool result on turn 2.
      assert.strictEqual(model.requests[0]!.system, "Write in a plain tone.")
      assert.deepStrictEqual(model.requests[0]!.tools?.map((t) => t.name), ["read_file"])
      assert.deepStrictEqual(model.requests[0]!.messages[0]!.content, [{ type: "text", text: "Tell me about sums" }])
      const toolMessage = model.requests[1]!.messages[2]!
      assert.strictEqual(toolMessage.role, "tool")
      const costs = ofType(events, "cost:updated")
      assert.strictEqual(costs.length, 2)
      // 50 in × $3/MTok + 10 out × $15/MTok = 15,000 + 15,000 micro-cents; then 200 × 300 + 40 × 1500.
      assert.strictEqual(costs[0]!.costMicrocents, 30_000)
      assert.strictEqual(costs[1]!.costMicrocents, 120_000)
      assert.strictEqual(costs[1]!.cumulativeCostMicrocents, 150_000)
      const done = last(events)
      if (done.type === "run:completed") {
        assert.deepStrictEqual(done.outputs, { out: "Check your loop bounds." })
        assert.strictEqual(done.totalCostMicrocents, 150_000)
        assert.deepStrictEqual(done.totalTokensUsed, { input: 250, output: 50 })
      } else assert.fail(done.type)
    }))

  it.live("a stream cut midway still reports the tokens it used, then fails the node", () =>
    Effect.gen(function* () {
      const model = scriptedModel([
        [
          { type: "text_delta", text: "Half an ans" },
          { type: "stop", stopReason: "error", usage: { inputTokens: 80, outputTokens: 5 } },
          { type: "error", error: { kind: "transport", retryable: true, provider: "anthropic", message: "connection reset" } }
        ]
      ])
      const { events } = yield* runToRest(agentFlow()).pipe(Effect.provide(engineLayer({ model: model.layer, tools: [readFileTool] })))
      checkLog(events)
      const costs = ofType(events, "cost:updated")
      assert.deepStrictEqual(costs.map((c) => [c.inputTokens, c.outputTokens, c.costMicrocents]), [[80, 5, 80 * 300 + 5 * 1500]])
      const done = last(events)
      if (done.type === "run:failed") {
        assert.strictEqual(done.error.code, "provider_unavailable")
        assert.match(done.error.message, /connection reset/)
      } else assert.fail(done.type)
    }))

  it.live("a failing tool is reported to the model and the run goes on", () =>
    Effect.gen(function* () {
      const model = scriptedModel([toolCall("c1", "read_file", { path: "missing.txt" }), answer("No notes.")])
      const { events } = yield* runToRest(agentFlow()).pipe(
        Effect.provide(engineLayer({ model: model.layer, tools: [readFileTool] }))
      )
      checkLog(events)
      const result = ofType(events, "agent:tool_result")[0]!
      assert.isFalse(result.success)
      assert.strictEqual(result.errorCode, "tool_failed")
      assert.strictEqual(last(events).type, "run:completed")
    }))

  it.live("an agent that never stops calling tools fails with turn_limit", () =>
    Effect.gen(function* () {
      const model = scriptedModel(Array.from({ length: 17 }, (_, i) => toolCall(`c${i}`, "read_file", { path: "notes.txt" })))
      const { events } = yield* runToRest(agentFlow()).pipe(
        Effect.provide(engineLayer({ model: model.layer, tools: [readFileTool] }))
      )
      checkLog(events)
      assert.strictEqual(model.requests.length, 17)
      const done = last(events)
      if (done.type === "run:failed") assert.strictEqual(done.error.code, "turn_limit")
      else assert.fail(done.type)
    }))

  it.live("structured output is parsed and checked against output_schema", () =>
    Effect.gen(function* () {
      const schemaFlow = agentFlow().replace(
        "prompt_template: 'Tell me about {{ inputs.topic }}' }",
        "prompt_template: 'Rate it', output_schema: { type: object, required: [score], properties: { score: { type: number } } } }"
      )
      const good = scriptedModel([answer('{"score": 8}')])
      const ok = yield* runToRest(schemaFlow).pipe(Effect.provide(engineLayer({ model: good.layer, tools: [readFileTool] })))
      const done = last(ok.events)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: { score: 8 } })
      else assert.fail(done.type)
      assert.strictEqual(good.requests[0]!.responseFormat?.type, "json")

      const bad = scriptedModel([answer('{"score": "high"}')])
      const failed = yield* runToRest(schemaFlow).pipe(Effect.provide(engineLayer({ model: bad.layer, tools: [readFileTool] })))
      const doneBad = last(failed.events)
      if (doneBad.type === "run:failed") {
        assert.strictEqual(doneBad.error.code, "validation")
        assert.match(doneBad.error.message, /score/)
      } else assert.fail(doneBad.type)
    }))
})

describe("engine: budgets", () => {
  // Each call may cost up to 1000 output tokens × $15/MTok = 1,500,000 micro-cents.
  const budgeted = (onExceed: string, cap: number) =>
    wf(`id: budgeted
budget: { max_cost_microcents: ${cap}, on_exceed: ${onExceed} }
agents:
  - { id: bot, provider: openai, model: gpt-4o, max_tokens: 1000, system_prompt: hi }
nodes:
  - { id: first, type: agent, agent_ref: bot, prompt_template: one }
  - { id: second, type: agent, agent_ref: bot, prompt_template: two }
  - { id: out, type: output }
edges:
  - { from: first, to: second }
  - { from: second, to: out }`)
  // First call: 100 × 300 + 20 × 1500 = 60,000 micro-cents spent.
  const cap = 1_550_000

  it.live("fail: the call that could exceed the cap is not made and the run fails", () =>
    Effect.gen(function* () {
      const model = scriptedModel([answer("one"), answer("two")])
      const { events } = yield* runToRest(budgeted("fail", cap)).pipe(Effect.provide(engineLayer({ model: model.layer })))
      checkLog(events)
      assert.strictEqual(model.requests.length, 1)
      const done = last(events)
      if (done.type === "run:failed") {
        assert.strictEqual(done.error.code, "budget_exceeded")
        assert.strictEqual(done.error.nodeId, "second")
      } else assert.fail(done.type)
    }))

  it.live("warn: one budget:warning, and the run goes on", () =>
    Effect.gen(function* () {
      const model = scriptedModel([answer("one"), answer("two")])
      const { events } = yield* runToRest(budgeted("warn", cap)).pipe(Effect.provide(engineLayer({ model: model.layer })))
      checkLog(events)
      const warnings = ofType(events, "budget:warning")
      assert.strictEqual(warnings.length, 1)
      assert.strictEqual(warnings[0]!.spentMicrocents, 60_000)
      assert.strictEqual(last(events).type, "run:completed")
    }))

  it.live("pause_for_approval: pauses at a budget gate; approval continues, rejection fails", () =>
    Effect.gen(function* () {
      const approveModel = scriptedModel([answer("one"), answer("two")])
      yield* Effect.gen(function* () {
        const engine = yield* WorkflowEngine
        const { events, runId } = yield* runToRest(budgeted("pause_for_approval", cap))
        assert.strictEqual(last(events).type, "run:paused")
        const paused = ofType(events, "budget:paused")[0]!
        assert.strictEqual(paused.nodeId, "second")
        yield* engine.resume(runId, paused.gateId, { decision: "approved", decidedBy: "tester" })
        const all = yield* collectAll(runId)
        checkLog(all)
        assert.strictEqual(last(all).type, "run:completed")
        assert.strictEqual(approveModel.requests.length, 2)
      }).pipe(Effect.provide(engineLayer({ model: approveModel.layer })))

      const rejectModel = scriptedModel([answer("one"), answer("two")])
      yield* Effect.gen(function* () {
        const engine = yield* WorkflowEngine
        const { runId } = yield* runToRest(budgeted("pause_for_approval", cap))
        yield* engine.resume(runId, undefined, { decision: "rejected", decidedBy: "tester" })
        const all = yield* collectAll(runId)
        checkLog(all)
        const done = last(all)
        if (done.type === "run:failed") assert.strictEqual(done.error.code, "budget_exceeded")
        else assert.fail(done.type)
        assert.strictEqual(rejectModel.requests.length, 1)
      }).pipe(Effect.provide(engineLayer({ model: rejectModel.layer })))
    }))
})

describe("engine: live events", () => {
  it.live("a subscriber that joins mid-run gets every event once, in order", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const handle = yield* start(gated())
      const early = yield* Stream.runCollect(handle.events.pipe(Stream.take(2)))
      const follower = yield* Effect.fork(collect(handle.runId, 1))
      const tail = yield* Fiber.join(follower)
      assert.deepStrictEqual([...early, ...tail].map((e) => e.sequenceNumber), [...Array(early.length + tail.length).keys()])
      yield* engine.cancel(handle.runId)
    }).pipe(Effect.provide(engineLayer())))
})

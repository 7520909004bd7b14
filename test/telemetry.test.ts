/**
 * Tracing in one process (docs/observability.md): a run of the local engine, recorded by the
 * OpenTelemetry SDK into an in-memory exporter, is one trace whose root span is `run`, with a
 * `node` span per node attempt under it and the agent's `model.call` and `tool.call` spans under
 * its node, carrying ids, the GenAI attributes, usage and cost — and never a prompt, a tool
 * argument, a tool output or a secret input. Jobs carry the run's traceparent; with the tracer
 * disabled (telemetry off) they carry none.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import { type Job, queueDepth, RunQueue, ToolError, Tracing } from "@relavium/ports"
import { Telemetry, WorkflowEngine } from "@relavium/core"
import { answer, checkLog, collect, engineLayer, runToRest, scriptedModel, toolCall } from "../packages/core/test/harness.js"

const flow = `
schema_version: '1.0'
workflow:
  id: traced
  name: Traced
  inputs:
    - { name: token, type: secret }
  agents:
    - id: bot
      provider: anthropic
      model: claude-sonnet-4
      max_tokens: 1000
      system_prompt: 'You read files.'
      tools: [read_file]
  nodes:
    - { id: ask, type: agent, agent_ref: bot, prompt_template: 'Read notes.txt' }
    - { id: out, type: output }
  edges:
    - { from: ask, to: out }
`

const SECRET = "sk-secret-token-0123456789"
const TOOL_OUTPUT = "remember to check loop bounds"

const readFileTool = {
  definition: { name: "read_file", description: "read a file", parameters: { type: "object", properties: { path: { type: "string" } } } },
  run: (call: { readonly args: unknown }) => {
    const path = (call.args as { path?: string }).path
    return path === "notes.txt"
      ? Effect.succeed({ output: TOOL_OUTPUT })
      : Effect.fail(new ToolError({ code: "tool_failed", message: `no such file: ${path}` }))
  }
}

const model = () =>
  scriptedModel([
    toolCall("call_1", "read_file", { path: "notes.txt", token: SECRET }),
    answer("Check your loop bounds.", { inputTokens: 200, outputTokens: 40 })
  ])

const byName = (spans: ReadonlyArray<ReadableSpan>, name: string) => spans.filter((s) => s.name === name)
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId

/** The queue of the local engine, also telling which traceparents its jobs carried. */
const recordingQueue = (seen: Array<Job>) =>
  Layer.effect(
    RunQueue,
    Effect.map(RunQueue, (queue) =>
      RunQueue.of({
        offer: (jobs, options) => queue.offer(jobs, options),
        consume: (handler) => queue.consume((job) => Effect.zipRight(Effect.sync(() => void seen.push(job)), handler(job)))
      })
    )
  ).pipe(Layer.provide(RunQueue.layerMemory()))

describe("tracing a run", () => {
  it.live("is one trace: run → node → model.call / tool.call, with ids, usage and cost and no secret", () =>
    Effect.gen(function* () {
      const exporter = new InMemorySpanExporter()
      const jobs: Array<Job> = []
      const scripted = model()
      const inputTokens = Metric.tagged(Metric.tagged(Metric.tagged(Telemetry.tokens, "provider", "anthropic"), "model", "claude-sonnet-4"), "direction", "input")
      const tokensBefore = (yield* Metric.value(inputTokens)).count
      const { events, runId, spans } = yield* runToRest(flow, { token: SECRET }).pipe(
        Effect.provide(engineLayer({ model: scripted.layer, tools: [readFileTool], queue: recordingQueue(jobs) })),
        // Read once the engine has stopped, before the SDK shuts down (which empties the exporter).
        Effect.map((result) => ({ ...result, spans: [...exporter.getFinishedSpans()] })),
        Effect.provide(NodeSdk.layer(() => ({ resource: { serviceName: "relavium-test" }, spanProcessor: new SimpleSpanProcessor(exporter) })))
      )
      checkLog(events)
      assert.strictEqual(events.at(-1)!.type, "run:completed")

      const [run, ...otherRuns] = byName(spans, "run")
      assert.isDefined(run)
      assert.lengthOf(otherRuns, 0)
      assert.isUndefined(parentOf(run!), "the run span is the root")
      assert.strictEqual(run!.attributes["relavium.run_id"], runId)
      assert.strictEqual(run!.attributes["relavium.org_id"], "local")
      assert.isString(run!.attributes["relavium.workflow_id"])
      const traceId = run!.spanContext().traceId
      // Everything the engine recorded for the run is in its trace.
      for (const span of spans) assert.strictEqual(span.spanContext().traceId, traceId, `${span.name} is in the run's trace`)

      const nodes = byName(spans, "node")
      assert.deepStrictEqual(nodes.map((n) => n.attributes["relavium.node_id"]).sort(), ["ask", "out"])
      for (const node of nodes) assert.strictEqual(parentOf(node), run!.spanContext().spanId, "a node hangs under the run")
      const ask = nodes.find((n) => n.attributes["relavium.node_id"] === "ask")!
      assert.strictEqual(ask.attributes["relavium.node_type"], "agent")
      assert.strictEqual(ask.attributes["relavium.attempt"], 1)
      assert.strictEqual(ask.attributes["relavium.node_status"], "completed")

      const calls = byName(spans, "model.call")
      assert.lengthOf(calls, 2)
      for (const call of calls) {
        assert.strictEqual(parentOf(call), ask.spanContext().spanId, "a model call hangs under its node")
        assert.strictEqual(call.attributes["gen_ai.system"], "anthropic")
        assert.strictEqual(call.attributes["gen_ai.provider.name"], "anthropic")
        assert.strictEqual(call.attributes["gen_ai.request.model"], "claude-sonnet-4")
      }
      assert.deepStrictEqual(
        calls.map((c) => [c.attributes["gen_ai.usage.input_tokens"], c.attributes["gen_ai.usage.output_tokens"], c.attributes["relavium.cost_microcents"]]),
        [[50, 10, 30_000], [200, 40, 120_000]]
      )

      const [tool, ...otherTools] = byName(spans, "tool.call")
      assert.isDefined(tool)
      assert.lengthOf(otherTools, 0)
      assert.strictEqual(parentOf(tool!), ask.spanContext().spanId, "a tool call hangs under its node")
      assert.strictEqual(tool!.attributes["gen_ai.tool.name"], "read_file")
      assert.strictEqual(tool!.attributes["relavium.tool_status"], "ok")

      // Store commits and queue hops are recorded too.
      assert.isAbove(byName(spans, "store.commit").length, 0)
      assert.isAbove(byName(spans, "queue.offer").length, 0)

      // No secret input, prompt, tool argument or tool output in any span.
      const recorded = JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })))
      for (const never of [SECRET, TOOL_OUTPUT, "notes.txt", "You read files.", "Check your loop bounds."]) {
        assert.notInclude(recorded, never)
      }

      // Every job of the run carried the run span's traceparent.
      assert.isAbove(jobs.length, 0)
      for (const job of jobs) assert.strictEqual(job.traceparent, `00-${traceId}-${run!.spanContext().spanId}-01`, job._tag)

      // Usage was counted as metrics.
      assert.strictEqual((yield* Metric.value(inputTokens)).count - tokensBefore, 250)
    }))

  it.live("with the tracer disabled (telemetry off) no job carries a traceparent", () =>
    Effect.gen(function* () {
      const jobs: Array<Job> = []
      const { events } = yield* runToRest(flow, { token: SECRET }).pipe(
        Effect.provide(engineLayer({ model: model().layer, tools: [readFileTool], queue: recordingQueue(jobs) })),
        Effect.withTracerEnabled(false)
      )
      assert.strictEqual(events.at(-1)!.type, "run:completed")
      assert.isAbove(jobs.length, 0)
      for (const job of jobs) assert.isUndefined(job.traceparent, job._tag)
    }))
})

const gated = `
schema_version: '1.0'
workflow:
  id: gated
  nodes:
    - { id: plan, type: transform, transform: '1' }
    - { id: approve, type: human_gate, gate_type: approval, message_template: 'Ship it?' }
    - { id: out, type: output }
  edges:
    - { from: plan, to: approve }
    - { from: approve, to: out }
`

describe("tracing a gate", () => {
  it.live("the wait is a span from the gate's opening to its decision, under the span that decided it", () =>
    Effect.gen(function* () {
      const exporter = new InMemorySpanExporter()
      const { paused, spans } = yield* Effect.gen(function* () {
        const { events, runId } = yield* runToRest(gated)
        const paused = events.find((e) => e.type === "human_gate:paused")!
        const engine = yield* WorkflowEngine
        yield* engine.resume(runId, undefined, { decision: "approved", decidedBy: "someone@example.com" }).pipe(Effect.withSpan("decide"))
        const rest = yield* collect(runId, events.at(-1)!.sequenceNumber)
        assert.strictEqual(rest.at(-1)!.type, "run:completed")
        return paused
      }).pipe(
        Effect.provide(engineLayer()),
        // Read once the engine has stopped, before the SDK shuts down (which empties the exporter).
        Effect.map((paused) => ({ paused, spans: [...exporter.getFinishedSpans()] })),
        Effect.provide(NodeSdk.layer(() => ({ resource: { serviceName: "relavium-test" }, spanProcessor: new SimpleSpanProcessor(exporter) })))
      )
      const decide = spans.find((s) => s.name === "decide")!
      const [wait, ...others] = spans.filter((s) => s.name === "gate.wait")
      assert.isDefined(wait)
      assert.lengthOf(others, 0)
      const decision = spans.find((s) => s.name === "gate.decision")!
      assert.strictEqual(parentOf(decision), decide.spanContext().spanId)
      assert.strictEqual(parentOf(wait!), decision.spanContext().spanId)
      // The rest of the run (the nodes after the gate) hangs under the decision, in its trace.
      const out = spans.find((s) => s.name === "node" && s.attributes["relavium.node_id"] === "out")!
      assert.strictEqual(parentOf(out), decision.spanContext().spanId)
      assert.strictEqual(wait!.attributes["relavium.node_id"], "approve")
      assert.strictEqual(wait!.attributes["relavium.gate_decision"], "approved")
      assert.strictEqual(wait!.attributes["relavium.gate_decided_by"], "user")
      // It starts when the gate opened (its human_gate:paused event).
      const [seconds, nanos] = wait!.startTime
      assert.strictEqual(seconds * 1000 + Math.floor(nanos / 1e6), Date.parse(paused.timestamp))
      assert.notInclude(JSON.stringify(spans.map((s) => s.attributes)), "someone@example.com")
    }))
})

describe("queue metrics", () => {
  it.effect("the in-memory queue's depth is a gauge per pool", () =>
    Effect.gen(function* () {
      const queue = yield* RunQueue
      const depth = Metric.tagged(queueDepth, "pool", "orchestrator")
      yield* queue.offer([{ _tag: "Advance", runId: "r1" }, { _tag: "Advance", runId: "r2" }, { _tag: "Advance", runId: "r3" }])
      assert.strictEqual((yield* Metric.value(depth)).value, 3)
      // A duplicate id is dropped and leaves the depth as it was.
      yield* queue.offer([{ _tag: "Advance", runId: "r1" }])
      assert.strictEqual((yield* Metric.value(depth)).value, 3)
    }).pipe(Effect.provide(RunQueue.layerMemory())))
})

describe("traceparent", () => {
  it("is parsed only when well formed", () => {
    const parsed = Tracing.parseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert.strictEqual(parsed._tag, "Some")
    if (parsed._tag === "Some") {
      assert.strictEqual(parsed.value.traceId, "0af7651916cd43dd8448eb211c80319c")
      assert.strictEqual(parsed.value.spanId, "b7ad6b7169203331")
      assert.isTrue(parsed.value.sampled)
      assert.strictEqual(Tracing.formatTraceparent(parsed.value), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    }
    for (const bad of [undefined, "", "00-xyz-b7ad6b7169203331-01", "00-00000000000000000000000000000000-b7ad6b7169203331-01", "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"]) {
      assert.strictEqual(Tracing.parseTraceparent(bad)._tag, "None", String(bad))
    }
  })
})

/**
 * Time travel: forking an ended run from a node and retrying a failed run, on the local engine with
 * a model whose calls are counted. The new run reuses the recorded outputs of the nodes it does not
 * run again (`node:completed` with `reusedFrom`) and never calls the model for them.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { Llm, type RunEvent as RE } from "@relavium/domain"
import { LlmProvider, RunStore } from "@relavium/ports"
import { WorkflowEngine } from "../src/index.js"
import { downstreamOf } from "../src/Fork.js"
import { answer, checkLog, collect, collectAll, compile, engineLayer, last, ofType, runToRest, scriptedModel } from "./harness.js"

const wf = (body: string) => `schema_version: '1.0'\nworkflow:\n${body.replace(/^/gm, "  ")}\n`

/** A model that answers each call with `[<the last user message>]`, and counts its calls by prompt. */
const echoModel = () => {
  const prompts: Array<string> = []
  const layer = Layer.succeed(
    LlmProvider,
    LlmProvider.of({
      stream: (request: Llm.LlmRequest) =>
        Stream.suspend(() => {
          const user = [...request.messages].reverse().find((m) => m.role === "user")
          const text = (user?.content ?? []).map((part) => (part.type === "text" ? part.text : "")).join("")
          prompts.push(text)
          return Stream.fromIterable(answer(`[${text}]`))
        })
    })
  )
  return { layer, prompts }
}

const agents = `agents:
  - { id: bot, provider: openai, model: gpt-4o-mini, system_prompt: hi }`

/** Five agent nodes in a chain; only n3 reads the `style` input. */
const chain = wf(`id: chain
inputs:
  - { name: topic, type: string }
  - { name: style, type: string, default: plain }
${agents}
nodes:
  - { id: n1, type: agent, agent_ref: bot, prompt_template: 'outline {{ inputs.topic }}' }
  - { id: n2, type: agent, agent_ref: bot, prompt_template: 'expand {{ run.outputs["n1"] }}' }
  - { id: n3, type: agent, agent_ref: bot, prompt_template: 'write it {{ inputs.style }}: {{ run.outputs["n2"] }}' }
  - { id: n4, type: agent, agent_ref: bot, prompt_template: 'review {{ run.outputs["n3"] }}' }
  - { id: n5, type: agent, agent_ref: bot, prompt_template: 'polish {{ run.outputs["n4"] }}' }
  - { id: out, type: output }
edges:
  - { from: n1, to: n2 }
  - { from: n2, to: n3 }
  - { from: n3, to: n4 }
  - { from: n4, to: n5 }
  - { from: n5, to: out }`)

const outputsOf = (events: ReadonlyArray<RE.RunEvent>) =>
  Object.fromEntries(ofType(events, "node:completed").map((e) => [e.nodeId, e.output]))

const reusedOf = (events: ReadonlyArray<RE.RunEvent>) =>
  ofType(events, "node:completed").filter((e) => e.reusedFrom !== undefined).map((e) => e.nodeId)

const startedOf = (events: ReadonlyArray<RE.RunEvent>) => ofType(events, "node:started").map((e) => e.nodeId)

const runCount = Effect.flatMap(RunStore, (store) => store.list({ limit: 1000 })).pipe(Effect.map((runs) => runs.length))

describe("what a fork runs again", () => {
  it("is the node, what follows it by flow or data edges, and a node reading every output unless upstream of it", () => {
    const plan = compile(
      wf(`id: reach
nodes:
  - { id: a, type: transform, transform: '1' }
  - { id: b, type: transform, transform: 'run.outputs["a"] + 1' }
  - { id: c, type: transform, transform: '3' }
  - { id: every, type: transform, transform: 'Object.keys(run.outputs).length' }
  - { id: late, type: transform, transform: '4' }
  - { id: out, type: output }
edges:
  - { from: a, to: c }
  - { from: c, to: out }
  - { from: every, to: late }`)
    )
    const sorted = (ids: ReadonlySet<string>) => [...ids].sort()
    assert.strictEqual(plan.outputRefs.get("every"), "all")
    // b reads a (a data edge), c follows a; `every` may read anything a changes, and `late` follows it.
    assert.deepStrictEqual(sorted(downstreamOf(plan, "a")), ["a", "b", "c", "every", "late", "out"])
    assert.deepStrictEqual(sorted(downstreamOf(plan, "c")), ["c", "every", "late", "out"])
    // `every` is upstream of `late`: what it read is unchanged, so it is reused.
    assert.deepStrictEqual(sorted(downstreamOf(plan, "late")), ["late"])
    assert.deepStrictEqual(sorted(downstreamOf(plan, "out")), ["every", "late", "out"])
  })
})

describe("fork", () => {
  it.live("a five-agent chain forked from n3 with a changed input runs n3–n5 only, with the new input", () => {
    const model = echoModel()
    return Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const original = yield* runToRest(chain, { topic: "rivers" })
      assert.strictEqual(last(original.events).type, "run:completed")
      assert.strictEqual(model.prompts.length, 5)

      const handle = yield* engine.fork(original.runId, { from: "n3", inputs: { style: "formal" } })
      assert.notStrictEqual(handle.runId, original.runId)
      const events = yield* collectAll(handle.runId)
      checkLog(events)
      // Three more model calls: n3, n4 and n5; n1 and n2 were not asked again.
      assert.strictEqual(model.prompts.length, 8)
      assert.deepStrictEqual(startedOf(events), ["n3", "n4", "n5", "out"])
      assert.deepStrictEqual(reusedOf(events), ["n1", "n2"])
      const started = events[0]!
      if (started.type !== "run:started") return assert.fail(started.type)
      assert.deepStrictEqual(started.forkedFrom, { runId: original.runId, nodeId: "n3", kind: "fork" })
      assert.deepStrictEqual(started.inputs, { topic: "rivers", style: "formal" })
      assert.strictEqual(started.workflowId, (original.events[0] as RE.RunEventOf<"run:started">).workflowId)
      for (const reused of ofType(events, "node:completed").filter((e) => e.reusedFrom !== undefined)) {
        assert.strictEqual(reused.reusedFrom, original.runId)
        assert.deepStrictEqual(reused.tokensUsed, { input: 0, output: 0 })
      }

      const before = outputsOf(original.events)
      const after = outputsOf(events)
      assert.strictEqual(after.n1, before.n1)
      assert.strictEqual(after.n2, before.n2)
      assert.match(String(before.n3), /write it plain/)
      assert.match(String(after.n3), /write it formal/)
      assert.notStrictEqual(after.out, before.out)
      const done = last(events)
      if (done.type !== "run:completed") return assert.fail(done.type)
      assert.match(String(done.outputs.out), /^\[polish \[review \[write it formal: \[expand \[outline rivers\]\]\]\]\]$/)
      // Only the nodes that ran count towards the new run's tokens.
      assert.deepStrictEqual(done.totalTokensUsed, { input: 300, output: 60 })
    }).pipe(Effect.provide(engineLayer({ model: model.layer })))
  })

  it.live("a gate before `from` keeps its decision; a gate after it waits for a new one", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const gatedTwice = wf(`id: gated-twice
inputs:
  - { name: suffix, type: string, default: a }
nodes:
  - { id: pick, type: human_gate, gate_type: input, message_template: 'Which tag?' }
  - { id: build, type: transform, transform: 'run.outputs["pick"].tag + "-" + inputs.suffix' }
  - { id: ship, type: human_gate, gate_type: approval, message_template: 'Ship {{ run.outputs["build"] }}?' }
  - { id: out, type: transform, transform: 'run.outputs["build"]' }
  - { id: result, type: output }
edges:
  - { from: pick, to: build }
  - { from: build, to: ship }
  - { from: ship, to: out }
  - { from: out, to: result }`)
      const original = yield* runToRest(gatedTwice)
      yield* engine.resume(original.runId, undefined, { decision: "input_provided", decidedBy: "tester", payload: { tag: "v1" } })
      const paused = yield* collect(original.runId, last(original.events).sequenceNumber)
      assert.strictEqual(last(paused).type, "run:paused")
      yield* engine.resume(original.runId, undefined, { decision: "approved", decidedBy: "tester" })
      assert.strictEqual(last(yield* collectAll(original.runId)).type, "run:completed")

      const forked = yield* engine.fork(original.runId, { from: "build", inputs: { suffix: "b" } })
      const first = yield* collect(forked.runId)
      // The input gate upstream kept its decision; the approval gate downstream asks again.
      assert.deepStrictEqual(reusedOf(first), ["pick"])
      assert.deepStrictEqual(
        ofType(first, "human_gate:paused").map((e) => [e.nodeId, e.message]),
        [["ship", "Ship v1-b?"]]
      )
      assert.strictEqual(last(first).type, "run:paused")
      yield* engine.resume(forked.runId, undefined, { decision: "approved", decidedBy: "tester" })
      const all = yield* collectAll(forked.runId)
      checkLog(all)
      const done = last(all)
      if (done.type !== "run:completed") return assert.fail(done.type)
      assert.deepStrictEqual(done.outputs, { result: "v1-b" })
    }).pipe(Effect.provide(engineLayer())))

  it.live("a failed run forked from its failed node with a fixed input completes, reusing what came before", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const checked = wf(`id: checked
inputs:
  - { name: n, type: number }
nodes:
  - { id: base, type: transform, transform: '10' }
  - { id: check, type: transform, transform: 'inputs.n > 0 ? run.outputs["base"] + inputs.n : undefined.boom' }
  - { id: after, type: transform, transform: 'run.outputs["check"] * 2' }
  - { id: out, type: output }
edges:
  - { from: base, to: check }
  - { from: check, to: after }
  - { from: after, to: out }`)
      const original = yield* runToRest(checked, { n: -1 })
      assert.strictEqual(last(original.events).type, "run:failed")
      const forked = yield* engine.fork(original.runId, { from: "check", inputs: { n: "4" }, coerceStrings: true })
      const events = yield* collectAll(forked.runId)
      checkLog(events)
      assert.deepStrictEqual(reusedOf(events), ["base"])
      assert.deepStrictEqual(startedOf(events), ["check", "after", "out"])
      const done = last(events)
      if (done.type !== "run:completed") return assert.fail(done.type)
      assert.deepStrictEqual(done.outputs, { out: 28 })
    }).pipe(Effect.provide(engineLayer())))

  it.live("a parallel run forked from one branch runs that branch and what follows it; its siblings are reused", () => {
    const model = echoModel()
    return Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const fanOut = wf(`id: fan-out
inputs:
  - { name: b_topic, type: string, default: birds }
${agents}
nodes:
  - { id: start, type: input }
  - { id: split, type: parallel, parallel_of: [a, b, c] }
  - { id: a, type: agent, agent_ref: bot, prompt_template: 'ants' }
  - { id: b, type: agent, agent_ref: bot, prompt_template: '{{ inputs.b_topic }}' }
  - { id: c, type: agent, agent_ref: bot, prompt_template: 'cats' }
  - { id: gather, type: merge, merge_strategy: concat }
  - { id: out, type: output }
edges:
  - { from: start, to: split }
  - { from: a, to: gather }
  - { from: b, to: gather }
  - { from: c, to: gather }
  - { from: gather, to: out }`)
      const original = yield* runToRest(fanOut)
      assert.strictEqual(model.prompts.length, 3)
      const forked = yield* engine.fork(original.runId, { from: "b", inputs: { b_topic: "bees" } })
      const events = yield* collectAll(forked.runId)
      checkLog(events)
      // One model call: branch b. Branches a and c, the split and the input are reused.
      assert.deepStrictEqual(model.prompts.slice(3), ["bees"])
      assert.deepStrictEqual(reusedOf(events), ["start", "split", "a", "c"])
      assert.deepStrictEqual(startedOf(events), ["b", "gather", "out"])
      const done = last(events)
      if (done.type !== "run:completed") return assert.fail(done.type)
      assert.deepStrictEqual(done.outputs, { out: ["[ants]", "[bees]", "[cats]"] })
    }).pipe(Effect.provide(engineLayer({ model: model.layer })))
  })

  it.live("secret inputs stay masked on the new run and must be given again; the masked value is never used", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const secretive = wf(`id: secretive
inputs:
  - { name: token, type: secret }
  - { name: n, type: number, default: 1 }
nodes:
  - { id: n, type: transform, transform: 'inputs.n' }
  - { id: check, type: transform, transform: 'inputs.token === "s3cr3t" ? "the real secret" : "not the secret"' }
  - { id: out, type: output }
edges:
  - { from: n, to: check }
  - { from: check, to: out }`)
      const original = yield* runToRest(secretive, { token: "s3cr3t" })
      const runs = yield* runCount
      const refused = yield* engine.fork(original.runId, { from: "check" }).pipe(Effect.flip)
      assert.strictEqual(refused.reason, "invalid_input")
      assert.match(refused.message, /inputs\.token: is a secret input, whose value was not stored: give it again/)
      assert.strictEqual(yield* runCount, runs)

      const forked = yield* engine.fork(original.runId, { from: "check", inputs: { token: "s3cr3t" } })
      const events = yield* collectAll(forked.runId)
      assert.notInclude(JSON.stringify(events), "s3cr3t")
      const started = events[0]!
      if (started.type === "run:started") assert.deepStrictEqual(started.inputs, { token: { secret: true, ref: "inputs.token" }, n: 1 })
      const done = last(events)
      if (done.type !== "run:completed") return assert.fail(done.type)
      assert.deepStrictEqual(done.outputs, { out: "the real secret" })
    }).pipe(Effect.provide(engineLayer())))

  it.live("bad requests are refused with a clear error and create no run", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const simple = wf(`id: simple
inputs:
  - { name: n, type: number, default: 1 }
nodes:
  - { id: a, type: transform, transform: 'inputs.n' }
  - { id: gate, type: human_gate, gate_type: approval }
  - { id: out, type: output }
edges:
  - { from: a, to: gate }
  - { from: gate, to: out }`)
      const waiting = yield* runToRest(simple)
      assert.strictEqual(last(waiting.events).type, "run:paused")
      const runs = yield* runCount

      const unknownRun = yield* engine.fork("no-such-run", { from: "a" }).pipe(Effect.flip)
      assert.strictEqual(unknownRun.reason, "not_found")
      assert.match(unknownRun.message, /no run with id no-such-run/)

      const notEnded = yield* engine.fork(waiting.runId, { from: "a" }).pipe(Effect.flip)
      assert.strictEqual(notEnded.reason, "conflict")
      assert.match(notEnded.message, /is waiting: only an ended run can be forked/)
      const retryNotEnded = yield* engine.retry(waiting.runId).pipe(Effect.flip)
      assert.strictEqual(retryNotEnded.reason, "conflict")

      yield* engine.cancel(waiting.runId)
      const unknownNode = yield* engine.fork(waiting.runId, { from: "nope" }).pipe(Effect.flip)
      assert.strictEqual(unknownNode.reason, "invalid_input")
      assert.match(unknownNode.message, /has no node 'nope' \(nodes: a, gate, out\)/)

      const badValue = yield* engine.fork(waiting.runId, { from: "a", inputs: { n: "many" }, coerceStrings: true }).pipe(Effect.flip)
      assert.strictEqual(badValue.reason, "invalid_input")
      assert.match(badValue.message, /inputs\.n: must be a number/)
      const unknownInput = yield* engine.fork(waiting.runId, { from: "a", inputs: { m: 2 } }).pipe(Effect.flip)
      assert.match(unknownInput.message, /inputs\.m: unknown input/)

      const retryInput = yield* engine.retry(waiting.runId, { inputs: { n: 2 } }).pipe(Effect.flip)
      assert.strictEqual(retryInput.reason, "invalid_input")
      assert.match(retryInput.message, /inputs\.n: a retry runs with the failed run's inputs/)
      // The only run created is the one the test started.
      assert.strictEqual(yield* runCount, runs)
    }).pipe(Effect.provide(engineLayer())))
})

describe("retry", () => {
  it.live("a failed run is retried as a new run that runs only its failed node and what never ran", () => {
    const model = scriptedModel([
      answer("one"),
      new Llm.LlmError({ kind: "auth", retryable: false, provider: "openai", message: "invalid key", status: 401 }),
      answer("two"),
      answer("three")
    ])
    return Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const three = wf(`id: three
${agents}
nodes:
  - { id: first, type: agent, agent_ref: bot, prompt_template: one }
  - { id: second, type: agent, agent_ref: bot, prompt_template: two }
  - { id: third, type: agent, agent_ref: bot, prompt_template: three }
  - { id: out, type: output }
edges:
  - { from: first, to: second }
  - { from: second, to: third }
  - { from: third, to: out }`)
      const original = yield* runToRest(three)
      const failed = last(original.events)
      if (failed.type !== "run:failed") return assert.fail(failed.type)
      assert.strictEqual(failed.error.nodeId, "second")
      assert.strictEqual(model.requests.length, 2)

      const retried = yield* engine.retry(original.runId)
      const events = yield* collectAll(retried.runId)
      checkLog(events)
      // Two more model calls: the failed node and the one after it; `first` was not asked again.
      assert.strictEqual(model.requests.length, 4)
      assert.deepStrictEqual(reusedOf(events), ["first"])
      assert.deepStrictEqual(startedOf(events), ["second", "third", "out"])
      const started = events[0]!
      if (started.type === "run:started") assert.deepStrictEqual(started.forkedFrom, { runId: original.runId, kind: "retry" })
      const done = last(events)
      if (done.type !== "run:completed") return assert.fail(done.type)
      assert.deepStrictEqual(done.outputs, { out: "three" })

      // A completed run has nothing to retry.
      const again = yield* engine.retry(retried.runId).pipe(Effect.flip)
      assert.strictEqual(again.reason, "conflict")
      assert.match(again.message, /completed: there is nothing to retry/)
    }).pipe(Effect.provide(engineLayer({ model: model.layer })))
  })

  it.live("a cancelled run is retried: its completed nodes are reused, the gate it waited at asks again", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const gated = wf(`id: gated
nodes:
  - { id: plan, type: transform, transform: '"plan"' }
  - { id: approve, type: human_gate, gate_type: approval }
  - { id: out, type: output }
edges:
  - { from: plan, to: approve }
  - { from: approve, to: out }`)
      const original = yield* runToRest(gated)
      yield* engine.cancel(original.runId)
      const retried = yield* engine.retry(original.runId)
      const first = yield* collect(retried.runId)
      assert.deepStrictEqual(reusedOf(first), ["plan"])
      assert.strictEqual(last(first).type, "run:paused")
      yield* engine.resume(retried.runId, undefined, { decision: "approved", decidedBy: "tester" })
      const done = last(yield* collectAll(retried.runId))
      if (done.type !== "run:completed") return assert.fail(done.type)
      assert.deepStrictEqual(done.outputs, { out: { decision: "approved" } })
    }).pipe(Effect.provide(engineLayer())))
})

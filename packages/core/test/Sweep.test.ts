/**
 * Lost jobs: a worker killed (SIGKILL) after committing a step and before
 * offering its jobs leaves a run that nothing moves. Workers sweep for running
 * runs that have written nothing for a while and offer their jobs again. Here
 * the queue loses such offers (as the killed process did), with the API side
 * (`layerEngine`) and a worker (`layerWorkerWith`) as in the cloud. The sweep's
 * period and the staleness it looks for are time on the `Clock`: the tests move
 * a TestClock past them.
 */
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream, TestClock } from "effect"
import { layerEngine, layerWorkerWith, QuickJsSandbox } from "@relavium/core"
import { DaemonRouter, type Job, LlmProvider, RunQueue, RunStore, UpdateHub, WorkflowStore } from "@relavium/ports"
import { answer, checkLog, collect, flatPricing, ofType, scriptedModel, start, storedEvents, waitUntil } from "./harness.js"

const chain = `schema_version: '1.0'
workflow:
  id: lossy
  nodes:
    - { id: a, type: transform, transform: '1' }
    - { id: b, type: transform, transform: '2' }
    - { id: c, type: transform, transform: '3' }
    - { id: out, type: output }
  edges:
    - { from: a, to: b }
    - { from: b, to: c }
    - { from: c, to: out }
`

/** A memory queue that drops the first offer of each job `lose` picks, as a process killed before its offer. */
const lossyQueue = (lose: (job: Job) => boolean, lost: Array<Job>) =>
  Layer.effect(
    RunQueue,
    Effect.map(RunQueue, (inner) =>
      RunQueue.of({
        ...inner,
        offer: (jobs, options) => {
          const kept = jobs.filter((job) => {
            const key = JSON.stringify(job)
            if (!lose(job) || lost.some((l) => JSON.stringify(l) === key)) return true
            lost.push(job)
            return false
          })
          return inner.offer(kept, options)
        }
      })
    )
  ).pipe(Layer.provide(RunQueue.layerMemory()))

const cloudLike = (queue: Layer.Layer<RunQueue>, model: Layer.Layer<LlmProvider> = scriptedModel([]).layer) => {
  const infra = Layer.mergeAll(RunStore.layerMemory, UpdateHub.layerMemory, queue, WorkflowStore.layerMemory, NodeContext.layer)
  const execution = Layer.mergeAll(QuickJsSandbox.layerQuickJs, model, flatPricing, DaemonRouter.layerInProcess([]))
  const worker = layerWorkerWith({ sweepEvery: "100 millis", staleAfter: "300 millis" }).pipe(Layer.provide(execution))
  return Layer.merge(layerEngine({ executionMode: "cloud" }), worker).pipe(Layer.provideMerge(infra))
}

/** The run is stuck once the lost offer happened; then the clock passes the staleness and a sweep. */
const stuckThenSwept = (lost: ReadonlyArray<Job>, runId: string) =>
  Effect.gen(function* () {
    const following = yield* Effect.fork(collect(runId))
    yield* waitUntil("the lost offer", Effect.sync(() => lost.length > 0))
    yield* TestClock.adjust("400 millis")
    return yield* Fiber.join(following)
  })

describe("the sweep for lost jobs", () => {
  it.effect("a node started but never offered is offered again; the run completes and each node runs once", () => {
    const lost: Array<Job> = []
    return Effect.gen(function* () {
      const handle = yield* start(chain)
      const events = yield* stuckThenSwept(lost, handle.runId)
      checkLog(events)
      assert.strictEqual(events.at(-1)!.type, "run:completed")
      assert.deepStrictEqual(ofType(events, "node:completed").map((e) => e.nodeId), ["a", "b", "c", "out"])
      // The loss happened: b's job was dropped once, after node:started b was committed.
      assert.deepStrictEqual(lost, [{ _tag: "ExecuteNode", runId: handle.runId, nodeId: "b", attempt: 1 }])
    }).pipe(Effect.provide(cloudLike(lossyQueue((job) => job._tag === "ExecuteNode" && job.nodeId === "b", lost))))
  })

  it.effect("a run whose first step was lost is started by the sweep", () => {
    const lost: Array<Job> = []
    return Effect.gen(function* () {
      const handle = yield* start(chain)
      const events = yield* stuckThenSwept(lost, handle.runId)
      checkLog(events)
      assert.strictEqual(events.at(-1)!.type, "run:completed")
      assert.strictEqual(lost.length, 1)
      assert.strictEqual(lost[0]!._tag, "Advance")
    }).pipe(Effect.provide(cloudLike(lossyQueue((job) => job._tag === "Advance", lost))))
  })

  it.effect("a node that runs longer than the staleness is offered again but not run beside itself: its model is called once", () => {
    const offered: Array<Job> = []
    let calls = 0
    // The model takes 1 s on the clock to answer: the sweep finds the run silent for 300 ms meanwhile.
    const slowModel = Layer.succeed(
      LlmProvider,
      LlmProvider.of({
        stream: () =>
          Stream.fromEffect(Effect.sync(() => calls++).pipe(Effect.zipRight(Effect.sleep("1 second")))).pipe(
            Stream.drain,
            Stream.concat(Stream.fromIterable(answer("slow but sure")))
          )
      })
    )
    const recording = Layer.effect(
      RunQueue,
      Effect.map(RunQueue, (inner) => RunQueue.of({ ...inner, offer: (jobs, options) => Effect.zipRight(Effect.sync(() => offered.push(...jobs)), inner.offer(jobs, options)) }))
    ).pipe(Layer.provide(RunQueue.layerMemory()))
    const sweptAgain = () => offered.filter((job) => job._tag === "ExecuteNode" && job.nodeId === "ask").length >= 2
    return Effect.gen(function* () {
      const handle = yield* start(`schema_version: '1.0'
workflow:
  id: slow-agent
  agents:
    - { id: bot, provider: anthropic, model: claude-sonnet-4, system_prompt: hi }
  nodes:
    - { id: ask, type: agent, agent_ref: bot, prompt_template: go }
    - { id: out, type: output }
  edges:
    - { from: ask, to: out }
`)
      const following = yield* Effect.fork(collect(handle.runId))
      yield* waitUntil("the model call", Effect.sync(() => calls === 1))
      yield* TestClock.adjust("400 millis")
      yield* waitUntil("the sweep to offer the running node again", Effect.sync(sweptAgain))
      yield* TestClock.adjust("600 millis")
      const events = yield* Fiber.join(following)
      checkLog(events)
      assert.strictEqual(events.at(-1)!.type, "run:completed")
      assert.strictEqual(calls, 1)
      const stored = yield* storedEvents(handle.runId)
      assert.deepStrictEqual(ofType(stored, "node:started").map((e) => [e.nodeId, e.attemptNumber]), [["ask", 1], ["out", 1]])
      assert.deepStrictEqual(ofType(stored, "node:completed").map((e) => e.nodeId), ["ask", "out"])
    }).pipe(Effect.provide(cloudLike(recording, slowModel)))
  })
})

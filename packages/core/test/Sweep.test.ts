/**
 * Lost jobs: a worker killed (SIGKILL) after committing a step and before
 * offering its jobs leaves a run that nothing moves. Workers sweep for running
 * runs that have written nothing for a while and offer their jobs again. Here
 * the queue loses such offers (as the killed process did), with the API side
 * (`layerEngine`) and a worker (`layerWorkerWith`) as in the cloud.
 */
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { layerEngine, layerWorkerWith, QuickJsSandbox } from "@relavium/core"
import { DaemonRouter, type Job, RunQueue, RunStore, UpdateHub, WorkflowStore } from "@relavium/ports"
import { checkLog, collect, flatPricing, ofType, scriptedModel, start } from "./harness.js"

// Literal transforms are answered at once (no expression worker to start), so no node runs near
// the 300 ms staleness of these tests: the memory queue, unlike BullMQ, takes a job offered again
// while the same job is running.
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

const cloudLike = (queue: Layer.Layer<RunQueue>) => {
  const infra = Layer.mergeAll(RunStore.layerMemory, UpdateHub.layerMemory, queue, WorkflowStore.layerMemory, NodeContext.layer)
  const execution = Layer.mergeAll(QuickJsSandbox.layerQuickJs, scriptedModel([]).layer, flatPricing, DaemonRouter.layerInProcess([]))
  const worker = layerWorkerWith({ sweepEvery: "100 millis", staleAfter: "300 millis" }).pipe(Layer.provide(execution))
  return Layer.merge(layerEngine({ executionMode: "cloud" }), worker).pipe(Layer.provideMerge(infra))
}

describe("the sweep for lost jobs", () => {
  it.live("a node started but never offered is offered again; the run completes and each node runs once", () => {
    const lost: Array<Job> = []
    return Effect.gen(function* () {
      const handle = yield* start(chain)
      const events = yield* collect(handle.runId)
      checkLog(events)
      assert.strictEqual(events.at(-1)!.type, "run:completed")
      assert.deepStrictEqual(ofType(events, "node:completed").map((e) => e.nodeId), ["a", "b", "c", "out"])
      // The loss happened: b's job was dropped once, after node:started b was committed.
      assert.deepStrictEqual(lost, [{ _tag: "ExecuteNode", runId: handle.runId, nodeId: "b", attempt: 1 }])
    }).pipe(Effect.provide(cloudLike(lossyQueue((job) => job._tag === "ExecuteNode" && job.nodeId === "b", lost))))
  })

  it.live("a run whose first step was lost is started by the sweep", () => {
    const lost: Array<Job> = []
    return Effect.gen(function* () {
      const handle = yield* start(chain)
      const events = yield* collect(handle.runId)
      checkLog(events)
      assert.strictEqual(events.at(-1)!.type, "run:completed")
      assert.strictEqual(lost.length, 1)
      assert.strictEqual(lost[0]!._tag, "Advance")
    }).pipe(Effect.provide(cloudLike(lossyQueue((job) => job._tag === "Advance", lost))))
  })
})

import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Stream, TestClock } from "effect"
import { EventLog, RunStore, UpdateHub } from "@relavium/ports"

/** A hub that loses every terminal event, as an at-most-once transport may. */
const lossyHub = Layer.effect(
  UpdateHub,
  Effect.map(UpdateHub, (hub) =>
    UpdateHub.of({
      publish: (events) => hub.publish(events.filter((e) => !e.type.startsWith("run:c") && e.type !== "run:failed")),
      subscribe: hub.subscribe
    })
  )
).pipe(Layer.provide(UpdateHub.layerMemory))

const layer = EventLog.layer.pipe(Layer.provideMerge(Layer.merge(RunStore.layerMemory, lossyHub)))

describe("EventLog.follow", () => {
  it.effect("ends even when the hub drops the terminal event, by re-reading the store", () =>
    Effect.gen(function* () {
      const store = yield* RunStore
      const log = yield* EventLog
      const runId = "lossy"
      const t = new Date().toISOString()
      yield* store.create({ runId, workflowId: "w", workflowName: "w", createdAt: t })
      yield* log.commit(runId, [{ type: "run:started", runId, timestamp: t, workflowId: "w", inputs: {}, executionMode: "local" }])
      const follower = yield* Effect.fork(Stream.runCollect(log.follow(runId)))
      yield* TestClock.adjust("100 millis")
      yield* log.commit(runId, [
        { type: "node:skipped", runId, timestamp: t, nodeId: "a", reason: "upstream_unreachable" },
        { type: "run:completed", runId, timestamp: t, outputs: {}, totalTokensUsed: { input: 0, output: 0 }, totalCostMicrocents: 0, durationMs: 1 }
      ])
      // The hub dropped the terminal event: the follower waits until its next re-read of the store.
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isNone(yield* Fiber.poll(follower)), "the follower ended before re-reading the store")
      yield* TestClock.adjust("1 second")
      const events = [...(yield* Fiber.join(follower))]
      assert.deepStrictEqual(events.map((e) => [e.sequenceNumber, e.type]), [
        [0, "run:started"],
        [1, "node:skipped"],
        [2, "run:completed"]
      ])
    }).pipe(Effect.provide(layer)))
})

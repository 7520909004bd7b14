/**
 * The `UpdateHub` contract, run against every layer of the tag (memory, NATS,
 * Redis Streams). `make()` gives one hub shared by the publishers and
 * subscribers of a test; delivery order is only promised per publisher. A hub
 * that keeps recent events (`replay`) says about how many per run (`keeps`),
 * and its replay is checked against the stored log.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Layer, Option, Scope, Stream } from "effect"
import { RunEvent as RE } from "@relavium/domain"
import { EventLog } from "../EventLog.js"
import { RunStore } from "../RunStore.js"
import { UpdateHub } from "../UpdateHub.js"

export const nodeEvent = (runId: string, sequenceNumber: number): RE.RunEvent => ({
  type: "node:started",
  runId,
  sequenceNumber,
  timestamp: new Date(0).toISOString(),
  nodeId: `n${sequenceNumber}`,
  nodeType: "transform"
})

/** Takes `n` events from a fresh subscription, in a fiber. */
const take = (hub: UpdateHub["Type"], runId: string, n: number) =>
  Effect.gen(function* () {
    const stream = yield* hub.subscribe(runId)
    return yield* Effect.fork(stream.pipe(Stream.take(n), Stream.runCollect, Effect.map(Chunk.toReadonlyArray)))
  })

const seqs = (events: ReadonlyArray<RE.RunEvent>) => events.map((e) => e.sequenceNumber)
const range = (n: number) => Array.from({ length: n }, (_, i) => i)

export interface UpdateHubContractOptions {
  /** About how many recent events of a run the hub keeps for `replay` (a hub with `replay` must say). */
  readonly keeps?: number | undefined
}

const nodeDraft = (runId: string, i: number): RE.RunEventDraft => ({
  type: "node:started",
  runId,
  timestamp: new Date(0).toISOString(),
  nodeId: `n${i}`,
  nodeType: "transform"
})

const completed = (runId: string): RE.RunEventDraft => ({
  type: "run:completed",
  runId,
  timestamp: new Date(0).toISOString(),
  outputs: {},
  totalTokensUsed: { input: 0, output: 0 },
  totalCostMicrocents: 0,
  durationMs: 1
})

export const updateHubContract = (name: string, make: () => Layer.Layer<UpdateHub, unknown>, options: UpdateHubContractOptions = {}) =>
  describe(`UpdateHub contract: ${name}`, () => {
    it.scoped("gives each subscriber its own run's events only", () =>
      Effect.gen(function* () {
        const hub = yield* UpdateHub
        const a = yield* take(hub, "run-a", 3)
        const b = yield* take(hub, "run-b", 2)
        yield* hub.publish([nodeEvent("run-a", 0), nodeEvent("run-b", 0), nodeEvent("run-c", 0)])
        yield* hub.publish([nodeEvent("run-b", 1), nodeEvent("run-a", 1)])
        yield* hub.publish([nodeEvent("run-a", 2)])
        const gotA = yield* Fiber.join(a)
        const gotB = yield* Fiber.join(b)
        assert.deepStrictEqual(gotA.map((e) => [e.runId, e.sequenceNumber]), [["run-a", 0], ["run-a", 1], ["run-a", 2]])
        assert.deepStrictEqual(gotB.map((e) => [e.runId, e.sequenceNumber]), [["run-b", 0], ["run-b", 1]])
        // The events arrive as published, every field intact.
        assert.deepStrictEqual(gotA[0], nodeEvent("run-a", 0))
      }).pipe(Effect.provide(make()), Effect.timeout("10 seconds")))

    it.scoped("keeps one publisher's order", () =>
      Effect.gen(function* () {
        const hub = yield* UpdateHub
        const runId = `ordered-${crypto.randomUUID()}`
        const n = 1000
        const got = yield* take(hub, runId, n)
        for (let i = 0; i < n; ) {
          const size = 1 + (i % 5)
          yield* hub.publish(range(Math.min(size, n - i)).map((k) => nodeEvent(runId, i + k)))
          i += size
        }
        assert.deepStrictEqual(seqs(yield* Fiber.join(got)), range(n))
      }).pipe(Effect.provide(make()), Effect.timeout("10 seconds")))

    it.scoped("delivers to many subscribers of one run", () =>
      Effect.gen(function* () {
        const hub = yield* UpdateHub
        const runId = `many-${crypto.randomUUID()}`
        const subscribers = yield* Effect.forEach(range(8), () => take(hub, runId, 50))
        yield* Effect.forEach(range(50), (i) => hub.publish([nodeEvent(runId, i)]), { discard: true })
        for (const subscriber of subscribers) assert.deepStrictEqual(seqs(yield* Fiber.join(subscriber)), range(50))
      }).pipe(Effect.provide(make()), Effect.timeout("10 seconds")))

    it.scoped("unsubscribes when the subscriber's scope closes", () =>
      Effect.gen(function* () {
        const hub = yield* UpdateHub
        const runId = `closing-${crypto.randomUUID()}`
        const scope = yield* Scope.make()
        const stream = yield* hub.subscribe(runId).pipe(Scope.extend(scope))
        const reader = yield* Effect.fork(Stream.runCollect(stream))
        const stays = yield* take(hub, runId, 2)
        yield* hub.publish([nodeEvent(runId, 0)])
        yield* Scope.close(scope, Exit.void)
        // The closed subscription's stream ends; publishing goes on for the others.
        const ended = yield* Fiber.await(reader).pipe(Effect.timeout("5 seconds"))
        assert.isTrue(Exit.isSuccess(ended) || Exit.isInterrupted(ended))
        yield* hub.publish([nodeEvent(runId, 1)])
        assert.deepStrictEqual(seqs(yield* Fiber.join(stays)), [0, 1])
        // Many short-lived subscriptions leave nothing behind that slows a publish down.
        for (let i = 0; i < 200; i++) yield* Effect.scoped(hub.subscribe(runId))
        yield* hub.publish([nodeEvent(runId, 2)])
      }).pipe(Effect.provide(make()), Effect.timeout("10 seconds")))
  
    it.scoped("a follower from any point gets every event once, in order, whether the hub still holds that point or not", () =>
      Effect.gen(function* () {
        const hub = yield* UpdateHub
        const store = yield* RunStore
        const log = yield* EventLog
        const runId = `replayed-${crypto.randomUUID()}`
        const total = 3 * (options.keeps ?? 20)
        yield* store.create({ runId, workflowId: "w", workflowName: "w", createdAt: new Date(0).toISOString() })
        for (let i = 0; i < total - 1; i += 5) {
          const n = Math.min(5, total - 1 - i)
          yield* log.commit(runId, range(n).map((k) => nodeDraft(runId, i + k)))
        }
        yield* log.commit(runId, [completed(runId)])
        // From the start (long trimmed on a hub that keeps a few), from the middle, from near the end.
        for (const after of [-1, Math.floor(total / 2), total - 4]) {
          const events = yield* Stream.runCollect(log.follow(runId, after))
          assert.deepStrictEqual(seqs(Chunk.toReadonlyArray(events)), range(total - 1 - after).map((i) => i + after + 1))
        }
        if (hub.replay === undefined) return
        const stored = yield* store.events(runId)
        // What a hub replays is exactly the stored events after the point, or nothing when it no longer holds it.
        const recent = yield* hub.replay(runId, total - 4)
        assert.deepStrictEqual(Option.getOrThrow(recent), stored.slice(total - 3))
        assert.isTrue(Option.isNone(yield* hub.replay(runId, -1)), "the hub replayed from a point it has trimmed")
        assert.isTrue(Option.isNone(yield* hub.replay(`unknown-${crypto.randomUUID()}`, -1)))
      }).pipe(
        Effect.provide(EventLog.layer.pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(make()))),
        Effect.timeout("10 seconds")
      ))
  })

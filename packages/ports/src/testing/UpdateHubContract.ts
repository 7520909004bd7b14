/**
 * The `UpdateHub` contract, run against every layer of the tag (memory, NATS).
 * `make()` gives one hub shared by the publishers and subscribers of a test;
 * delivery order is only promised per publisher.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"
import type { RunEvent as RE } from "@relavium/domain"
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

export const updateHubContract = (name: string, make: () => Layer.Layer<UpdateHub, unknown>) =>
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
  })

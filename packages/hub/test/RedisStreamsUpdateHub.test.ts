/**
 * The UpdateHub contract on Redis Streams at 127.0.0.1:6379 (a key prefix of
 * its own per hub, deleted afterwards), a follower's replay served from the
 * stream and not the store, and an unreachable Redis. Nothing is skipped when
 * Redis is down: these tests fail, saying so.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import { Redis } from "ioredis"
import type { RunEvent as RE } from "@relavium/domain"
import { EventLog, RunStore, UpdateHub } from "@relavium/ports"
import { updateHubContract } from "@relavium/ports/testing"
import { RedisStreamsUpdateHub } from "../src/index.js"

const redisUrl = "redis://127.0.0.1:6379"
const testPrefix = `relavium-test:${crypto.randomUUID()}`
let hubs = 0
const freshPrefix = () => `${testPrefix}:${hubs++}`

afterAll(async () => {
  const redis = new Redis(redisUrl)
  let cursor = "0"
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${testPrefix}:*`, "COUNT", 1000)
    if (keys.length > 0) await redis.del(...keys)
    cursor = next
  } while (cursor !== "0")
  await redis.quit()
})

updateHubContract("Redis Streams", () => RedisStreamsUpdateHub.layerRedisStreams({ url: redisUrl, keyPrefix: freshPrefix() }), {
  keeps: 1000
})

/** The memory RunStore, counting the reads of a run's events. */
const countingStore = (reads: { count: number }) =>
  Layer.effect(
    RunStore,
    Effect.map(RunStore, (store) =>
      RunStore.of({ ...store, events: (runId, after) => Effect.suspend(() => ((reads.count += 1), store.events(runId, after))) })
    )
  ).pipe(Layer.provide(RunStore.layerMemory))

const draft = (runId: string, i: number): RE.RunEventDraft => ({
  type: "node:started",
  runId,
  timestamp: new Date().toISOString(),
  nodeId: `n${i}`,
  nodeType: "transform"
})

describe("Redis Streams hub", () => {
  it.live("a follower resuming from an id the stream still holds is served from Redis; from a trimmed one, from the store", () => {
    const reads = { count: 0 }
    return Effect.gen(function* () {
      const store = yield* RunStore
      const log = yield* EventLog
      const runId = `resume-${crypto.randomUUID()}`
      yield* store.create({ runId, workflowId: "w", workflowName: "w", createdAt: new Date().toISOString() })
      for (let i = 0; i < 400; i += 4) yield* log.commit(runId, [0, 1, 2, 3].map((k) => draft(runId, i + k)))
      // Resuming near the end (a client reconnecting with Last-Event-ID): the stream has it all.
      reads.count = 0
      const follower = yield* Effect.fork(log.follow(runId, 389).pipe(Stream.take(15), Stream.runCollect))
      for (let i = 400; i < 405; i++) yield* log.commit(runId, [draft(runId, i)])
      const resumed = Chunk.toReadonlyArray(yield* follower)
      assert.deepStrictEqual(resumed.map((e) => e.sequenceNumber), Array.from({ length: 15 }, (_, i) => 390 + i))
      assert.deepStrictEqual(resumed[0], (yield* store.events(runId, 389))[0])
      assert.strictEqual(reads.count, 1, "only the check above read the store")
      // From the start: long trimmed (the stream keeps about 100), so the store answers.
      reads.count = 0
      const all = yield* log.follow(runId, -1).pipe(Stream.take(405), Stream.runCollect)
      assert.deepStrictEqual(Chunk.toReadonlyArray(all).map((e) => e.sequenceNumber), Array.from({ length: 405 }, (_, i) => i))
      assert.isAtLeast(reads.count, 1)
    }).pipe(
      Effect.provide(
        EventLog.layer.pipe(
          Layer.provideMerge(countingStore(reads)),
          Layer.provideMerge(RedisStreamsUpdateHub.layerRedisStreams({ url: redisUrl, keyPrefix: freshPrefix(), maxLen: 100 }))
        )
      ),
      Effect.timeout("15 seconds")
    )
  })

  it.live("another process's subscriber sees a run's events as they are published", () =>
    Effect.gen(function* () {
      const keyPrefix = freshPrefix()
      const writer = yield* Layer.build(RedisStreamsUpdateHub.layerRedisStreams({ url: redisUrl, keyPrefix }))
      const reader = yield* Layer.build(RedisStreamsUpdateHub.layerRedisStreams({ url: redisUrl, keyPrefix }))
      const publish = (writer.unsafeMap.get(UpdateHub.key) as UpdateHub["Type"]).publish
      const subscribe = (reader.unsafeMap.get(UpdateHub.key) as UpdateHub["Type"]).subscribe
      const runIds = Array.from({ length: 5 }, () => `cross-${crypto.randomUUID()}`)
      const streams = yield* Effect.forEach(runIds, (runId) => subscribe(runId))
      const collected = yield* Effect.forEach(streams, (s) => Effect.fork(s.pipe(Stream.take(30), Stream.runCollect)))
      for (let i = 0; i < 30; i++) {
        yield* publish(runIds.map((runId) => ({ ...draft(runId, i), sequenceNumber: i }) as RE.RunEvent))
      }
      for (const [k, fiber] of collected.entries()) {
        const events = Chunk.toReadonlyArray(yield* fiber)
        assert.deepStrictEqual(events.map((e) => [e.runId, e.sequenceNumber]), Array.from({ length: 30 }, (_, i) => [runIds[k], i]))
      }
    }).pipe(Effect.scoped, Effect.timeout("15 seconds")))

  it.live("an unreachable Redis fails fast, naming Redis and its URL without the password", () =>
    Effect.gen(function* () {
      const error = yield* Layer.build(
        RedisStreamsUpdateHub.layerRedisStreams({ url: "redis://user:secret@127.0.0.1:1", connectTimeout: "2 seconds" })
      ).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(error._tag, "HubError")
      assert.include(error.message, "cannot reach Redis at redis://user:***@127.0.0.1:1")
      assert.notInclude(error.message, "secret")
    }).pipe(Effect.timeout("10 seconds")))
})

/**
 * The RunQueue contract on BullMQ against the real
 * Redis at 127.0.0.1:6379 (a key prefix of its own per test, deleted after the
 * file). Nothing is skipped when Redis is down: the BullMQ suite fails, saying so.
 */
import { afterAll } from "vitest"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { Queue } from "bullmq"
import { Redis } from "ioredis"
import { RunQueue } from "@relavium/ports"
import { BullMqRunQueue } from "../src/index.js"
import { runQueueContract } from "@relavium/ports/testing"

export const redisUrl = "redis://127.0.0.1:6379"
const filePrefix = `relavium-test-${crypto.randomUUID()}`
let tests = 0

/** Deletes every key under `prefix`. */
export const deleteKeys = async (prefix: string) => {
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  try {
    let cursor = "0"
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) await client.del(...keys)
    } while (cursor !== "0")
  } finally {
    client.disconnect()
  }
}

afterAll(() => deleteKeys(filePrefix))

runQueueContract(
  "BullMQ",
  () => {
    const prefix = `${filePrefix}:${tests++}`
    return {
      instance: (concurrency) =>
        BullMqRunQueue.layerBullMq({
          connection: redisUrl,
          prefix,
          concurrency,
          lockDuration: "1 second",
          stalledInterval: "500 millis",
          closeTimeout: "300 millis"
        })
    }
  },
  { distributed: true, delaysOnClock: false }
)

describe("BullMQ", () => {
  it.live("drops a malformed job with a log line and goes on with the next", () =>
    Effect.gen(function* () {
      const prefix = `${filePrefix}:malformed`
      const raw = new Queue("node", { connection: { host: "127.0.0.1", port: 6379 }, prefix })
      yield* Effect.promise(() => raw.add("ExecuteNode", { _tag: "ExecuteNode", runId: 42 }))
      yield* Effect.promise(() => raw.add("Nonsense", "not even an object"))
      yield* Effect.promise(() => raw.close())
      const handled: Array<string> = []
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(BullMqRunQueue.layerBullMq({ connection: redisUrl, prefix }), scope)
      const queue = context.unsafeMap.get(RunQueue.key) as RunQueue["Type"]
      yield* queue.consume((job) => Effect.sync(() => handled.push(job._tag))).pipe(Scope.extend(scope))
      yield* queue.offer([{ _tag: "ExecuteNode", runId: "r", nodeId: "n", attempt: 1 }])
      const deadline = Date.now() + 5_000
      while (handled.length === 0 && Date.now() < deadline) yield* Effect.sleep("10 millis")
      assert.deepStrictEqual(handled, ["ExecuteNode"])
      yield* Scope.close(scope, Exit.void)
    }))


  it.live("an unreachable Redis fails fast, naming Redis and its URL", () =>
    Effect.gen(function* () {
      const started = Date.now()
      const error = yield* Layer.build(
        BullMqRunQueue.layerBullMq({ connection: "redis://user:secret@127.0.0.1:1", connectTimeout: "2 seconds" })
      ).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(error._tag, "QueueError")
      assert.include(error.message, "cannot reach Redis at redis://user:***@127.0.0.1:1")
      assert.notInclude(error.message, "secret")
      assert.isBelow(Date.now() - started, 3_000)
    }))
})

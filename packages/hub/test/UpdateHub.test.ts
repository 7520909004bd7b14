/**
 * The UpdateHub contract on NATS at 127.0.0.1:4222 (a
 * subject prefix of its own per test), and `EventLog.follow` over NATS while
 * another connection publishes during the replay. Nothing is skipped when NATS
 * is down: the NATS suites fail, saying so.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import { RunEvent as RE } from "@relavium/domain"
import { EventLog, RunStore, UpdateHub } from "@relavium/ports"
import { NatsUpdateHub } from "../src/index.js"
import { updateHubContract } from "@relavium/ports/testing"

const natsUrl = "nats://127.0.0.1:4222"
const freshPrefix = () => `relavium-test.${crypto.randomUUID().replaceAll("-", "")}`

updateHubContract("NATS", () => NatsUpdateHub.layerNats({ servers: natsUrl, subjectPrefix: freshPrefix() }))

describe("NATS hub", () => {
  it.live("an unreachable NATS fails fast, naming NATS and its URL", () =>
    Effect.gen(function* () {
      const started = Date.now()
      const error = yield* Layer.build(
        NatsUpdateHub.layerNats({ servers: "nats://user:secret@127.0.0.1:1", connectTimeout: "2 seconds" })
      ).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(error._tag, "HubError")
      assert.include(error.message, "cannot reach NATS at nats://***@127.0.0.1:1")
      assert.notInclude(error.message, "secret")
      assert.isBelow(Date.now() - started, 4_000)
    }))

  it.live(
    "EventLog.follow over NATS sees every event once, in order, while another connection publishes during the replay",
    () => {
      const subjectPrefix = freshPrefix()
      return Effect.gen(function* () {
        // The writer: its own store handle and its own NATS connection (another process, in effect).
        const writerHub = yield* Layer.build(NatsUpdateHub.layerNats({ servers: natsUrl, subjectPrefix }))
        const hub = writerHub.unsafeMap.get(UpdateHub.key) as UpdateHub["Type"]
        const store = yield* RunStore
        const log = yield* EventLog
        const runId = `follow-${crypto.randomUUID()}`
        yield* store.create({ runId, workflowId: "w", workflowName: "w", createdAt: new Date().toISOString() })
        const total = 400
        const draft = (i: number): RE.RunEventDraft => ({
          type: "node:started",
          runId,
          timestamp: new Date().toISOString(),
          nodeId: `n${i}`,
          nodeType: "transform"
        })
        let written = 0
        const writer = yield* Effect.fork(
          Effect.gen(function* () {
            while (written < total - 1) {
              const batch = Array.from({ length: Math.min(1 + (written % 3), total - 1 - written) }, (_, k) => draft(written + k))
              const events = yield* store.append(runId, batch)
              written += batch.length
              // Now and then the hub loses a batch or delivers one late: follow must fill from the store.
              if (written % 17 === 0) continue
              yield* hub.publish(events)
              if (written % 5 === 0) yield* Effect.sleep("1 millis")
            }
            const end = yield* store.append(runId, [
              {
                type: "run:completed",
                runId,
                timestamp: new Date().toISOString(),
                outputs: {},
                totalTokensUsed: { input: 0, output: 0 },
                totalCostMicrocents: 0,
                durationMs: 1
              }
            ])
            yield* hub.publish(end)
          })
        )
        // Followers join at different points of the writing: before, during, and with a cursor.
        const followers = yield* Effect.forEach(
          [0, 50, 150, 300],
          (after) =>
            Effect.gen(function* () {
              while (written < after) yield* Effect.sleep("1 millis")
              return yield* Effect.fork(Stream.runCollect(log.follow(runId)))
            }),
          { concurrency: "unbounded" }
        )
        const fromCursor = yield* Effect.fork(Stream.runCollect(log.follow(runId, 99)))
        yield* Fiber.join(writer)
        for (const follower of followers) {
          const events = [...(yield* Fiber.join(follower))]
          assert.deepStrictEqual(
            events.map((e) => e.sequenceNumber),
            Array.from({ length: total }, (_, i) => i)
          )
          assert.isTrue(RE.isTerminal(events[events.length - 1]!))
        }
        const tail = [...(yield* Fiber.join(fromCursor))]
        assert.deepStrictEqual(
          tail.map((e) => e.sequenceNumber),
          Array.from({ length: total - 100 }, (_, i) => i + 100)
        )
      }).pipe(
        Effect.scoped,
        Effect.provide(
          EventLog.layer.pipe(
            Layer.provideMerge(RunStore.layerMemory),
            Layer.provide(NatsUpdateHub.layerNats({ servers: natsUrl, subjectPrefix }))
          )
        ),
        Effect.timeout("20 seconds")
      )
    }
  )
})

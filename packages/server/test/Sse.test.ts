/**
 * The SSE body as a client reads it: events that are ready together go out in
 * one write, in order and complete; an event that comes alone is written as
 * soon as it is ready, without waiting for others; the events are read for the
 * org the response was made for, though the body is written outside it.
 */
import { assert, describe, it } from "@effect/vitest"
import type { HttpServerResponse } from "@effect/platform"
import { Chunk, Effect, Fiber, Queue, Stream, TestClock } from "effect"
import type { RunEvent as RE } from "@relavium/domain"
import { currentOrgId, forOrg } from "@relavium/ports"
import { eventStreamResponse, formatEvent } from "../src/Sse.js"

const event = (sequenceNumber: number): RE.RunEvent => ({
  type: "node:started",
  runId: "r",
  sequenceNumber,
  timestamp: new Date(0).toISOString(),
  nodeId: `n${sequenceNumber}`,
  nodeType: "transform"
})

/** The response's writes, as text, in the order the server makes them. */
const bodyOf = (response: HttpServerResponse.HttpServerResponse) => {
  assert.strictEqual(response.body._tag, "Stream")
  if (response.body._tag !== "Stream") throw new Error("not a stream")
  const decoder = new TextDecoder()
  return response.body.stream.pipe(Stream.orDie, Stream.map((bytes) => decoder.decode(bytes)))
}

const writesOf = (events: Stream.Stream<RE.RunEvent>) => Stream.unwrap(Effect.map(eventStreamResponse(events), bodyOf))

describe("SSE body", () => {
  it.effect("writes the events that are ready together at once, and a lone event as soon as it comes", () =>
    Effect.gen(function* () {
      const queue = yield* Queue.unbounded<RE.RunEvent>()
      const seen = yield* Queue.unbounded<string>()
      const reader = yield* Effect.fork(writesOf(Stream.fromQueue(queue).pipe(Stream.take(6))).pipe(Stream.runForEach((w) => Queue.offer(seen, w))))
      assert.strictEqual(yield* Queue.take(seen), "retry: 1000\n\n")
      // Three events ready together: one write holding all three, in order.
      yield* Queue.offerAll(queue, [event(0), event(1), event(2)])
      assert.strictEqual(yield* Queue.take(seen), [0, 1, 2].map((i) => formatEvent(event(i))).join(""))
      // One event alone: written without waiting for more (the clock does not move).
      yield* Queue.offer(queue, event(3))
      assert.strictEqual(yield* Queue.take(seen), formatEvent(event(3)))
      yield* Queue.offerAll(queue, [event(4), event(5)])
      assert.strictEqual(yield* Queue.take(seen), formatEvent(event(4)) + formatEvent(event(5)))
      yield* Fiber.join(reader)
    }))

  it.effect("splits a long replay into bounded writes that still hold every event once, in order", () =>
    Effect.gen(function* () {
      const all = Array.from({ length: 1000 }, (_, i) => event(i))
      const writes = Chunk.toReadonlyArray(yield* Stream.runCollect(writesOf(Stream.fromIterable(all))))
      assert.strictEqual(writes.join(""), `retry: 1000\n\n${all.map(formatEvent).join("")}`)
      assert.isAbove(writes.length, 2)
      assert.isBelow(writes.length, 10)
    }))

  it.effect("reads the events for the org the response was made for, though its body is written outside that org", () =>
    Effect.gen(function* () {
      // Each event names the org its read ran for.
      const events = Stream.repeatEffect(Effect.map(currentOrgId, (orgId) => ({ ...event(0), runId: orgId }))).pipe(Stream.take(2))
      const response = yield* forOrg("org_a")(eventStreamResponse(events))
      const written = Chunk.toReadonlyArray(yield* Stream.runCollect(bodyOf(response))).join("")
      assert.include(written, `"runId":"org_a"`)
      assert.notInclude(written, `"runId":"local"`)
    }))

  it.effect("keeps an idle stream alive with comments", () =>
    Effect.gen(function* () {
      const reader = yield* Effect.fork(writesOf(Stream.never).pipe(Stream.take(3), Stream.runCollect))
      yield* TestClock.adjust("31 seconds")
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(reader)), ["retry: 1000\n\n", ": keep-alive\n\n", ": keep-alive\n\n"])
    }))
})

/**
 * `RedisRateLimiter` on the real Redis at 127.0.0.1:6379, a unique key prefix per test. Two
 * limiter layers (two ioredis connections) stand for two gateway replicas. Only counts are
 * asserted: how many requests each window accepted.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, type Duration, Effect, Either, Layer } from "effect"
import { Redis } from "ioredis"
import { RateLimiter, type RateLimits } from "../src/Metering.js"
import * as RedisRateLimiter from "../src/RedisRateLimiter.js"

const url = process.env.RELAVIUM_TEST_REDIS ?? "redis://127.0.0.1:6379"

/** A fresh key prefix, its keys deleted when the test ends. */
const freshPrefix = Effect.acquireRelease(
  Effect.sync(() => `relavium-test-rate-${crypto.randomUUID()}`),
  (prefix) =>
    Effect.promise(async () => {
      const client = new Redis(url, { maxRetriesPerRequest: 1 })
      try {
        const keys = await client.keys(`${prefix}:*`)
        if (keys.length > 0) await client.del(...keys)
      } finally {
        client.disconnect()
      }
    })
)

/** One replica's limiter: its own connection, built in the test's scope. */
const replica = (prefix: string, limits: { perOrg?: RateLimits; perToken?: RateLimits }, window: Duration.DurationInput) =>
  Effect.map(
    Layer.build(RedisRateLimiter.layer({ url, keyPrefix: prefix, window, ...limits })),
    (context) => Context.get(context, RateLimiter)
  )

describe("RedisRateLimiter", () => {
  it.live("two replicas together accept exactly the org's requests per window", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const prefix = yield* freshPrefix
        const a = yield* replica(prefix, { perOrg: { requestsPerMinute: 10 } }, "1 minute")
        const b = yield* replica(prefix, { perOrg: { requestsPerMinute: 10 } }, "1 minute")
        const results = yield* Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          (i) => Effect.either((i % 2 === 0 ? a : b).acquire({ orgId: "org-1", tokenId: undefined, tokens: 1 })),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter(Either.isRight).length, 10)
        for (const refused of results.filter(Either.isLeft)) {
          assert.strictEqual(refused.left._tag, "RateLimited")
          if (refused.left._tag === "RateLimited") {
            assert.strictEqual(refused.left.scope, "org")
            assert.strictEqual(refused.left.limit, "requests")
            assert.isAbove(refused.left.retryAfterMs, 0)
            assert.isAtMost(refused.left.retryAfterMs, 60_000)
          }
        }
        // Another org has its own window.
        yield* a.acquire({ orgId: "org-2", tokenId: undefined, tokens: 1 })
      })
    )
  )

  it.live("tokens per window hold per token and per org, and a refusal counts nothing", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const prefix = yield* freshPrefix
        const limits = { perOrg: { tokensPerMinute: 1_000 }, perToken: { tokensPerMinute: 600 } }
        const a = yield* replica(prefix, limits, "1 minute")
        const b = yield* replica(prefix, limits, "1 minute")
        yield* a.acquire({ orgId: "org", tokenId: "t1", tokens: 500 })
        const tokenFull = yield* Effect.flip(b.acquire({ orgId: "org", tokenId: "t1", tokens: 200 }))
        assert.deepInclude(tokenFull, { _tag: "RateLimited", scope: "token", limit: "tokens" })
        // The refused 200 were not counted on the org: 500 are left there, for another token.
        yield* b.acquire({ orgId: "org", tokenId: "t2", tokens: 500 })
        const orgFull = yield* Effect.flip(a.acquire({ orgId: "org", tokenId: "t3", tokens: 1 }))
        assert.deepInclude(orgFull, { _tag: "RateLimited", scope: "org", limit: "tokens" })
      })
    )
  )

  it.live("a full window frees up once its requests have left it", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const prefix = yield* freshPrefix
        const a = yield* replica(prefix, { perToken: { requestsPerMinute: 3 } }, "1500 millis")
        const b = yield* replica(prefix, { perToken: { requestsPerMinute: 3 } }, "1500 millis")
        const burst = () =>
          Effect.forEach(
            Array.from({ length: 8 }, (_, i) => i),
            (i) => Effect.either((i % 2 === 0 ? a : b).acquire({ orgId: "org", tokenId: "tok", tokens: 1 })),
            { concurrency: "unbounded" }
          )
        const first = yield* burst()
        assert.strictEqual(first.filter(Either.isRight).length, 3)
        const refused = first.find(Either.isLeft)
        assert.isDefined(refused)
        const retryAfterMs = refused !== undefined && refused.left._tag === "RateLimited" ? refused.left.retryAfterMs : 0
        assert.isAbove(retryAfterMs, 0)
        assert.isAtMost(retryAfterMs, 1500)
        // Wait out the whole window (not the retry-after: the test asserts counts, not timing).
        yield* Effect.sleep("1600 millis")
        const second = yield* burst()
        assert.strictEqual(second.filter(Either.isRight).length, 3)
      })
    )
  )

  it.live("a negative or fractional token count is refused with a located error and counts nothing", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const prefix = yield* freshPrefix
        const a = yield* replica(prefix, { perOrg: { requestsPerMinute: 1 } }, "1 minute")
        const negative = yield* Effect.flip(a.acquire({ orgId: "org", tokenId: undefined, tokens: -5 }))
        assert.strictEqual(negative._tag, "MeteringError")
        assert.include(negative.message, "tokens")
        const fraction = yield* Effect.flip(a.acquire({ orgId: "org", tokenId: undefined, tokens: 0.5 }))
        assert.include(fraction.message, "tokens")
        // The one request of the window is still free.
        yield* a.acquire({ orgId: "org", tokenId: undefined, tokens: 1 })
      })
    )
  )

  it.live("an unreachable Redis fails the layer with a message naming it", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.scoped(Layer.build(RedisRateLimiter.layer({ url: "redis://:secret@127.0.0.1:1", connectTimeout: "1 second" })))
      )
      assert.strictEqual(error._tag, "MeteringError")
      assert.include(error.message, "cannot reach Redis at redis://:***@127.0.0.1:1")
      assert.notInclude(error.message, "secret")
    })
  )
})

/**
 * The pure helpers of tenancy every layer shares: token shape and hashing, email normalisation,
 * expiry and the audit page size.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { auditLimit, hashToken, looksLikeToken, mintToken, normaliseEmail, normaliseExpiry, visiblePrefix } from "@relavium/ports"

describe("tenancy helpers", () => {
  it("mints distinct well-formed tokens whose hash and prefix reveal no secret", () => {
    const a = mintToken()
    const b = mintToken()
    assert.isTrue(looksLikeToken(a) && looksLikeToken(b))
    assert.notStrictEqual(Redacted.value(a), Redacted.value(b))
    assert.match(hashToken(a), /^[0-9a-f]{64}$/)
    assert.strictEqual(visiblePrefix(a), Redacted.value(a).slice(0, 12))
    assert.notInclude(String(a), Redacted.value(a))
  })

  it("normalises emails to lower case and refuses what is not one", () => {
    assert.deepStrictEqual(Effect.runSync(Effect.either(normaliseEmail("  Ada@Example.COM "))), Either.right("ada@example.com"))
    for (const bad of ["", "ada", "ada@", "@example.com", "a b@example.com", "a@b@c", `${"a".repeat(250)}@example.com`]) {
      assert.isTrue(Either.isLeft(Effect.runSync(Effect.either(normaliseEmail(bad)))), bad)
    }
  })

  it("stores expiries as ISO-8601 UTC and refuses other text", () => {
    assert.deepStrictEqual(Effect.runSync(Effect.either(normaliseExpiry("2026-01-02T03:04:05+01:00"))), Either.right("2026-01-02T02:04:05.000Z"))
    assert.deepStrictEqual(Effect.runSync(Effect.either(normaliseExpiry(undefined))), Either.right(null))
    assert.isTrue(Either.isLeft(Effect.runSync(Effect.either(normaliseExpiry("soon")))))
  })

  it("pages audit entries 100 at a time unless asked, never more than 1000", () => {
    assert.deepStrictEqual([undefined, 5, 0, -3, 1000, 1001, 5000, Number.NaN].map(auditLimit), [100, 5, 0, 0, 1000, 1000, 1000, 100])
  })
})

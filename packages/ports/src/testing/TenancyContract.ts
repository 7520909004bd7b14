/**
 * The contract every `Tenancy` + `AuditLog` layer must meet (memory here; SQLite and Postgres in
 * packages/store). The layer is shared by the suite's tests: each test makes orgs of its own
 * (their ids are random), so tests never see each other's data. Time is the `TestClock`.
 */
import { assert, describe, layer as sharedLayer } from "@effect/vitest"
import { Cause, Effect, Exit, type Layer, Option, Redacted, TestClock, TestContext } from "effect"
import {
  AuditLog,
  forOrg,
  hashToken,
  looksLikeToken,
  mintToken,
  type Principal,
  Tenancy,
  type TenancyError,
  VISIBLE_PREFIX_LENGTH
} from "../Tenancy.js"

const errorOf = <A>(effect: Effect.Effect<A, TenancyError>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
    if (Option.isNone(error)) assert.fail(`expected a TenancyError, got ${String(exit)}`)
    const found = Option.getOrThrow(error)
    assert.strictEqual(found._tag, "TenancyError")
    return found
  })

const unique = (label: string) => `${label}-${crypto.randomUUID().slice(0, 8)}@example.com`

const iso = (ms: number) => new Date(ms).toISOString()

/** A fresh org; its first owner token. */
const newOrg = (name = "Acme") =>
  Effect.flatMap(Tenancy, (tenancy) => tenancy.createOrg(name, { email: unique("owner") }))

export const tenancyContract = (name: string, layer: Layer.Layer<Tenancy | AuditLog, unknown>) =>
  describe(`Tenancy contract: ${name}`, () => {
    // The layer is built on the live clock (a store may run timers of its own); each test gets a
    // TestClock of its own, which is what the ports read their time from.
    sharedLayer(layer, { timeout: "60 seconds", excludeTestServices: true })((shared) => {
      const it = {
        effect: (name: string, body: () => Effect.Effect<void, unknown, Tenancy | AuditLog>) =>
          shared.effect(name, () => Effect.provide(body(), TestContext.TestContext))
      }
      it.effect("createOrg makes an org with its owner, and a token that resolves to that owner", () =>
        Effect.gen(function* () {
          const tenancy = yield* Tenancy
          yield* TestClock.setTime(Date.parse("2026-03-01T10:00:00.000Z"))
          const email = unique("Ada.Owner").toUpperCase()
          const { org, token } = yield* tenancy.createOrg("  Acme Inc  ", { email: ` ${email} ` })
          assert.match(org.id, /^org_[0-9a-f]{32}$/)
          assert.strictEqual(org.name, "Acme Inc")
          assert.strictEqual(org.createdAt, "2026-03-01T10:00:00.000Z")
          assert.isTrue(looksLikeToken(token.token))
          assert.strictEqual(token.info.role, "owner")
          assert.strictEqual(token.info.createdBy, email.toLowerCase())
          assert.strictEqual(token.info.prefix, Redacted.value(token.token).slice(0, VISIBLE_PREFIX_LENGTH))
          assert.isNull(token.info.lastUsedAt)

          yield* TestClock.adjust("5 minutes")
          const principal = yield* tenancy.tokens.resolve(token.token)
          assert.deepStrictEqual(
            principal,
            Option.some<Principal>({ orgId: org.id, role: "owner", tokenId: token.info.id, actor: `token:${token.info.prefix}` })
          )

          const inOrg = yield* forOrg(org.id)(
            Effect.all({ org: tenancy.org, members: tenancy.members.list, tokens: tenancy.tokens.list })
          )
          assert.deepStrictEqual(inOrg.org, Option.some(org))
          assert.deepStrictEqual(
            inOrg.members.map((m) => [m.email, m.role, m.createdAt]),
            [[email.toLowerCase(), "owner", "2026-03-01T10:00:00.000Z"]]
          )
          assert.deepStrictEqual(
            inOrg.tokens.map((t) => [t.id, t.name, t.lastUsedAt]),
            [[token.info.id, "first owner token", "2026-03-01T10:05:00.000Z"]]
          )
        }))

      it.effect("createOrg refuses a blank name and an owner that is not an email", () =>
        Effect.gen(function* () {
          const tenancy = yield* Tenancy
          const blank = yield* errorOf(tenancy.createOrg("   ", { email: unique("x") }))
          assert.include(blank.message, "name")
          const notEmail = yield* errorOf(tenancy.createOrg("Acme", { email: "not an email" }))
          assert.include(notEmail.message, "is not an email address")
        }))

      it.effect("an org that does not exist has nothing, and says so", () =>
        Effect.gen(function* () {
          const tenancy = yield* Tenancy
          const audit = yield* AuditLog
          const missing = forOrg("org_00000000000000000000000000000000")
          assert.isTrue(Option.isNone(yield* missing(tenancy.org)))
          for (const effect of [tenancy.members.list, tenancy.tokens.list, audit.append({ actor: "a", action: "x", target: "t" })]) {
            const error = yield* errorOf(missing(effect as Effect.Effect<unknown, TenancyError>))
            assert.strictEqual(error.message, "no organisation org_00000000000000000000000000000000")
          }
        }))

      it.effect("tokens: created, listed with their prefix and never the secret, revoked", () =>
        Effect.gen(function* () {
          const tenancy = yield* Tenancy
          const { org, token: first } = yield* newOrg()
          yield* forOrg(org.id)(
            Effect.gen(function* () {
              yield* TestClock.adjust("1 second")
              const ci = yield* tenancy.tokens.create({ name: "ci", role: "member", createdBy: "token:rlv_test" })
              assert.isTrue(looksLikeToken(ci.token))
              assert.notStrictEqual(Redacted.value(ci.token), Redacted.value(first.token))
              assert.deepStrictEqual(
                [ci.info.name, ci.info.role, ci.info.createdBy, ci.info.expiresAt, ci.info.lastUsedAt, ci.info.revokedAt],
                ["ci", "member", "token:rlv_test", null, null, null]
              )
              const listed = yield* tenancy.tokens.list
              assert.deepStrictEqual(listed, [first.info, ci.info])
              const shown = JSON.stringify(listed)
              for (const t of [first.token, ci.token]) {
                assert.notInclude(shown, Redacted.value(t))
                assert.notInclude(shown, Redacted.value(t).slice(VISIBLE_PREFIX_LENGTH))
                assert.notInclude(shown, hashToken(t))
                assert.notInclude(String(t), Redacted.value(t))
              }
              assert.deepStrictEqual(
                Option.map(yield* tenancy.tokens.resolve(ci.token), (p) => p.role),
                Option.some("member")
              )

              yield* TestClock.adjust("1 minute")
              const revokedAt = iso(Date.parse(ci.info.createdAt) + 60_000)
              assert.isTrue(yield* tenancy.tokens.revoke(ci.info.id))
              assert.isTrue(Option.isNone(yield* tenancy.tokens.resolve(ci.token)))
              yield* TestClock.adjust("1 minute")
              // Revoking again still finds it, and keeps the first revocation time.
              assert.isTrue(yield* tenancy.tokens.revoke(ci.info.id))
              assert.isFalse(yield* tenancy.tokens.revoke("tok_00000000000000000000000000000000"))
              const after = yield* tenancy.tokens.list
              assert.deepStrictEqual(after.map((t) => [t.id, t.revokedAt]), [[first.info.id, null], [ci.info.id, revokedAt]])
              // The other token is untouched.
              assert.isTrue(Option.isSome(yield* tenancy.tokens.resolve(first.token)))
            })
          )
        }))

      it.effect("a token's last use is recorded to the minute: a busy token is not a write per request", () =>
        Effect.gen(function* () {
          const tenancy = yield* Tenancy
          yield* TestClock.setTime(Date.parse("2026-05-01T00:00:00.000Z"))
          const { org } = yield* newOrg()
          const created = yield* forOrg(org.id)(tenancy.tokens.create({ name: "busy", role: "viewer", createdBy: "ada@example.com" }))
          const lastUse = Effect.map(
            forOrg(org.id)(tenancy.tokens.list),
            (tokens) => tokens.find((t) => t.id === created.info.id)?.lastUsedAt
          )
          assert.isTrue(Option.isSome(yield* tenancy.tokens.resolve(created.token)))
          assert.strictEqual(yield* lastUse, "2026-05-01T00:00:00.000Z")
          yield* TestClock.adjust("59 seconds")
          assert.isTrue(Option.isSome(yield* tenancy.tokens.resolve(created.token)))
          assert.strictEqual(yield* lastUse, "2026-05-01T00:00:00.000Z")
          yield* TestClock.adjust("1 second")
          assert.isTrue(Option.isSome(yield* tenancy.tokens.resolve(created.token)))
          assert.strictEqual(yield* lastUse, "2026-05-01T00:01:00.000Z")
        }))

      it.effect("a token past its expiry (by the clock) resolves to none; its last use is recorded until then", () =>
        Effect.gen(function* () {
          const tenancy = yield* Tenancy
          yield* TestClock.setTime(Date.parse("2026-04-01T00:00:00.000Z"))
          const { org } = yield* newOrg()
          const created = yield* forOrg(org.id)(
            tenancy.tokens.create({ name: "short", role: "viewer", createdBy: "ada@example.com", expiresAt: "2026-04-01T01:00:00Z" })
          )
          assert.strictEqual(created.info.expiresAt, "2026-04-01T01:00:00.000Z")
          yield* TestClock.adjust("59 minutes")
          assert.isTrue(Option.isSome(yield* tenancy.tokens.resolve(created.token)))
          yield* TestClock.adjust("1 minute")
          assert.isTrue(Option.isNone(yield* tenancy.tokens.resolve(created.token)))
          yield* TestClock.adjust("1 hour")
          assert.isTrue(Option.isNone(yield* tenancy.tokens.resolve(created.token)))
          const [info] = (yield* forOrg(org.id)(tenancy.tokens.list)).filter((t) => t.id === created.info.id)
          assert.strictEqual(info?.lastUsedAt, "2026-04-01T00:59:00.000Z")
          assert.isNull(info?.revokedAt)

          const badExpiry = yield* errorOf(
            forOrg(org.id)(tenancy.tokens.create({ name: "bad", role: "viewer", createdBy: "ada@example.com", expiresAt: "next tuesday" }))
          )
          assert.include(badExpiry.message, "ISO-8601")
        }))

      it.effect("malformed, altered and unknown tokens resolve to none", () =>
        Effect.gen(function* () {
          const tenancy = yield* Tenancy
          const { token } = yield* newOrg()
          const value = Redacted.value(token.token)
          const last = value.at(-1) === "A" ? "B" : "A"
          for (const candidate of [
            "",
            "rlv_",
            "rlv_short",
            `Bearer ${value}`,
            `${value} `,
            value.toUpperCase() === value ? value.toLowerCase() : value.toUpperCase(),
            `${value.slice(0, -1)}${last}`,
            `${value}A`,
            `rlx_${value.slice(4)}`,
            "rlv_' OR '1'='1' --                         ",
            Redacted.value(mintToken())
          ]) {
            assert.isTrue(Option.isNone(yield* tenancy.tokens.resolve(Redacted.make(candidate))), candidate)
          }
          assert.isTrue(Option.isSome(yield* tenancy.tokens.resolve(token.token)))
        }))

      it.effect("members: added with their email normalised, listed, given a role, removed", () =>
        Effect.gen(function* () {
          const tenancy = yield* Tenancy
          const { org } = yield* newOrg()
          const email = unique("bob")
          yield* forOrg(org.id)(
            Effect.gen(function* () {
              yield* TestClock.adjust("1 second")
              const bob = yield* tenancy.members.add(`  ${email.toUpperCase()} `, "admin")
              assert.deepStrictEqual([bob.email, bob.role], [email, "admin"])
              assert.match(bob.userId, /^usr_/)
              const again = yield* errorOf(tenancy.members.add(email, "viewer"))
              assert.strictEqual(again.message, `${email} is already a member`)
              const notEmail = yield* errorOf(tenancy.members.add("bob at example", "viewer"))
              assert.include(notEmail.message, "is not an email address")

              const listed = yield* tenancy.members.list
              assert.deepStrictEqual(listed.map((m) => [m.email, m.role]), [[listed[0]!.email, "owner"], [email, "admin"]])
              assert.deepStrictEqual(listed[1], bob)

              const changed = yield* tenancy.members.setRole(email.toUpperCase(), "viewer")
              assert.deepStrictEqual(Option.map(changed, (m) => [m.userId, m.email, m.role, m.createdAt]), Option.some([bob.userId, email, "viewer", bob.createdAt]))
              assert.isTrue(Option.isNone(yield* tenancy.members.setRole(unique("nobody"), "admin")))
              assert.deepStrictEqual((yield* tenancy.members.list).map((m) => m.role), ["owner", "viewer"])

              assert.isTrue(yield* tenancy.members.remove(email))
              assert.isFalse(yield* tenancy.members.remove(email))
              assert.deepStrictEqual((yield* tenancy.members.list).map((m) => m.role), ["owner"])
              // Removed, they can be added again.
              const back = yield* tenancy.members.add(email, "member")
              assert.strictEqual(back.userId, bob.userId)
            })
          )
        }))

      it.effect("the last owner can be neither removed nor demoted, even by two changes at once", () =>
        Effect.gen(function* () {
          const tenancy = yield* Tenancy
          const { org } = yield* newOrg()
          yield* forOrg(org.id)(
            Effect.gen(function* () {
              const [first] = yield* tenancy.members.list
              const refusedOf = <A>(effect: Effect.Effect<A, unknown>) =>
                Effect.map(Effect.flip(effect), (e) => (e as { _tag: string; message: string }))
              const removed = yield* refusedOf(tenancy.members.remove(first!.email))
              assert.deepStrictEqual([removed._tag, removed.message], ["LastOwner", `${first!.email} is the last owner and cannot be removed; make another member an owner first`])
              const demoted = yield* refusedOf(tenancy.members.setRole(first!.email, "admin"))
              assert.deepStrictEqual([demoted._tag, demoted.message], ["LastOwner", `${first!.email} is the last owner and cannot be demoted; make another member an owner first`])

              // Two owners, each demoted by a change running at the same time: exactly one change passes.
              const second = unique("second-owner")
              yield* tenancy.members.add(second, "owner")
              const outcomes = yield* Effect.all(
                [Effect.either(tenancy.members.setRole(first!.email, "member")), Effect.either(tenancy.members.remove(second))],
                { concurrency: "unbounded" }
              )
              assert.strictEqual(outcomes.filter((o) => o._tag === "Right").length, 1)
              assert.deepStrictEqual(
                outcomes.filter((o) => o._tag === "Left").map((o) => (o.left as { _tag: string })._tag),
                ["LastOwner"]
              )
              assert.strictEqual((yield* tenancy.members.list).filter((m) => m.role === "owner").length, 1)
            })
          )
        }))

      it.effect("two orgs: one's members, tokens and audit trail are invisible to, and untouchable by, the other", () =>
        Effect.gen(function* () {
          const tenancy = yield* Tenancy
          const audit = yield* AuditLog
          const a = yield* newOrg("A")
          const b = yield* newOrg("B")
          const shared = unique("shared")
          const inA = yield* forOrg(a.org.id)(
            Effect.gen(function* () {
              const member = yield* tenancy.members.add(shared, "admin")
              const token = yield* tenancy.tokens.create({ name: "a-ci", role: "admin", createdBy: shared })
              yield* audit.append({ actor: shared, action: "token.create", target: token.info.id })
              return { member, token }
            })
          )
          yield* forOrg(b.org.id)(
            Effect.gen(function* () {
              assert.deepStrictEqual(Option.map(yield* tenancy.org, (o) => o.name), Option.some("B"))
              const members = yield* tenancy.members.list
              assert.deepStrictEqual(members.map((m) => m.email), [b.token.info.createdBy])
              assert.deepStrictEqual((yield* tenancy.tokens.list).map((t) => t.id), [b.token.info.id])
              assert.deepStrictEqual(yield* audit.list({}), [])
              assert.isFalse(yield* tenancy.tokens.revoke(inA.token.info.id))
              assert.isFalse(yield* tenancy.tokens.revoke(a.token.info.id))
              assert.isFalse(yield* tenancy.members.remove(shared))
              assert.isTrue(Option.isNone(yield* tenancy.members.setRole(shared, "viewer")))
              yield* audit.append({ actor: "b", action: "member.add", target: shared })
              // The same person may belong to both: one user, a membership in each.
              const alsoInB = yield* tenancy.members.add(shared, "viewer")
              assert.strictEqual(alsoInB.userId, inA.member.userId)
            })
          )
          const aAfter = yield* forOrg(a.org.id)(
            Effect.all({ members: tenancy.members.list, tokens: tenancy.tokens.list, audit: audit.list({}) })
          )
          assert.deepStrictEqual(aAfter.members.map((m) => [m.email, m.role]), [[a.token.info.createdBy, "owner"], [shared, "admin"]])
          assert.deepStrictEqual(aAfter.tokens.map((t) => t.revokedAt), [null, null])
          assert.deepStrictEqual(aAfter.audit.map((e) => [e.seq, e.action]), [[1, "token.create"]])
          assert.deepStrictEqual(
            Option.map(yield* tenancy.tokens.resolve(inA.token.token), (p) => p.orgId),
            Option.some(a.org.id)
          )
          assert.deepStrictEqual(
            Option.map(yield* tenancy.tokens.resolve(b.token.token), (p) => p.orgId),
            Option.some(b.org.id)
          )
        }))

      it.effect("audit: appended entries are numbered, filtered, newest first, and paged with before", () =>
        Effect.gen(function* () {
          const audit = yield* AuditLog
          yield* TestClock.setTime(Date.parse("2026-05-01T00:00:00.000Z"))
          const { org } = yield* newOrg()
          yield* forOrg(org.id)(
            Effect.gen(function* () {
              const inputs = [
                { actor: "ada@example.com", action: "member.add", target: "bob@example.com", detail: { role: "admin" } },
                { actor: "token:rlv_abcdefgh", action: "token.create", target: "tok_1" },
                { actor: "ada@example.com", action: "token.revoke", target: "tok_1", detail: { reason: "leaked", n: 2, nested: { ok: true } } },
                { actor: "token:rlv_abcdefgh", action: "run.start", target: "run-1" },
                { actor: "ada@example.com", action: "member.add", target: "cy@example.com", detail: { role: "viewer" } }
              ]
              for (const input of inputs) {
                yield* TestClock.adjust("1 minute")
                yield* audit.append(input)
              }
              const all = yield* audit.list({})
              assert.deepStrictEqual(all.map((e) => e.seq), [5, 4, 3, 2, 1])
              assert.deepStrictEqual(
                all.map((e) => [e.at, e.actor, e.action, e.target, e.detail]).reverse(),
                inputs.map((input, i) => [iso(Date.parse("2026-05-01T00:00:00.000Z") + (i + 1) * 60_000), input.actor, input.action, input.target, input.detail ?? {}])
              )
              assert.deepStrictEqual((yield* audit.list({ action: "member.add" })).map((e) => e.seq), [5, 1])
              assert.deepStrictEqual((yield* audit.list({ actor: "token:rlv_abcdefgh" })).map((e) => e.seq), [4, 2])
              assert.deepStrictEqual(
                (yield* audit.list({ from: "2026-05-01T00:02:00.000Z", to: "2026-05-01T00:04:00.000Z" })).map((e) => e.seq),
                [3, 2]
              )
              assert.deepStrictEqual((yield* audit.list({ before: 4, limit: 2 })).map((e) => e.seq), [3, 2])
              assert.deepStrictEqual((yield* audit.list({ before: 2, limit: 2 })).map((e) => e.seq), [1])
              assert.deepStrictEqual((yield* audit.list({ before: 1 })).map((e) => e.seq), [])
              assert.deepStrictEqual((yield* audit.list({ action: "member.add", actor: "ada@example.com", before: 5 })).map((e) => e.seq), [1])
              assert.deepStrictEqual(yield* audit.list({ limit: 0 }), [])
            })
          )
        }))

      it.effect("audit: concurrent appends never share a number; a list returns 100 unless asked for more", () =>
        Effect.gen(function* () {
          const audit = yield* AuditLog
          const { org } = yield* newOrg()
          yield* forOrg(org.id)(
            Effect.gen(function* () {
              yield* Effect.all(
                Array.from({ length: 120 }, (_, i) => audit.append({ actor: "ada@example.com", action: "run.start", target: `run-${i}` })),
                { concurrency: 8, discard: true }
              )
              const page = yield* audit.list({})
              assert.deepStrictEqual(page.map((e) => e.seq), Array.from({ length: 100 }, (_, i) => 120 - i))
              const everything = yield* audit.list({ limit: 5000 })
              assert.strictEqual(everything.length, 120)
              assert.deepStrictEqual(new Set(everything.map((e) => e.target)).size, 120)
            })
          )
        }))
    })
  })

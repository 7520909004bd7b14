/**
 * The `Metering` rules, the same tests on every layer: memory, SQLite (`:memory:`) and real
 * Postgres at 127.0.0.1:5432 (a fresh database per test, migrated as `postgres`, used as the
 * application role `relavium_app` under row-level security, as gateway replicas connect).
 */
import { assert, describe, it } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Context, Duration, Effect, Either, Layer, Redacted } from "effect"
import { Database, Migrations } from "@relavium/store"
import { layerMeteringMemory, Metering, type Usage } from "../src/Metering.js"
import * as SqlMetering from "../src/SqlMetering.js"

const host = "127.0.0.1:5432"
const asOwner = (db: string) => `postgres://postgres@${host}/${db}`
const asApp = (db: string) => `postgres://${Migrations.appRole}@${host}/${db}`

const onAdmin = (statement: string) =>
  Effect.scoped(
    Effect.flatMap(PgClient.make({ url: Redacted.make(asOwner("test")), connectTimeout: Duration.seconds(5) }), (sql) => sql.unsafe(statement))
  ).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

/** A fresh database migrated by the operator, dropped with the scope. */
const freshDatabase = Effect.acquireRelease(
  Effect.gen(function* () {
    const name = `relavium_meter_${crypto.randomUUID().replaceAll("-", "")}`
    yield* onAdmin(`CREATE DATABASE ${name}`)
    yield* Database.migratePg({ url: asOwner(name) }).pipe(Effect.orDie)
    return name
  }),
  (name) => onAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
)

/** One gateway replica's metering: its own pool, connected as `relavium_app`. */
const pgMetering = (name: string) =>
  SqlMetering.layer.pipe(Layer.provide(Database.layerPg({ url: asApp(name), migrate: "verify", maxConnections: 12 })), Layer.orDie)

const pgLayer: Layer.Layer<Metering> = Layer.unwrapScoped(Effect.map(freshDatabase, pgMetering))

const sqliteLayer: Layer.Layer<Metering> = SqlMetering.layer.pipe(
  Layer.provide(Database.layerSqlite({ filename: ":memory:" })),
  Layer.orDie
)

const layers: ReadonlyArray<readonly [string, () => Layer.Layer<Metering>]> = [
  ["memory", () => layerMeteringMemory],
  ["sqlite", () => sqliteLayer],
  ["postgres (relavium_app)", () => pgLayer]
]

const usage = (costMicrocents: number): Usage => ({
  provider: "openai",
  model: "gpt-4o-mini",
  inputTokens: 100,
  outputTokens: 20,
  costMicrocents,
  status: "ok",
  durationMs: 12
})

const wholeTime = { from: "2000-01-01T00:00:00.000Z", to: "2999-01-01T00:00:00.000Z" }

for (const [name, make] of layers) {
  describe(`Metering on ${name}`, () => {
    it.live("50 concurrent reservations against a budget that fits 10 hold exactly 10", () =>
      Effect.gen(function* () {
        const metering = yield* Metering
        yield* metering.setBudget("org-a", { scope: "org", monthlyMicrocents: 1_000 })
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => Effect.either(metering.reserve({ requestId: `r${i}`, orgId: "org-a", tokenId: undefined, worstCaseMicrocents: 100 })),
          { concurrency: "unbounded" }
        )
        const held = results.filter(Either.isRight)
        assert.strictEqual(held.length, 10)
        for (const refused of results.filter(Either.isLeft)) {
          assert.strictEqual(refused.left._tag, "BudgetExceeded")
          if (refused.left._tag === "BudgetExceeded") {
            assert.strictEqual(refused.left.scope, "org")
            assert.strictEqual(refused.left.limitMicrocents, 1_000)
          }
        }
      }).pipe(Effect.provide(make()))
    )

    it.live("settling writes one ledger row, frees the difference, and a second settle changes nothing", () =>
      Effect.gen(function* () {
        const metering = yield* Metering
        yield* metering.setBudget("org-a", { scope: "org", monthlyMicrocents: 1_000 })
        const first = yield* metering.reserve({ requestId: "req-1", orgId: "org-a", tokenId: "tok-1", worstCaseMicrocents: 600 })
        // 600 held: another 600 does not fit.
        const refused = yield* Effect.either(metering.reserve({ requestId: "req-2", orgId: "org-a", tokenId: "tok-1", worstCaseMicrocents: 600 }))
        assert.isTrue(Either.isLeft(refused))
        yield* metering.settle(first, usage(150))
        yield* metering.settle(first, usage(150))
        // 150 spent, nothing held: 850 fits, 851 does not.
        const tooMuch = yield* Effect.either(metering.reserve({ requestId: "req-3", orgId: "org-a", tokenId: "tok-1", worstCaseMicrocents: 851 }))
        assert.isTrue(Either.isLeft(tooMuch))
        const fits = yield* metering.reserve({ requestId: "req-4", orgId: "org-a", tokenId: "tok-1", worstCaseMicrocents: 850 })
        assert.strictEqual(fits.heldMicrocents, 850)
        const rows = yield* metering.ledger("org-a", wholeTime)
        assert.strictEqual(rows.length, 1)
        assert.deepInclude(rows[0]!, {
          requestId: "req-1",
          orgId: "org-a",
          tokenId: "tok-1",
          provider: "openai",
          model: "gpt-4o-mini",
          inputTokens: 100,
          outputTokens: 20,
          costMicrocents: 150,
          status: "ok",
          durationMs: 12
        })
      }).pipe(Effect.provide(make()))
    )

    it.live("a token's budget and the org's budget both hold, and a refusal holds nothing", () =>
      Effect.gen(function* () {
        const metering = yield* Metering
        yield* metering.setBudget("org-b", { scope: "org", monthlyMicrocents: 10_000 })
        yield* metering.setBudget("org-b", { scope: "token", tokenId: "small", monthlyMicrocents: 300 })
        yield* metering.reserve({ requestId: "a", orgId: "org-b", tokenId: "small", worstCaseMicrocents: 200 })
        const refused = yield* Effect.either(metering.reserve({ requestId: "b", orgId: "org-b", tokenId: "small", worstCaseMicrocents: 200 }))
        assert.isTrue(Either.isLeft(refused) && refused.left._tag === "BudgetExceeded" && refused.left.scope === "token")
        // The refused request held nothing on the org: 9_800 is still free there for another token.
        yield* metering.reserve({ requestId: "c", orgId: "org-b", tokenId: "other", worstCaseMicrocents: 9_800 })
        const orgFull = yield* Effect.either(metering.reserve({ requestId: "d", orgId: "org-b", tokenId: "other", worstCaseMicrocents: 1 }))
        assert.isTrue(Either.isLeft(orgFull) && orgFull.left._tag === "BudgetExceeded" && orgFull.left.scope === "org")
        // Removing the budgets lifts the limits.
        yield* metering.setBudget("org-b", { scope: "org", monthlyMicrocents: undefined })
        yield* metering.reserve({ requestId: "e", orgId: "org-b", tokenId: "other", worstCaseMicrocents: 1_000_000 })
      }).pipe(Effect.provide(make()))
    )

    it.live("the ledger of one org never shows another's rows", () =>
      Effect.gen(function* () {
        const metering = yield* Metering
        const mine = yield* metering.reserve({ requestId: "m1", orgId: "org-x", tokenId: undefined, worstCaseMicrocents: 10 })
        const theirs = yield* metering.reserve({ requestId: "t1", orgId: "org-y", tokenId: undefined, worstCaseMicrocents: 10 })
        yield* metering.settle(mine, usage(5))
        yield* metering.settle(theirs, usage(7))
        const rows = yield* metering.ledger("org-x", wholeTime)
        assert.deepStrictEqual(rows.map((r) => [r.requestId, r.costMicrocents]), [["m1", 5]])
      }).pipe(Effect.provide(make()))
    )
  })
}

describe("SqlMetering input", () => {
  it.live("a negative or fractional amount and a token budget without a token are refused with a located error", () =>
    Effect.gen(function* () {
      const metering = yield* Metering
      const negative = yield* Effect.flip(metering.reserve({ requestId: "n", orgId: "o", tokenId: undefined, worstCaseMicrocents: -1 }))
      assert.strictEqual(negative._tag, "MeteringError")
      assert.include(negative.message, "worstCaseMicrocents")
      const fraction = yield* Effect.flip(metering.reserve({ requestId: "n", orgId: "o", tokenId: undefined, worstCaseMicrocents: 1.5 }))
      assert.include(fraction.message, "worstCaseMicrocents")
      const noToken = yield* Effect.flip(metering.setBudget("o", { scope: "token", monthlyMicrocents: 5 }))
      assert.include(noToken.message, "tokenId")
      // Nothing was held by the refused reservations.
      yield* metering.setBudget("o", { scope: "org", monthlyMicrocents: 10 })
      yield* metering.reserve({ requestId: "ok", orgId: "o", tokenId: undefined, worstCaseMicrocents: 10 })
    }).pipe(Effect.provide(sqliteLayer))
  )
})

describe("SqlMetering on Postgres across replicas", () => {
  it.live("two replicas (two pools) reserving 60 requests at once against a budget that fits 10 hold exactly 10", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const name = yield* freshDatabase
        const a = Context.get(yield* Layer.build(pgMetering(name)), Metering)
        const b = Context.get(yield* Layer.build(pgMetering(name)), Metering)
        yield* a.setBudget("org-r", { scope: "org", monthlyMicrocents: 5_000 })
        yield* b.setBudget("org-r", { scope: "token", tokenId: "tok", monthlyMicrocents: 1_000 })
        const results = yield* Effect.forEach(
          Array.from({ length: 60 }, (_, i) => i),
          (i) =>
            Effect.either((i % 2 === 0 ? a : b).reserve({ requestId: `r${i}`, orgId: "org-r", tokenId: "tok", worstCaseMicrocents: 100 })),
          { concurrency: "unbounded" }
        )
        const held = results.filter(Either.isRight)
        assert.strictEqual(held.length, 10)
        // Settling every hold at its worst case on either replica spends exactly the token's budget.
        yield* Effect.forEach(held, (r, i) => (i % 2 === 0 ? b : a).settle(r.right, usage(100)), { concurrency: "unbounded" })
        yield* Effect.forEach(held, (r) => a.settle(r.right, usage(100)), { concurrency: "unbounded" })
        const rows = yield* b.ledger("org-r", wholeTime)
        assert.strictEqual(rows.length, 10)
        assert.strictEqual(rows.reduce((sum, row) => sum + row.costMicrocents, 0), 1_000)
        const over = yield* Effect.either(a.reserve({ requestId: "late", orgId: "org-r", tokenId: "tok", worstCaseMicrocents: 1 }))
        assert.isTrue(Either.isLeft(over) && over.left._tag === "BudgetExceeded" && over.left.scope === "token")
      })
    )
  )
})

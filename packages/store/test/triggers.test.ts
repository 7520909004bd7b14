/**
 * `SqlTriggers` on SQLite and on Postgres (a fresh database each, dropped afterwards): the
 * Triggers contract, then what only the database can show: no column holds a webhook secret, and
 * on Postgres row-level security hides one org's triggers from another while the two SECURITY
 * DEFINER lookups still find a trigger's org and every schedule.
 */
import { assert, describe, it } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { forOrg, Triggers } from "@relavium/ports"
import { triggersContract } from "@relavium/ports/testing"
import { Database, SqlTriggers } from "../src/index.js"

const server = "postgres://postgres@127.0.0.1:5432"
const masterKey = Redacted.make(randomBytes(32).toString("base64"))

const onAdmin = <A>(url: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(url), connectTimeout: Duration.seconds(5) }), f)).pipe(
    Effect.provide(Reactivity.layer),
    Effect.orDie
  )

/** A Postgres database of its own, migrated, dropped when the layer is released; its name is provided too. */
const freshPgNamed = () => {
  const name = `relavium_triggers_${crypto.randomUUID().replaceAll("-", "")}`
  const layer = Layer.unwrapScoped(
    Effect.map(
      Effect.acquireRelease(
        Effect.as(onAdmin(`${server}/test`, (sql) => sql.unsafe(`CREATE DATABASE ${name}`)), name),
        () => onAdmin(`${server}/test`, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
      ),
      () => Database.layerPg({ url: `${server}/${name}` })
    )
  )
  return { name, layer }
}

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relavium-triggers-sql-"))
process.on("exit", () => Fs.rmSync(dir, { recursive: true, force: true }))

const sqlite = () => Database.layerSqlite({ filename: Path.join(dir, `triggers-${crypto.randomUUID()}.db`) })

const withTriggers = <E, R>(database: Layer.Layer<SqlClient.SqlClient, E, R>) =>
  SqlTriggers.layer({ masterKey }).pipe(Layer.provideMerge(database))

triggersContract("SQLite", SqlTriggers.layer({ masterKey }).pipe(Layer.provide(sqlite())))
triggersContract("Postgres", SqlTriggers.layer({ masterKey }).pipe(Layer.provide(freshPgNamed().layer)))

const asText = (rows: unknown) => JSON.stringify(rows)

describe("SqlTriggers on SQLite", () => {
  it.layer(withTriggers(sqlite()), { timeout: "60 seconds" })((it) => {
    it.effect("no column holds a webhook secret, current or previous", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const triggers = yield* Triggers
        const created = yield* triggers.create({ workflowId: "w", kind: "webhook", name: "hook", createdBy: "local" })
        const rotated = yield* triggers.rotateSecret(created.trigger.id, "2999-01-01T00:00:00.000Z")
        const text = asText(yield* sql`SELECT * FROM triggers`)
        for (const secret of [Option.getOrThrow(created.secret), Option.getOrThrow(rotated)]) {
          assert.notInclude(text, Redacted.value(secret))
          assert.notInclude(text, Redacted.value(secret).slice(6, 30))
        }
        assert.strictEqual((yield* triggers.secrets(created.trigger.id)).length, 2)
      }))

    it.effect("without master keys a webhook trigger is refused, saying what to set; a schedule is fine", () =>
      Effect.gen(function* () {
        const triggers = yield* SqlTriggers.make(undefined)
        const refused = yield* Effect.flip(triggers.create({ workflowId: "w", kind: "webhook", name: "hook", createdBy: "local" }))
        assert.include(refused.message, "RELAVIUM_MASTER_KEY")
        const made = yield* triggers.create({ workflowId: "w", kind: "schedule", name: "s", cron: "* * * * *", timezone: "UTC", createdBy: "local" })
        assert.strictEqual(made.trigger.kind, "schedule")
      }))
  })
})

describe("SqlTriggers on Postgres: row-level security", () => {
  const pg = freshPgNamed()
  it.layer(withTriggers(pg.layer), { timeout: "60 seconds" })((it) => {
    it.effect("relavium_app sees only its org's triggers; the definer lookups find the org and the schedules", () =>
      Effect.gen(function* () {
        const triggers = yield* Triggers
        const a = `org_${crypto.randomUUID().replaceAll("-", "")}`
        const b = `org_${crypto.randomUUID().replaceAll("-", "")}`
        const ta = yield* forOrg(a)(triggers.create({ workflowId: "w", kind: "webhook", name: "hook", createdBy: "x" }))
        const sb = yield* forOrg(b)(triggers.create({ workflowId: "w", kind: "schedule", name: "s", cron: "* * * * *", timezone: "UTC", createdBy: "x" }))
        yield* onAdmin(`${server}/${pg.name}`, (sql) => sql.unsafe(`ALTER ROLE relavium_app LOGIN`))
        const app = `postgres://relavium_app@127.0.0.1:5432/${pg.name}`
        yield* onAdmin(app, (sql) =>
          Effect.gen(function* () {
            const none = yield* sql.unsafe<{ n: string }>(`SELECT count(*)::text AS n FROM triggers`)
            assert.strictEqual(none[0]!.n, "0")
            const asB = yield* sql.withTransaction(
              Effect.zipRight(sql`SELECT set_config('app.org_id', ${b}, true)`, sql<{ trigger_id: string }>`SELECT trigger_id FROM triggers`)
            )
            assert.deepStrictEqual(asB.map((r) => r.trigger_id), [sb.trigger.id])
            const org = yield* sql<{ org: string }>`SELECT relavium_trigger_org(${ta.trigger.id}) AS org`
            assert.strictEqual(org[0]!.org, a)
            const schedules = yield* sql<{ trigger_id: string; org_id: string }>`SELECT trigger_id, org_id FROM relavium_schedules()`
            assert.deepStrictEqual(schedules.map((s) => [s.trigger_id, s.org_id]), [[sb.trigger.id, b]])
            // relavium_schedules returns no secret column.
            const cols = Object.keys((yield* sql.unsafe(`SELECT * FROM relavium_schedules()`))[0] ?? {})
            assert.isFalse(cols.some((c) => c.includes("secret") || c.includes("sealed")))
          })
        )
      }))
  })
})

/**
 * Postgres migrations as `relavium db migrate` and the api replicas run them:
 * under one advisory lock, reporting what they applied, idempotent, and
 * refused (with what to run) by processes that only verify the schema.
 * Real Postgres at 127.0.0.1:5432, a fresh database per test.
 */
import { assert, describe, it } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Fiber, Layer, Redacted } from "effect"
import { Database, Migrations, Store } from "../src/index.js"

const server = "postgres://postgres@127.0.0.1:5432"

const onDatabase = <A>(name: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(
    Effect.flatMap(PgClient.make({ url: Redacted.make(`${server}/${name}`), connectTimeout: Duration.seconds(5) }), f)
  ).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

/** A database of its own, dropped with the test's scope. */
const freshDatabase = Effect.acquireRelease(
  Effect.gen(function* () {
    const name = `relavium_migrate_${crypto.randomUUID().replaceAll("-", "")}`
    yield* onDatabase("test", (sql) => sql.unsafe(`CREATE DATABASE ${name}`))
    return { name, url: `${server}/${name}` }
  }),
  ({ name }) => onDatabase("test", (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
)

const everyMigration = Object.keys(Migrations.migrations).sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10))

const recorded = (name: string) =>
  onDatabase(name, (sql) => sql<{ migration_id: unknown }>`SELECT migration_id FROM relavium_migrations ORDER BY migration_id`).pipe(
    Effect.map((rows) => rows.map((r) => Number(r.migration_id)))
  )

describe("Postgres migrations", () => {
  it.live("report what they applied, then nothing on a second run", () =>
    Effect.gen(function* () {
      const { url } = yield* freshDatabase
      const first = yield* Database.migratePg({ url })
      assert.deepStrictEqual(first.applied, everyMigration)
      assert.strictEqual(first.version, Migrations.schemaVersion)
      assert.strictEqual(first.database, `Postgres at ${url}`)
      const second = yield* Database.migratePg({ url })
      assert.deepStrictEqual(second.applied, [])
      assert.strictEqual(second.version, Migrations.schemaVersion)
    }).pipe(Effect.scoped))

  it.live("run concurrently, they take turns: one applies everything, the others nothing", () =>
    Effect.gen(function* () {
      const { name, url } = yield* freshDatabase
      const reports = yield* Effect.all(
        Array.from({ length: 5 }, () => Database.migratePg({ url })),
        { concurrency: "unbounded" }
      )
      const appliers = reports.filter((r) => r.applied.length > 0)
      assert.strictEqual(appliers.length, 1)
      assert.deepStrictEqual(appliers[0]!.applied, everyMigration)
      for (const r of reports) assert.strictEqual(r.version, Migrations.schemaVersion)
      assert.deepStrictEqual(yield* recorded(name), everyMigration.map((k) => Number.parseInt(k, 10)))
    }).pipe(Effect.scoped))

  it.live("wait for the advisory lock another session holds, and fail, saying so, when it is not released in time", () =>
    Effect.gen(function* () {
      const { url } = yield* freshDatabase
      // Another "replica" holds the migration lock on a session of its own.
      const holder = yield* PgClient.make({ url: Redacted.make(url), connectTimeout: Duration.seconds(5) }).pipe(
        Effect.provide(Reactivity.layer)
      )
      const connection = yield* holder.reserve
      yield* connection.execute("SELECT pg_advisory_lock($1::bigint)", [Database.migrationLockKey], undefined)
      const refused = yield* Database.migratePg({ url, lockTimeout: "300 millis" }).pipe(Effect.flip)
      assert.strictEqual(
        refused.message,
        `Postgres at ${url}: another process has held the migration lock for 300ms; wait for it to finish (pg_locks lists it as an advisory lock)`
      )
      // A migrator that is waiting goes ahead as soon as the lock is released.
      const waiting = yield* Effect.fork(Database.migratePg({ url, lockTimeout: "10 seconds" }))
      yield* Effect.sleep("200 millis")
      assert.isNull(waiting.unsafePoll())
      yield* connection.execute("SELECT pg_advisory_unlock($1::bigint)", [Database.migrationLockKey], undefined)
      const report = yield* Fiber.join(waiting)
      assert.deepStrictEqual(report.applied, everyMigration)
    }).pipe(Effect.scoped))

  it.live("bring a database made by an earlier build up to date, applying only what it lacks", () =>
    Effect.gen(function* () {
      const { name, url } = yield* freshDatabase
      // The first schema only, as a database made by the first build would be.
      yield* Effect.scoped(
        Effect.flatMap(PgClient.make({ url: Redacted.make(url) }), (sql) =>
          Migrations.migrator({
            loader: Migrator.fromRecord({ "1_initial": Migrations.migrations["1_initial"]! }),
            table: Migrations.migrationsTable
          }).pipe(Effect.provideService(SqlClient.SqlClient, sql))
        )
      ).pipe(Effect.provide(Reactivity.layer), Effect.orDie)
      assert.deepStrictEqual(yield* recorded(name), [1])
      const report = yield* Database.migratePg({ url })
      assert.deepStrictEqual(report.applied, everyMigration.slice(1))
      assert.deepStrictEqual(yield* recorded(name), everyMigration.map((k) => Number.parseInt(k, 10)))
    }).pipe(Effect.scoped))

  it.live("a process that only verifies the schema refuses an unmigrated database, saying what to run", () =>
    Effect.gen(function* () {
      const { url } = yield* freshDatabase
      const error = yield* Layer.build(Store.layerPg({ url, migrate: "verify" })).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(
        error.message,
        `Postgres at ${url} has schema version 0; this build needs ${Migrations.schemaVersion}: run \`relavium db migrate --database-url URL\` with the operator role's URL (or start \`relavium server api\` connected as it, which migrates)`
      )
      yield* Database.migratePg({ url })
      yield* Layer.build(Store.layerPg({ url, migrate: "verify" })).pipe(Effect.scoped)
    }).pipe(Effect.scoped))
})

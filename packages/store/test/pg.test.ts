/**
 * The store contracts and the SQL promises on the real Postgres at 127.0.0.1:5432
 * (a fresh database per suite, dropped afterwards), and Postgres's failure modes.
 * Nothing here is skipped when Postgres is down: the suites fail, saying so.
 */
import { assert, describe, it } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Layer, Redacted } from "effect"
import { StoreError } from "@relavium/ports"
import { Migrations, Store } from "../src/index.js"
import { failure, runStoreContract, workflowStoreContract } from "@relavium/ports/testing"
import { sqlContract } from "./sqlContract.js"

const server = "postgres://postgres@127.0.0.1:5432"
const admin = `${server}/test`

/** Runs statements on the admin database (`test`), which must exist. */
const onAdmin = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(
    Effect.flatMap(PgClient.make({ url: Redacted.make(admin), connectTimeout: Duration.seconds(5) }), f)
  ).pipe(Effect.provide(Reactivity.layer))

/** A database of its own for one suite, dropped when the suite's layer is released. */
const freshDatabase = Effect.acquireRelease(
  Effect.gen(function* () {
    const name = `relavium_store_${crypto.randomUUID().replaceAll("-", "")}`
    yield* onAdmin((sql) => sql.unsafe(`CREATE DATABASE ${name}`))
    return name
  }),
  (name) => onAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(Effect.orDie)
).pipe(
  Effect.mapError(
    (cause) =>
      new StoreError({
        message: `cannot create a test database on ${admin}: ${String(cause)}; is Postgres running? \`bash scripts/services.sh\` starts it`,
        cause
      })
  )
)

const freshStore = Layer.unwrapScoped(Effect.map(freshDatabase, (name) => Store.layerPg({ url: `${server}/${name}` })))

runStoreContract("Postgres", freshStore)
workflowStoreContract("Postgres", freshStore)
sqlContract("Postgres", freshStore)

describe("Postgres", () => {
  it.live("an unreachable server fails fast with the URL and what to do", () =>
    Effect.gen(function* () {
      const error = yield* failure(
        Layer.build(Store.layerPg({ url: "postgres://postgres:secret@127.0.0.1:1/relavium", connectTimeout: "2 seconds" })).pipe(Effect.scoped)
      )
      assert.instanceOf(error, StoreError)
      assert.include(error.message, "cannot reach Postgres at postgres://postgres:***@127.0.0.1:1/relavium")
      assert.include(error.message, "is it running? `bash scripts/services.sh` starts it")
      assert.notInclude(error.message, "secret")
    }))

  it.live("a server that never answers times out instead of hanging", () =>
    Effect.gen(function* () {
      // A listening socket that accepts and says nothing.
      const net = yield* Effect.promise(() => import("node:net"))
      const silent = net.createServer(() => {})
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => {
          silent.listen(0, "127.0.0.1", () => resume(Effect.void))
        }),
        () => Effect.sync(() => silent.close())
      )
      const port = (silent.address() as { port: number }).port
      const error = yield* failure(
        Layer.build(Store.layerPg({ url: `postgres://postgres@127.0.0.1:${port}/relavium`, connectTimeout: "500 millis" })).pipe(Effect.scoped)
      )
      assert.include(error.message, `cannot reach Postgres at postgres://postgres@127.0.0.1:${port}/relavium`)
    }).pipe(Effect.scoped))

  it.live("a missing database is named, with what to do", () =>
    Effect.gen(function* () {
      const error = yield* failure(Layer.build(Store.layerPg({ url: `${server}/relavium_no_such_db` })).pipe(Effect.scoped))
      assert.include(error.message, `${server}/relavium_no_such_db`)
      assert.include(error.message, "does not exist")
    }))

  it.live("a database written by a newer Relavium is refused", () =>
    Effect.gen(function* () {
      const name = yield* freshDatabase
      const url = `${server}/${name}`
      yield* Effect.scoped(
        Effect.gen(function* () {
          const context = yield* Layer.build(Store.layerPg({ url }))
          yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
            sql`INSERT INTO ${sql(Migrations.migrationsTable)} (migration_id, name) VALUES (${Migrations.schemaVersion + 1}, 'future')`
          ).pipe(Effect.provide(context))
        })
      )
      const error = yield* failure(Layer.build(Store.layerPg({ url })).pipe(Effect.scoped))
      assert.strictEqual(
        error.message,
        `Postgres at ${url} was written by a newer Relavium (schema ${Migrations.schemaVersion + 1} > ${Migrations.schemaVersion}): upgrade Relavium, or pass --data-dir to use another database`
      )
    }).pipe(Effect.scoped))

  it.live("migrating from many pools at once creates the schema once", () =>
    Effect.gen(function* () {
      const name = yield* freshDatabase
      const url = `${server}/${name}`
      yield* Effect.all(
        Array.from({ length: 4 }, () => Layer.build(Store.layerPg({ url }))),
        { concurrency: "unbounded" }
      )
      const context = yield* Layer.build(Store.layerPg({ url }))
      const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ migration_id: number }>`SELECT migration_id FROM ${sql(Migrations.migrationsTable)}`
      ).pipe(Effect.provide(context))
      assert.deepStrictEqual(rows.map((r) => Number(r.migration_id)).sort((a, b) => a - b), Object.keys(Migrations.migrations).map((k) => Number.parseInt(k, 10)))
    }).pipe(Effect.scoped))
})

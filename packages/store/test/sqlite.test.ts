/** The store contracts and the SQL promises on a SQLite file, and SQLite's own failure modes. */
import { assert, describe, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer, Option } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { RunStore, StoreError } from "@relavium/ports"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Migrations, SqlRunStore, Store } from "../src/index.js"
import { failure, newRunId, nodeStarted, runStoreContract, started, workflowStoreContract } from "@relavium/ports/testing"
import { sqlContract } from "./sqlContract.js"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relavium-store-"))
const file = (name: string) => Path.join(dir, name)
// Deleted when the process ends; vitest forks one process per test file.
process.on("exit", () => Fs.rmSync(dir, { recursive: true, force: true }))

const shared = Store.layerSqlite({ filename: file("contract.db") })
runStoreContract("SQLite", shared)
workflowStoreContract("SQLite", shared)
sqlContract("SQLite", Store.layerSqlite({ filename: file("sql.db") }))

const open = (filename: string) => Layer.build(Store.layerSqlite({ filename }))

describe("SQLite", () => {
  it.live("two connections to one file number a run's events with no gap", () =>
    Effect.gen(function* () {
      const filename = file("two.db")
      const one = yield* Layer.build(SqlRunStore.layerSqlite({ filename }))
      const two = yield* Layer.build(SqlRunStore.layerSqlite({ filename }))
      const [a, b] = [RunStore.pipe(Effect.provide(one)), RunStore.pipe(Effect.provide(two))]
      const storeA = yield* a
      const storeB = yield* b
      const runId = newRunId()
      yield* storeA.create({ runId, workflowId: "wf", workflowName: "demo", createdAt: new Date().toISOString() })
      yield* storeA.append(runId, [started(runId)])
      const writers = [storeA, storeB].flatMap((store, s) =>
        Array.from({ length: 8 }, (_, f) =>
          Effect.forEach(Array.from({ length: 25 }, (_, i) => i), (i) =>
            store.append(runId, [nodeStarted(runId, `${s}-${f}-${i}`), nodeStarted(runId, `${s}-${f}-${i}b`)])
          )
        )
      )
      yield* Effect.all(writers, { concurrency: "unbounded" })
      const events = yield* storeB.events(runId)
      assert.strictEqual(events.length, 1 + 2 * 8 * 25 * 2)
      assert.deepStrictEqual(events.map((e) => e.sequenceNumber), Array.from({ length: events.length }, (_, i) => i))
      assert.strictEqual(Option.getOrThrow(yield* storeA.get(runId)).lastSequenceNumber, events.length - 1)
    }).pipe(Effect.scoped))

  it.live("opens in WAL mode with foreign keys and a busy timeout", () =>
    Effect.gen(function* () {
      const context = yield* open(file("pragmas.db"))
      const sql = Layer.succeedContext(context)
      const read = (pragma: string) =>
        Effect.flatMap(SqlClient.SqlClient, (client) => client.unsafe<Record<string, unknown>>(`PRAGMA ${pragma}`)).pipe(
          Effect.map((rows) => Object.values(rows[0] ?? {})[0]),
          Effect.provide(sql)
        )
      assert.strictEqual(yield* read("journal_mode"), "wal")
      assert.strictEqual(yield* read("foreign_keys"), 1)
      assert.strictEqual(yield* read("busy_timeout"), 5000)
    }).pipe(Effect.scoped))

  it.live("a missing directory names the database and what to do", () =>
    Effect.gen(function* () {
      const filename = file("no/such/dir/relavium.db")
      const error = yield* failure(open(filename).pipe(Effect.scoped))
      assert.instanceOf(error, StoreError)
      assert.include(error.message, filename)
      assert.include(error.message, "does not exist")
      assert.include(error.message, "--data-dir")
    }))

  it.live("a path that cannot be a database file (a directory, or under a file) is refused clearly", () =>
    Effect.gen(function* () {
      const asDir = file("a-directory.db")
      Fs.mkdirSync(asDir)
      const one = yield* failure(open(asDir).pipe(Effect.scoped))
      assert.include(one.message, asDir)
      assert.include(one.message, "not a file")
      const plain = file("plain-file")
      Fs.writeFileSync(plain, "x")
      const two = yield* failure(open(Path.join(plain, "relavium.db")).pipe(Effect.scoped))
      assert.include(two.message, "not a directory")
    }))

  it.live("an unwritable file is refused with its name", () =>
    Effect.gen(function* () {
      const filename = file("readonly.db")
      yield* open(filename).pipe(Effect.scoped)
      Fs.chmodSync(filename, 0o444)
      const writable = (() => {
        try {
          Fs.accessSync(filename, Fs.constants.W_OK)
          return true
        } catch {
          return false
        }
      })()
      // Root may write anything: then there is nothing to refuse.
      if (!writable) {
        const error = yield* failure(open(filename).pipe(Effect.scoped))
        assert.include(error.message, filename)
        assert.include(error.message, "not writable")
      }
      Fs.chmodSync(filename, 0o644)
    }))

  it.live("a corrupt file or another program's SQLite database is not taken for ours", () =>
    Effect.gen(function* () {
      const corrupt = file("corrupt.db")
      Fs.writeFileSync(corrupt, Buffer.from("this is not a database at all, just some bytes ".repeat(200)))
      const one = yield* failure(open(corrupt).pipe(Effect.scoped))
      assert.strictEqual(one.message, `${corrupt} is not a Relavium database or is corrupt: move it away or pass --data-dir`)

      // A valid SQLite header with garbage pages after it.
      const mangled = file("mangled.db")
      yield* open(mangled).pipe(Effect.scoped)
      const bytes = Fs.readFileSync(mangled)
      bytes.fill(0xab, 16, Math.min(bytes.length, 4096))
      for (const suffix of ["-wal", "-shm"]) Fs.rmSync(mangled + suffix, { force: true })
      Fs.writeFileSync(mangled, bytes)
      const two = yield* failure(open(mangled).pipe(Effect.scoped))
      assert.include(two.message, mangled)
      assert.match(two.message, /not a Relavium database or is corrupt|cannot open/)

      const foreign = file("foreign.db")
      // Another program's database: a table, no Relavium migrations.
      yield* Effect.scoped(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe("CREATE TABLE notes (id integer primary key, body text)")).pipe(
          Effect.provide(SqliteClient.layer({ filename: foreign }))
        )
      )
      const three = yield* failure(open(foreign).pipe(Effect.scoped))
      assert.strictEqual(three.message, `SQLite database ${foreign} is not a Relavium database or is corrupt: move it away or pass --data-dir`)
    }))

  it.live("a database written by a newer Relavium is refused, and left untouched", () =>
    Effect.gen(function* () {
      const filename = file("newer.db")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const context = yield* open(filename)
          yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
            sql`INSERT INTO ${sql(Migrations.migrationsTable)} (migration_id, name) VALUES (${Migrations.schemaVersion + 41}, 'future')`
          ).pipe(Effect.provide(context))
        })
      )
      const error = yield* failure(open(filename).pipe(Effect.scoped))
      assert.include(error.message, filename)
      assert.include(error.message, `was written by a newer Relavium (schema ${Migrations.schemaVersion + 41} > ${Migrations.schemaVersion}): upgrade`)
    }))

  it.live("migrating from many connections at once creates the schema once", () =>
    Effect.gen(function* () {
      const filename = file("race.db")
      yield* Effect.all(
        Array.from({ length: 4 }, () => open(filename)),
        { concurrency: "unbounded" }
      )
      const context = yield* open(filename)
      const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ migration_id: number }>`SELECT migration_id FROM ${sql(Migrations.migrationsTable)}`
      ).pipe(Effect.provide(context))
      assert.deepStrictEqual(rows.map((r) => Number(r.migration_id)).sort((a, b) => a - b), Object.keys(Migrations.migrations).map((k) => Number.parseInt(k, 10)))
    }).pipe(Effect.scoped))
})

/**
 * The ChatStore contract on the SQL layers (the memory layer runs it in
 * packages/ports): a SQLite file, and the real Postgres at 127.0.0.1:5432 (a fresh database, dropped
 * afterwards; the suite fails, saying so, when Postgres is down).
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Layer, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { StoreError } from "@relavium/ports"
import { Store } from "../src/index.js"
import { chatStoreContract } from "@relavium/ports/testing"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relavium-chat-store-"))
process.on("exit", () => Fs.rmSync(dir, { recursive: true, force: true }))

const server = "postgres://postgres@127.0.0.1:5432"
const admin = `${server}/test`

const onAdmin = (statement: string) =>
  Effect.scoped(
    Effect.flatMap(PgClient.make({ url: Redacted.make(admin), connectTimeout: Duration.seconds(5) }), (sql) => sql.unsafe(statement))
  ).pipe(Effect.provide(Reactivity.layer))

const freshPg = Layer.unwrapScoped(
  Effect.acquireRelease(
    Effect.sync(() => `relavium_chat_${crypto.randomUUID().replaceAll("-", "")}`).pipe(
      Effect.tap((name) => onAdmin(`CREATE DATABASE ${name}`))
    ),
    (name) => onAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.orDie)
  ).pipe(
    Effect.mapError(
      (cause) => new StoreError({ message: `cannot create a test database on ${admin}: ${String(cause)}; is Postgres running?`, cause })
    ),
    Effect.map((name) => Store.layerPg({ url: `${server}/${name}` }))
  )
)

chatStoreContract("SQLite", Store.layerSqlite({ filename: Path.join(dir, "chats.db") }))
chatStoreContract("Postgres", freshPg)

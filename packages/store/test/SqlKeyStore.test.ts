/**
 * The encrypted key store on Postgres (a fresh database) and SQLite: keys
 * round-trip, rows hold no key (AES-256-GCM with a fresh nonce each write),
 * another master key or an altered row is refused with what to do, and a
 * malformed master key fails the layer without echoing it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Either, Layer, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { forOrg, KeyStore } from "@relavium/ports"
import { keyStoreContract } from "@relavium/ports/testing"
import { Database, SqlKeyStore } from "../src/index.js"

const server = "postgres://postgres@127.0.0.1:5432"
const KEY = `sk-live-${randomBytes(12).toString("hex")}`
const masterKey = Redacted.make(randomBytes(32).toString("base64"))
const otherMasterKey = Redacted.make(randomBytes(32).toString("hex"))

const onAdmin = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(
    Effect.flatMap(PgClient.make({ url: Redacted.make(`${server}/test`), connectTimeout: Duration.seconds(5) }), f)
  ).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

const freshPg = Layer.unwrapScoped(
  Effect.map(
    Effect.acquireRelease(
      Effect.gen(function* () {
        const name = `relavium_keys_${crypto.randomUUID().replaceAll("-", "")}`
        yield* onAdmin((sql) => sql.unsafe(`CREATE DATABASE ${name}`))
        return name
      }),
      (name) => onAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    ),
    (name) => Database.layerPg({ url: `${server}/${name}` })
  )
)

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relavium-keys-sql-"))
process.on("exit", () => Fs.rmSync(dir, { recursive: true, force: true }))

const databases = [
  ["Postgres", freshPg],
  ["SQLite", Database.layerSqlite({ filename: Path.join(dir, "keys.db") })]
] as const

const withStore = <A, E>(key: Redacted.Redacted<string>, use: (keys: KeyStore["Type"]) => Effect.Effect<A, E>) =>
  Effect.flatMap(SqlKeyStore.make({ masterKey: key }), use)

/** The store acting for `orgId` on every call (as a worker acting for that org does). */
const actingFor = (keys: KeyStore["Type"], orgId: string): KeyStore["Type"] =>
  KeyStore.of({
    get: (provider) => forOrg(orgId)(keys.get(provider)),
    set: (provider, key) => forOrg(orgId)(keys.set(provider, key)),
    remove: (provider) => forOrg(orgId)(keys.remove(provider)),
    list: forOrg(orgId)(keys.list)
  })

/** A store of its own organisation (so tests sharing a database do not meet), holding `seed`. */
const seeded = (database: Layer.Layer<SqlClient.SqlClient, unknown>) => (seed: Readonly<Record<string, string>>) =>
  Layer.effect(
    KeyStore,
    Effect.tap(
      Effect.map(SqlKeyStore.make({ masterKey }), (keys) => actingFor(keys, `org-${crypto.randomUUID()}`)),
      (keys) => Effect.forEach(Object.entries(seed), ([provider, key]) => keys.set(provider, Redacted.make(key)), { discard: true })
    )
  ).pipe(Layer.provide(database))

// On databases of their own: the tests below read provider_keys across organisations.
keyStoreContract("encrypted on Postgres", seeded(freshPg))
keyStoreContract("encrypted on SQLite", seeded(Database.layerSqlite({ filename: Path.join(dir, "contract-keys.db") })))

for (const [name, database] of databases) {
  describe(`SqlKeyStore on ${name}`, () => {
    it.layer(database, { timeout: 30_000 })((it) => {
      it.effect("stores, lists, reads and removes keys; rows hold only ciphertext", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* withStore(masterKey, (keys) =>
            Effect.gen(function* () {
              yield* keys.set("openai", Redacted.make(KEY))
              const firstRow = (yield* sql<{ nonce: string; ciphertext: string }>`SELECT nonce, ciphertext FROM provider_keys WHERE provider = 'openai'`)[0]!
              yield* keys.set("openai", Redacted.make(KEY))
              yield* keys.set("anthropic", Redacted.make(`${KEY}-2`))
              assert.deepStrictEqual(yield* keys.list, ["anthropic", "openai"])
              assert.strictEqual(Redacted.value(Option.getOrThrow(yield* keys.get("openai"))), KEY)
              assert.isTrue(Option.isNone(yield* keys.get("gemini")))
              const rows = yield* sql<Record<string, unknown>>`SELECT * FROM provider_keys`
              const text = JSON.stringify(rows)
              assert.notInclude(text, KEY)
              assert.notInclude(text, Buffer.from(KEY).toString("base64").slice(0, 16))
              // A fresh nonce on every write: the same key sealed twice differs.
              const secondRow = rows.find((r) => r.provider === "openai")!
              assert.notStrictEqual(secondRow.nonce, firstRow.nonce)
              assert.notStrictEqual(secondRow.ciphertext, firstRow.ciphertext)
              assert.isTrue(yield* keys.remove("openai"))
              assert.isFalse(yield* keys.remove("openai"))
              assert.deepStrictEqual(yield* keys.list, ["anthropic"])
            })
          )
        }))

      it.effect("refuses a key sealed under another master key, and a row moved onto another provider", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* withStore(masterKey, (keys) => keys.set("gemini", Redacted.make(KEY)))
          const mine = Either.getOrThrow(SqlKeyStore.parseMasterKey(masterKey)).id
          const theirs = Either.getOrThrow(SqlKeyStore.parseMasterKey(otherMasterKey)).id
          const foreign = yield* withStore(otherMasterKey, (keys) => keys.get("gemini")).pipe(Effect.flip)
          assert.strictEqual(foreign.reason, "unknown_master")
          assert.strictEqual(
            foreign.message,
            `the data key (version 1) of org local is wrapped under master key ${mine}, which this process does not hold (it holds master (${theirs})): add that key to RELAVIUM_MASTER_KEYS`
          )
          // Copy the sealed gemini row onto deepseek: the provider is bound in, so it does not open.
          yield* sql`INSERT INTO provider_keys (org_id, provider, master_key_id, nonce, ciphertext, data_key_version, created_at, updated_at)
            SELECT org_id, 'deepseek', master_key_id, nonce, ciphertext, data_key_version, created_at, updated_at FROM provider_keys WHERE provider = 'gemini'`
          const moved = yield* withStore(masterKey, (keys) => keys.get("deepseek")).pipe(Effect.flip)
          assert.strictEqual(moved.reason, "tampered")
          assert.strictEqual(moved.message, "the stored key for deepseek does not decrypt (it was altered in the database); set it again")
          assert.notInclude(`${foreign.message}${moved.message}`, KEY)
        }))

      it.effect("refuses a provider name that is not one", () =>
        Effect.gen(function* () {
          const error = yield* withStore(masterKey, (keys) => keys.set("../etc", Redacted.make(KEY))).pipe(Effect.flip)
          assert.include(error.message, "'../etc' is not a provider name")
        }))
    })
  })
}

describe("SqlKeyStore master key", () => {
  it("accepts 32 bytes as base64, base64url or hex, and nothing else, never echoing the value", () => {
    const bytes = randomBytes(32)
    const ids = [bytes.toString("base64"), bytes.toString("base64url"), bytes.toString("hex")].map(
      (text) => Either.getOrThrow(SqlKeyStore.parseMasterKey(Redacted.make(text))).id
    )
    assert.strictEqual(new Set(ids).size, 1)
    for (const bad of ["", "short", randomBytes(16).toString("base64"), randomBytes(31).toString("hex"), `${"z".repeat(63)}!`]) {
      const error = Either.getOrThrow(Either.flip(SqlKeyStore.parseMasterKey(Redacted.make(bad))))
      assert.strictEqual(
        error.message,
        "RELAVIUM_MASTER_KEY must be 32 random bytes in base64 or hex (make one with `openssl rand -base64 32`)"
      )
    }
  })
})

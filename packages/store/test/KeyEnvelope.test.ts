/**
 * Envelope encryption of the cloud key store, on Postgres (a fresh database per test) and on
 * SQLite (a fresh file per test): each org has its own data key, a tampered value, a row
 * copied to another org and a data key wrapped under a master key the process does not hold
 * each fail with their typed reason; legacy rows (sealed directly under the master) still
 * open and are re-sealed by rotation; master and org rotations keep every key readable,
 * including for readers calling `get` while they run.
 */
import { assert, describe, it } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Deferred, Duration, Effect, Either, Fiber, Layer, Option, Redacted, Ref } from "effect"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { forOrg, type KeyStoreError } from "@relavium/ports"
import { Database, KeyRotation, SqlKeyStore } from "../src/index.js"
import * as Envelope from "../src/Envelope.js"

const server = "postgres://postgres@127.0.0.1:5432"
const b64 = () => randomBytes(32).toString("base64")
const oldKey = b64()
const newKey = b64()
const strangerKey = b64()
const only = (label: string, key: string) => ({ masterKeys: Redacted.make(`${label}:${key}`) })
const OLD = only("old", oldKey)
const NEW = only("new", newKey)
const BOTH = { masterKeys: Redacted.make(`new:${newKey}, old:${oldKey}`) }
const STRANGER = { masterKey: Redacted.make(strangerKey) }
const idOf = (key: string) => Either.getOrThrow(SqlKeyStore.parseMasterKey(Redacted.make(key))).id

const secret = (label: string) => `sk-${label}-${randomBytes(10).toString("hex")}`

const onAdmin = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(`${server}/test`), connectTimeout: Duration.seconds(5) }), f)).pipe(
    Effect.provide(Reactivity.layer),
    Effect.orDie
  )

const freshPg = () =>
  Layer.unwrapScoped(
    Effect.map(
      Effect.acquireRelease(
        Effect.gen(function* () {
          const name = `relavium_envelope_${crypto.randomUUID().replaceAll("-", "")}`
          yield* onAdmin((sql) => sql.unsafe(`CREATE DATABASE ${name}`))
          return name
        }),
        (name) => onAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
      ),
      (name) => Database.layerPg({ url: `${server}/${name}` })
    )
  )

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relavium-envelope-"))
process.on("exit", () => Fs.rmSync(dir, { recursive: true, force: true }))
const freshSqlite = () => Database.layerSqlite({ filename: Path.join(dir, `${crypto.randomUUID()}.db`) })

const store = (settings: SqlKeyStore.EncryptedOptions) => SqlKeyStore.make(settings)

/** `get` for `orgId` with a store holding `settings`'s master keys. */
const read = (settings: SqlKeyStore.EncryptedOptions, orgId: string, provider: string) =>
  Effect.flatMap(store(settings), (keys) => forOrg(orgId)(keys.get(provider)))

const readValue = (settings: SqlKeyStore.EncryptedOptions, orgId: string, provider: string) =>
  Effect.map(read(settings, orgId, provider), (key) => Redacted.value(Option.getOrThrow(key)))

const write = (settings: SqlKeyStore.EncryptedOptions, orgId: string, entries: Readonly<Record<string, string>>) =>
  Effect.flatMap(store(settings), (keys) =>
    forOrg(orgId)(Effect.forEach(Object.entries(entries), ([provider, value]) => keys.set(provider, Redacted.make(value)), { discard: true }))
  )

/** Writes org-a's openai and anthropic keys and `b` for org-b under `OLD`; returns org-a's. */
const writeTwoOrgs = (b: Readonly<Record<string, string>>) =>
  Effect.gen(function* () {
    const a = { openai: secret("a-openai"), anthropic: secret("a-anthropic") }
    yield* write(OLD, "org-a", a)
    yield* write(OLD, "org-b", b)
    return a
  })

const refusal = (settings: SqlKeyStore.EncryptedOptions, orgId: string, provider: string) =>
  Effect.flip(read(settings, orgId, provider)) as Effect.Effect<KeyStoreError, never, SqlClient.SqlClient>

const databases = [
  ["Postgres", freshPg],
  ["SQLite", freshSqlite]
] as const

for (const [name, fresh] of databases) {
  describe(`envelope encryption on ${name}`, () => {
    const test = (title: string, body: () => Effect.Effect<void, unknown, SqlClient.SqlClient>) =>
      it.live(title, () => Effect.provide(body(), fresh()), { timeout: 60_000 })

    test("each org gets its own data key; secrets round-trip and rows hold neither secrets nor data keys", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const b = { openai: secret("b-openai") }
        const a = yield* writeTwoOrgs(b)
        assert.strictEqual(yield* readValue(OLD, "org-a", "openai"), a.openai)
        assert.strictEqual(yield* readValue(OLD, "org-a", "anthropic"), a.anthropic)
        assert.strictEqual(yield* readValue(OLD, "org-b", "openai"), b.openai)
        assert.isTrue(Option.isNone(yield* read(OLD, "org-b", "anthropic")))
        const keys = yield* store(OLD)
        assert.deepStrictEqual(yield* forOrg("org-a")(keys.list), ["anthropic", "openai"])
        assert.deepStrictEqual(yield* forOrg("org-b")(keys.list), ["openai"])
        const dataKeys = yield* sql<{ org_id: string; version: number; master_key_id: string; wrapped: string; retired_at: string | null }>`
          SELECT org_id, version, master_key_id, wrapped, retired_at FROM org_data_keys ORDER BY org_id`
        assert.deepStrictEqual(
          dataKeys.map((k) => [k.org_id, Number(k.version), k.master_key_id, k.retired_at]),
          [["org-a", 1, idOf(oldKey), null], ["org-b", 1, idOf(oldKey), null]]
        )
        assert.notStrictEqual(dataKeys[0]!.wrapped, dataKeys[1]!.wrapped)
        const rows = yield* sql<{ data_key_version: number }>`SELECT data_key_version FROM provider_keys`
        assert.deepStrictEqual(rows.map((r) => Number(r.data_key_version)), [1, 1, 1])
        const everything = JSON.stringify([yield* sql`SELECT * FROM provider_keys`, dataKeys])
        for (const value of [...Object.values(a), ...Object.values(b), oldKey]) assert.notInclude(everything, value)
        assert.isTrue(yield* forOrg("org-a")(keys.remove("openai")))
        assert.isTrue(Option.isNone(yield* read(OLD, "org-a", "openai")))
        assert.strictEqual(yield* readValue(OLD, "org-b", "openai"), b.openai)
      }))

    test("a tampered secret or data key, a row copied to another org and an unknown master key each fail with their reason", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const a = { openai: secret("a-openai"), gemini: secret("a-gemini") }
        yield* write(OLD, "org-a", a)
        yield* write(OLD, "org-b", { anthropic: secret("b-anthropic") })
        // A process holding another master key: the data key is wrapped under one it does not have.
        const stranger = yield* refusal(STRANGER, "org-a", "openai")
        assert.strictEqual(stranger.reason, "unknown_master")
        assert.include(stranger.message, `master key ${idOf(oldKey)}, which this process does not hold`)
        // The row copied into org-b: sealed for org-a, so org-b's data key is not even tried.
        yield* sql`INSERT INTO provider_keys (org_id, provider, master_key_id, nonce, ciphertext, data_key_version, created_at, updated_at)
          SELECT 'org-b', provider, master_key_id, nonce, ciphertext, data_key_version, created_at, updated_at
          FROM provider_keys WHERE org_id = 'org-a' AND provider = 'openai'`
        const copied = yield* refusal(OLD, "org-b", "openai")
        assert.strictEqual(copied.reason, "wrong_org")
        assert.strictEqual(copied.message, "the stored key for openai was sealed for another organisation (the row was copied or moved): set it again")
        // One flipped bit of the sealed secret.
        const row = (yield* sql<{ ciphertext: string }>`SELECT ciphertext FROM provider_keys WHERE org_id = 'org-a' AND provider = 'openai'`)[0]!
        const body = Buffer.from(row.ciphertext, "base64")
        body[body.length - 20] = body[body.length - 20]! ^ 1
        yield* sql`UPDATE provider_keys SET ciphertext = ${body.toString("base64")} WHERE org_id = 'org-a' AND provider = 'openai'`
        const tampered = yield* refusal(OLD, "org-a", "openai")
        assert.strictEqual(tampered.reason, "tampered")
        assert.strictEqual(tampered.message, "the stored key for openai does not decrypt (it was altered in the database); set it again")
        // The untouched secret still opens; then the org's wrapped data key is altered.
        assert.strictEqual(yield* readValue(OLD, "org-a", "gemini"), a.gemini)
        const wrapped = Buffer.from((yield* sql<{ wrapped: string }>`SELECT wrapped FROM org_data_keys WHERE org_id = 'org-a'`)[0]!.wrapped, "base64")
        wrapped[12] = wrapped[12]! ^ 1
        yield* sql`UPDATE org_data_keys SET wrapped = ${wrapped.toString("base64")} WHERE org_id = 'org-a'`
        const badDataKey = yield* refusal(OLD, "org-a", "gemini")
        assert.strictEqual(badDataKey.reason, "tampered")
        assert.include(badDataKey.message, "does not unwrap under master key old")
        // org-a's data key row copied over org-b's: wrapped for another org.
        yield* sql`UPDATE org_data_keys SET wrapped = ${wrapped.toString("base64")}, nonce = (SELECT nonce FROM org_data_keys WHERE org_id = 'org-a')
          WHERE org_id = 'org-b'`
        const foreignDataKey = yield* refusal(OLD, "org-b", "anthropic")
        assert.strictEqual(foreignDataKey.reason, "wrong_org")
        for (const error of [stranger, copied, tampered, badDataKey, foreignDataKey]) {
          for (const value of [...Object.values(a), oldKey, strangerKey]) assert.notInclude(error.message, value)
        }
      }))

    test("legacy rows sealed directly under the master key still open, and rotation re-seals them under a data key", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const master = Either.getOrThrow(SqlKeyStore.parseMasterKey(Redacted.make(oldKey)))
        const legacy = { "org-a": secret("legacy-a"), "org-b": secret("legacy-b") }
        for (const [orgId, value] of Object.entries(legacy)) {
          const sealed = Envelope.sealLegacy(master, orgId, "openai", Redacted.make(value))
          yield* sql`INSERT INTO provider_keys ${sql.insert({
            org_id: orgId,
            provider: "openai",
            master_key_id: master.id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            created_at: new Date().toISOString(),
            updated_at: new Date().toISOString()
          })}`
        }
        assert.strictEqual(yield* readValue(OLD, "org-a", "openai"), legacy["org-a"])
        assert.strictEqual(yield* readValue(BOTH, "org-b", "openai"), legacy["org-b"])
        assert.strictEqual((yield* refusal(NEW, "org-a", "openai")).reason, "unknown_master")
        // rotateOrg re-seals org-a's legacy row under a new data key.
        const report = yield* KeyRotation.rotateOrg(OLD, "org-a")
        assert.deepStrictEqual(report, { orgId: "org-a", version: 1, retired: [], resealed: 1, legacy: 1 })
        // rotateMaster re-seals org-b's legacy row, and re-wraps org-a's data key under the new master.
        const master2 = yield* KeyRotation.rotateMaster(BOTH)
        assert.deepStrictEqual(master2, {
          masterKeyId: idOf(newKey),
          masterKeyLabel: "new",
          orgs: 2,
          rewrapped: 1,
          alreadyCurrent: 0,
          legacyResealed: 1
        })
        const rows = yield* sql<{ org_id: string; data_key_version: number | null }>`SELECT org_id, data_key_version FROM provider_keys ORDER BY org_id`
        assert.deepStrictEqual(rows.map((r) => [r.org_id, Number(r.data_key_version)]), [["org-a", 1], ["org-b", 1]])
        assert.strictEqual(yield* readValue(NEW, "org-a", "openai"), legacy["org-a"])
        assert.strictEqual(yield* readValue(NEW, "org-b", "openai"), legacy["org-b"])
      }))

    test("rotate-master with [new, old] then [new] only: every key opens, and the old master alone opens nothing", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const b = { gemini: secret("b-gemini") }
        const a = yield* writeTwoOrgs(b)
        yield* KeyRotation.rotateOrg(OLD, "org-b") // a retired data key under the old master too
        const report = yield* KeyRotation.rotateMaster(BOTH)
        assert.deepStrictEqual(
          [report.orgs, report.rewrapped, report.alreadyCurrent, report.legacyResealed],
          [2, 3, 0, 0]
        )
        const again = yield* KeyRotation.rotateMaster(BOTH)
        assert.deepStrictEqual([again.rewrapped, again.alreadyCurrent], [0, 3])
        const masters = yield* sql<{ master_key_id: string }>`SELECT DISTINCT master_key_id FROM org_data_keys`
        assert.deepStrictEqual(masters.map((m) => m.master_key_id), [idOf(newKey)])
        for (const settings of [BOTH, NEW]) {
          assert.strictEqual(yield* readValue(settings, "org-a", "openai"), a.openai)
          assert.strictEqual(yield* readValue(settings, "org-a", "anthropic"), a.anthropic)
          assert.strictEqual(yield* readValue(settings, "org-b", "gemini"), b.gemini)
        }
        for (const [orgId, provider] of [["org-a", "openai"], ["org-a", "anthropic"], ["org-b", "gemini"]] as const) {
          assert.strictEqual((yield* refusal(OLD, orgId, provider)).reason, "unknown_master")
        }
        // New writes wrap under the new master too.
        yield* write(NEW, "org-c", { openai: secret("c") })
        assert.strictEqual((yield* refusal(OLD, "org-c", "openai")).reason, "unknown_master")
      }))

    test("rotateOrg issues a new data key version, re-seals the org's secrets and retires the old version", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const b = { openai: secret("b-openai") }
        const a = yield* writeTwoOrgs(b)
        const before = yield* sql<{ provider: string; ciphertext: string }>`SELECT provider, ciphertext FROM provider_keys WHERE org_id = 'org-a' ORDER BY provider`
        const report = yield* KeyRotation.rotateOrg(OLD, "org-a")
        assert.deepStrictEqual(report, { orgId: "org-a", version: 2, retired: [1], resealed: 2, legacy: 0 })
        const versions = yield* sql<{ org_id: string; version: number; retired_at: string | null }>`
          SELECT org_id, version, retired_at FROM org_data_keys ORDER BY org_id, version`
        assert.deepStrictEqual(
          versions.map((v) => [v.org_id, Number(v.version), v.retired_at !== null]),
          [["org-a", 1, true], ["org-a", 2, false], ["org-b", 1, false]]
        )
        const after = yield* sql<{ provider: string; ciphertext: string; data_key_version: number }>`
          SELECT provider, ciphertext, data_key_version FROM provider_keys WHERE org_id = 'org-a' ORDER BY provider`
        assert.deepStrictEqual(after.map((r) => Number(r.data_key_version)), [2, 2])
        assert.notStrictEqual(after[0]!.ciphertext, before[0]!.ciphertext)
        assert.strictEqual(yield* readValue(OLD, "org-a", "openai"), a.openai)
        assert.strictEqual(yield* readValue(OLD, "org-a", "anthropic"), a.anthropic)
        assert.strictEqual(yield* readValue(OLD, "org-b", "openai"), b.openai)
        // A write after the rotation uses the new version.
        yield* write(OLD, "org-a", { gemini: secret("a-gemini") })
        const gemini = yield* sql<{ data_key_version: number }>`SELECT data_key_version FROM provider_keys WHERE org_id = 'org-a' AND provider = 'gemini'`
        assert.strictEqual(Number(gemini[0]!.data_key_version), 2)
        const unknown = yield* Effect.flip(KeyRotation.rotateOrg(OLD, "org-nobody"))
        assert.strictEqual(unknown.message, "org org-nobody has no stored keys: nothing to rotate (check the org id)")
      }))

    test("rotations while runs read keys lose nothing: every read returns that org's key", () =>
      Effect.gen(function* () {
        const orgs = {
          "org-a": { openai: secret("a-openai"), anthropic: secret("a-anthropic") },
          "org-b": { openai: secret("b-openai"), gemini: secret("b-gemini") }
        } as const
        for (const [orgId, entries] of Object.entries(orgs)) yield* write(OLD, orgId, entries)
        const readers = yield* store(BOTH)
        const done = yield* Deferred.make<void>()
        const reads = yield* Ref.make(0)
        const wrong = yield* Ref.make<Array<string>>([])
        const reader = (orgId: keyof typeof orgs, provider: string, expected: string) =>
          Effect.gen(function* () {
            const got = yield* Effect.either(forOrg(orgId)(readers.get(provider)))
            const ok = Either.isRight(got) && Option.isSome(got.right) && Redacted.value(got.right.value) === expected
            if (!ok) {
              const what = Either.isLeft(got) ? got.left.message : Option.isNone(got.right) ? "none" : "another key"
              yield* Ref.update(wrong, (list) => [...list, `${orgId}/${provider}: ${what}`])
            }
            yield* Ref.update(reads, (n) => n + 1)
            // A pause between reads, as between model calls: SQLite's one connection is handed
            // out unfairly, and readers that never pause would starve the rotation's transaction.
            yield* Effect.sleep(Duration.millis(1))
          })
        const loops = Object.entries(orgs).flatMap(([orgId, entries]) =>
          Object.entries(entries).flatMap(([provider, expected]) => [0, 1].map(() => ({ orgId: orgId as keyof typeof orgs, provider, expected })))
        )
        const fibers = yield* Effect.forEach(loops, ({ orgId, provider, expected }) =>
          Effect.fork(
            Effect.gen(function* () {
              while (!(yield* Deferred.isDone(done))) yield* reader(orgId, provider, expected)
              yield* reader(orgId, provider, expected)
            })
          )
        )
        // Every rotation starts only once the readers have read again since the last one, so
        // reads interleave with all of them (and overlap them where the database allows it).
        const readersMoveOn = Effect.flatMap(Ref.get(reads), (from) =>
          Effect.repeat(Effect.zipRight(Effect.sleep(Duration.millis(2)), Ref.get(reads)), { until: (n) => n >= from + loops.length })
        )
        const rotations = [
          KeyRotation.rotateOrg(BOTH, "org-a"),
          KeyRotation.rotateMaster(BOTH),
          KeyRotation.rotateOrg(BOTH, "org-b"),
          KeyRotation.rotateOrg(BOTH, "org-a"),
          KeyRotation.rotateMaster(BOTH)
        ]
        for (const rotation of rotations) {
          yield* readersMoveOn
          yield* rotation
        }
        yield* readersMoveOn
        yield* Deferred.succeed(done, undefined)
        yield* Fiber.joinAll(fibers)
        assert.deepStrictEqual(yield* Ref.get(wrong), [])
        for (const [orgId, entries] of Object.entries(orgs)) {
          for (const [provider, expected] of Object.entries(entries)) assert.strictEqual(yield* readValue(NEW, orgId, provider), expected)
        }
      }))
  })
}

describe("master key settings", () => {
  it("RELAVIUM_MASTER_KEYS is label:key entries, the first current; errors never echo a key", () => {
    const ring = Either.getOrThrow(SqlKeyStore.masterKeyring({ masterKeys: Redacted.make(`2026-12:${newKey},\n 2026-06:${randomBytes(32).toString("hex")}`) }))
    assert.deepStrictEqual(ring.keys.map((k) => k.label), ["2026-12", "2026-06"])
    assert.strictEqual(ring.current.id, idOf(newKey))
    const bad: Array<[string, string]> = [
      [newKey, "RELAVIUM_MASTER_KEYS entry 1 has no label: write each entry as label:key"],
      [`a:${newKey},b:short`, "RELAVIUM_MASTER_KEYS entry 2 (b) must be 32 random bytes in base64 or hex"],
      [`a:${newKey},b:${newKey}`, "RELAVIUM_MASTER_KEYS entries 1 and 2 are the same key"],
      [`a:${newKey},a:${oldKey}`, "RELAVIUM_MASTER_KEYS entries 1 and 2 have the same label a"],
      [`${oldKey.slice(0, 10)}/x:${newKey}`, "RELAVIUM_MASTER_KEYS entry 1 has an invalid label"],
      [" , ", "RELAVIUM_MASTER_KEYS is empty"]
    ]
    for (const [value, message] of bad) {
      const error = Either.getOrThrow(Either.flip(SqlKeyStore.masterKeyring({ masterKeys: Redacted.make(value) })))
      assert.include(error.message, message)
      assert.notInclude(error.message, newKey)
      assert.notInclude(error.message, oldKey.slice(0, 10))
    }
    const both = Either.getOrThrow(Either.flip(SqlKeyStore.masterKeyring({ masterKey: Redacted.make(oldKey), masterKeys: Redacted.make(`a:${newKey}`) })))
    assert.include(both.message, "both RELAVIUM_MASTER_KEY and RELAVIUM_MASTER_KEYS are set")
  })
})

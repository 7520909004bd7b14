/**
 * The cloud `KeyStore`: provider API keys in the `provider_keys` table under envelope
 * encryption (see `Envelope` for the cryptography, `MasterKeys` for the master key settings).
 *
 * - Each org has a data key (32 random bytes) in `org_data_keys`, wrapped under the current
 *   master key; each provider secret is sealed under its org's current data key. Master keys
 *   never touch the database.
 * - The org is `CurrentOrg`, read on every call, so a worker acting for an org uses that org's
 *   key. On Postgres every operation is one transaction that sets `app.org_id` (row-level
 *   security) to that org.
 * - A key that does not open fails with a `KeyStoreError` whose `reason` says why:
 *   `tampered`, `wrong_org` or `unknown_master`; no value is ever logged or put in an error.
 * - Rotation (`KeyRotation`): `rotateMaster` re-wraps every data key under the current master,
 *   `rotateOrg` issues a new data key for an org and re-seals its secrets under it.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer, Option, type Redacted } from "effect"
import { checkKeyEntry, CurrentOrg, forOrg, KeyStore, KeyStoreError, type KeyStoreFailure } from "@relavium/ports"
import * as Database from "./Database.js"
import * as Envelope from "./Envelope.js"
import {
  describeKeyring,
  describeMasterKey,
  findMasterKey,
  type MasterKey,
  type MasterKeyring,
  masterKeyring,
  type MasterKeySettings
} from "./MasterKeys.js"

export {
  type MasterKey,
  masterKeyHelp,
  type MasterKeyring,
  masterKeyring,
  type MasterKeySettings,
  masterKeysHelp,
  parseMasterKey,
  parseMasterKeyList
} from "./MasterKeys.js"

/** Where the master keys come from: `RELAVIUM_MASTER_KEY` or `RELAVIUM_MASTER_KEYS` (see `MasterKeys`). */
export type EncryptedOptions = MasterKeySettings

/** A row of `org_data_keys`. */
export interface DataKeyRow {
  readonly version: number
  readonly master_key_id: string
  readonly nonce: string
  readonly wrapped: string
  readonly retired_at: string | null
}

/** A row of `provider_keys`. */
export interface SecretRow {
  readonly provider: string
  readonly master_key_id: string
  readonly nonce: string
  readonly ciphertext: string
  readonly data_key_version: number | null
}

/** What `provider_keys.master_key_id` holds for a row sealed under a data key (legacy rows: the master key's id). */
export const dataKeyMarker = (version: number) => `data-key:${version}`

const now = () => new Date().toISOString()

const lockFor = (sql: SqlClient.SqlClient, mode: "share" | "update") =>
  sql.onDialectOrElse({ pg: () => sql.literal(mode === "share" ? "FOR SHARE" : "FOR UPDATE"), orElse: () => sql.literal("") })

/**
 * Runs `effect` as one transaction for `orgId`: `CurrentOrg` is that org and, on Postgres,
 * `app.org_id` is set for row-level security.
 */
export const inOrg = <A, E, R>(sql: SqlClient.SqlClient, orgId: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
  forOrg(orgId)(
    sql.withTransaction(
      Effect.zipRight(
        sql.onDialectOrElse({
          pg: () => Effect.asVoid(sql`SELECT set_config('app.org_id', ${orgId}, true)`),
          orElse: () => Effect.void
        }),
        effect
      )
    )
  )

const refused = (message: string, reason: KeyStoreFailure) => new KeyStoreError({ message, reason })

/** The master key that wrapped a data key, or why the process cannot use it. */
const masterFor = (ring: MasterKeyring, orgId: string, row: DataKeyRow): Effect.Effect<MasterKey, KeyStoreError> => {
  const master = findMasterKey(ring, row.master_key_id)
  return master !== undefined
    ? Effect.succeed(master)
    : Effect.fail(
        refused(
          `the data key (version ${row.version}) of org ${orgId} is wrapped under master key ${row.master_key_id}, which this process does not hold (it holds ${describeKeyring(ring)}): add that key to RELAVIUM_MASTER_KEYS`,
          "unknown_master"
        )
      )
}

/** A data key in the clear, or a typed refusal. */
export const openDataKey = (ring: MasterKeyring, orgId: string, row: DataKeyRow): Effect.Effect<Envelope.DataKey, KeyStoreError> =>
  Effect.flatMap(masterFor(ring, orgId, row), (master) => {
    const opened = Envelope.unwrapDataKey(master, orgId, row.version, { nonce: row.nonce, ciphertext: row.wrapped })
    if (opened.ok) return Effect.succeed(opened.value)
    return Effect.fail(
      opened.reason === "wrong_org"
        ? refused(`the data key (version ${row.version}) stored for org ${orgId} was wrapped for another organisation (the row was copied or moved): rotate the org's keys with \`relavium keys rotate ${orgId}\` after restoring its own row`, "wrong_org")
        : refused(`the data key (version ${row.version}) of org ${orgId} does not unwrap under master key ${describeMasterKey(master)}: it was altered in the database`, "tampered")
    )
  })

/**
 * A secret in the clear, or a typed refusal. `dataKeys` gives the org's data key rows by
 * version (legacy rows need none).
 */
export const openRow = (
  ring: MasterKeyring,
  orgId: string,
  row: SecretRow,
  dataKey: (version: number) => Effect.Effect<Envelope.DataKey | undefined, KeyStoreError>
): Effect.Effect<Redacted.Redacted<string>, KeyStoreError> =>
  Effect.gen(function* () {
    const { provider } = row
    const sealed = { nonce: row.nonce, ciphertext: row.ciphertext }
    const wrongOrg = () =>
      refused(`the stored key for ${provider} was sealed for another organisation (the row was copied or moved): set it again`, "wrong_org")
    const tampered = () => refused(`the stored key for ${provider} does not decrypt (it was altered in the database); set it again`, "tampered")
    if (row.data_key_version === null) {
      const master = findMasterKey(ring, row.master_key_id)
      if (master === undefined) {
        return yield* refused(
          `the stored key for ${provider} was sealed under master key ${row.master_key_id}, which this process does not hold (it holds ${describeKeyring(ring)}): give every api and worker process the same master keys (RELAVIUM_MASTER_KEYS)`,
          "unknown_master"
        )
      }
      const opened = Envelope.openLegacy(master, orgId, provider, sealed)
      if (opened.ok) return opened.value
      return yield* tampered()
    }
    const version = row.data_key_version
    // Checked first: a row copied from another org names a data key of that org's, not of this one.
    if (Envelope.sealedForAnotherOrg(orgId, sealed)) {
      return yield* wrongOrg()
    }
    const key = yield* dataKey(version)
    if (key === undefined) {
      return yield* refused(`the stored key for ${provider} refers to data key version ${version}, which org ${orgId} does not have: set it again`, "tampered")
    }
    const opened = Envelope.openSecret(key, orgId, provider, version, sealed)
    if (opened.ok) return opened.value
    return yield* (opened.reason === "wrong_org" ? wrongOrg() : tampered())
  })

/** The org's current data key (the newest not retired), locked against rotation until the transaction ends. */
export const currentDataKey = (sql: SqlClient.SqlClient, orgId: string, lock: "share" | "update") =>
  Effect.map(
    sql<DataKeyRow>`SELECT version, master_key_id, nonce, wrapped, retired_at FROM org_data_keys
      WHERE org_id = ${orgId} AND retired_at IS NULL ORDER BY version DESC LIMIT 1 ${lockFor(sql, lock)}`,
    (rows) => Option.fromNullable(rows[0])
  )

/** Stores a new data key of `version`, wrapped under the current master; returns it with its row. */
export const insertDataKey = (sql: SqlClient.SqlClient, ring: MasterKeyring, orgId: string, version: number, onConflict: "ignore" | "fail") =>
  Effect.gen(function* () {
    const key = Envelope.newDataKey()
    const wrapped = Envelope.wrapDataKey(ring.current, orgId, version, key)
    const row = { org_id: orgId, version, master_key_id: ring.current.id, nonce: wrapped.nonce, wrapped: wrapped.ciphertext, created_at: now() }
    const inserted = yield* (onConflict === "ignore"
      ? sql<{ version: number }>`INSERT INTO org_data_keys ${sql.insert(row)} ON CONFLICT (org_id, version) DO NOTHING RETURNING version`
      : sql<{ version: number }>`INSERT INTO org_data_keys ${sql.insert(row)} RETURNING version`)
    return inserted.length > 0 ? Option.some({ key, version }) : Option.none()
  })

/** The org's current data key in the clear, made (version 1) when the org has none yet. */
export const ensureDataKey = (sql: SqlClient.SqlClient, ring: MasterKeyring, orgId: string) =>
  Effect.gen(function* () {
    const found = yield* currentDataKey(sql, orgId, "share")
    if (Option.isSome(found)) return { key: yield* openDataKey(ring, orgId, found.value), version: found.value.version }
    const made = yield* insertDataKey(sql, ring, orgId, 1, "ignore")
    if (Option.isSome(made)) return made.value
    // Another writer made it first: use theirs.
    const theirs = yield* currentDataKey(sql, orgId, "share")
    if (Option.isNone(theirs)) return yield* new KeyStoreError({ message: `org ${orgId} has only retired data keys: run \`relavium keys rotate ${orgId}\`` })
    return { key: yield* openDataKey(ring, orgId, theirs.value), version: theirs.value.version }
  })

/** Seals `secret` under the data key and writes the row (insert or replace). */
export const writeSecret = (
  sql: SqlClient.SqlClient,
  orgId: string,
  provider: string,
  data: { readonly key: Envelope.DataKey; readonly version: number },
  secret: Redacted.Redacted<string>
) => {
  const sealed = Envelope.sealSecret(data.key, orgId, provider, data.version, secret)
  const at = now()
  return sql`INSERT INTO provider_keys ${sql.insert({
    org_id: orgId,
    provider,
    master_key_id: dataKeyMarker(data.version),
    nonce: sealed.nonce,
    ciphertext: sealed.ciphertext,
    data_key_version: data.version,
    created_at: at,
    updated_at: at
  })} ON CONFLICT (org_id, provider) DO UPDATE SET master_key_id = excluded.master_key_id, nonce = excluded.nonce,
    ciphertext = excluded.ciphertext, data_key_version = excluded.data_key_version, updated_at = excluded.updated_at`
}

interface JoinedRow extends SecretRow {
  readonly dk_version: number | null
  readonly dk_master_key_id: string | null
  readonly dk_nonce: string | null
  readonly dk_wrapped: string | null
  readonly dk_retired_at: string | null
}

/** The key store on the `SqlClient` provided (migrated: see `Database`), for `CurrentOrg`. */
export const make = (options: EncryptedOptions): Effect.Effect<KeyStore["Type"], KeyStoreError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const ring = yield* masterKeyring(options)
    const sql = yield* SqlClient.SqlClient
    const database = Database.describeDatabase(sql)
    const failed = (what: string) => (cause: SqlError) =>
      new KeyStoreError({ message: `${database}: ${what} failed: ${Database.describeCause(cause)}` })
    /** Runs `f` for the current org in one transaction; SQL failures become a `KeyStoreError` saying what failed. */
    const forCurrentOrg = <A>(what: string, f: (orgId: string) => Effect.Effect<A, KeyStoreError | SqlError>) =>
      Effect.flatMap(CurrentOrg, ({ orgId }) =>
        inOrg(sql, orgId, f(orgId)).pipe(
          Effect.catchTag("SqlError", (cause) => Effect.fail(failed(what)(cause)))
        )
      )

    return KeyStore.of({
      get: (provider) =>
        forCurrentOrg(`reading the key for ${provider}`, (orgId) =>
          Effect.gen(function* () {
            // One statement: the secret and its data key from the same snapshot, so a rotation
            // committing meanwhile is seen entirely or not at all.
            const rows = yield* sql<JoinedRow>`SELECT p.provider, p.master_key_id, p.nonce, p.ciphertext, p.data_key_version,
                d.version AS dk_version, d.master_key_id AS dk_master_key_id, d.nonce AS dk_nonce, d.wrapped AS dk_wrapped,
                d.retired_at AS dk_retired_at
              FROM provider_keys p LEFT JOIN org_data_keys d ON d.org_id = p.org_id AND d.version = p.data_key_version
              WHERE p.org_id = ${orgId} AND p.provider = ${provider}`
            const row = rows[0]
            if (row === undefined) return Option.none()
            const key = yield* openRow(ring, orgId, row, () =>
              row.dk_version === null
                ? Effect.succeed(undefined)
                : openDataKey(ring, orgId, {
                    version: row.dk_version,
                    master_key_id: row.dk_master_key_id!,
                    nonce: row.dk_nonce!,
                    wrapped: row.dk_wrapped!,
                    retired_at: row.dk_retired_at
                  })
            )
            return Option.some(key)
          })
        ),
      set: (provider, key) =>
        Effect.zipRight(
          checkKeyEntry(provider, key),
          forCurrentOrg(`storing the key for ${provider}`, (orgId) =>
            Effect.flatMap(ensureDataKey(sql, ring, orgId), (data) => writeSecret(sql, orgId, provider, data, key))
          )
        ).pipe(Effect.asVoid),
      remove: (provider) =>
        forCurrentOrg(`removing the key for ${provider}`, (orgId) =>
          Effect.map(
            sql<{ provider: string }>`DELETE FROM provider_keys WHERE org_id = ${orgId} AND provider = ${provider} RETURNING provider`,
            (rows) => rows.length > 0
          )
        ),
      list: forCurrentOrg("listing keys", (orgId) =>
        Effect.map(
          sql<{ provider: string }>`SELECT provider FROM provider_keys WHERE org_id = ${orgId} ORDER BY provider`,
          (rows) => rows.map((r) => r.provider)
        )
      )
    })
  })

/**
 * `KeyStore` under envelope encryption in Postgres (plain SQL: it runs on any migrated `SqlClient`).
 * Fails to build, naming the variable, when the master keys are missing or malformed.
 */
export const layerPgEncrypted = (options: EncryptedOptions): Layer.Layer<KeyStore, KeyStoreError, SqlClient.SqlClient> =>
  Layer.effect(KeyStore, make(options))

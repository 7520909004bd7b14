/**
 * Rotation of the cloud key store's keys (see `SqlKeyStore`), with nothing re-encrypted by hand.
 * Both run as the operator (a Postgres role that bypasses row-level security), each org in a
 * transaction of its own that locks the org's data keys, so readers see either the state
 * before or the state after, never a gap; both are safe to run again.
 *
 * - `rotateMaster`: with the new master key first in `RELAVIUM_MASTER_KEYS` and the old one
 *   still listed, re-wraps every data key of every org (retired ones too) under the new master
 *   and re-seals rows still sealed directly under a master key (written before data keys)
 *   under their org's data key. Afterwards the old master key can be dropped from the list.
 * - `rotateOrg`: issues a new data key version for one org, re-seals every secret of the org
 *   under it and retires the older versions, in one transaction.
 *
 * Reports hold counts and ids, never a value.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import { KeyStoreError } from "@relavium/ports"
import * as Database from "./Database.js"
import type * as Envelope from "./Envelope.js"
import * as Env from "./Envelope.js"
import { type MasterKeyring, masterKeyring, type MasterKeySettings } from "./MasterKeys.js"
import {
  type DataKeyRow,
  ensureDataKey,
  inOrg,
  insertDataKey,
  openDataKey,
  openRow,
  type SecretRow,
  writeSecret
} from "./SqlKeyStore.js"

export interface RotateMasterReport {
  /** The master key everything is now wrapped under: its id and label. */
  readonly masterKeyId: string
  readonly masterKeyLabel: string
  /** Orgs visited (every org with a data key or a row sealed directly under a master key). */
  readonly orgs: number
  /** Data keys re-wrapped under the current master key. */
  readonly rewrapped: number
  /** Data keys already wrapped under it (left as they were). */
  readonly alreadyCurrent: number
  /** Rows sealed directly under a master key, now re-sealed under their org's data key. */
  readonly legacyResealed: number
}

export interface RotateOrgReport {
  readonly orgId: string
  /** The data key version the org's secrets are now sealed under. */
  readonly version: number
  /** The versions retired by this rotation. */
  readonly retired: ReadonlyArray<number>
  /** Secrets re-sealed under the new version (of which `legacy` were sealed directly under a master key). */
  readonly resealed: number
  readonly legacy: number
}

const now = () => new Date().toISOString()

const lockRows = (sql: SqlClient.SqlClient) => sql.onDialectOrElse({ pg: () => sql.literal("FOR UPDATE"), orElse: () => sql.literal("") })

const orgDataKeys = (sql: SqlClient.SqlClient, orgId: string) =>
  sql<DataKeyRow>`SELECT version, master_key_id, nonce, wrapped, retired_at FROM org_data_keys
    WHERE org_id = ${orgId} ORDER BY version ${lockRows(sql)}`

/** Data keys in the clear by version, each unwrapped once, from `rows`. */
const dataKeyCache = (ring: MasterKeyring, orgId: string, rows: ReadonlyArray<DataKeyRow>) => {
  const opened = new Map<number, Envelope.DataKey>()
  return (version: number): Effect.Effect<Envelope.DataKey | undefined, KeyStoreError> => {
    const cached = opened.get(version)
    if (cached !== undefined) return Effect.succeed(cached)
    const row = rows.find((r) => r.version === version)
    if (row === undefined) return Effect.succeed(undefined)
    return Effect.tap(openDataKey(ring, orgId, row), (key) => Effect.sync(() => opened.set(version, key)))
  }
}

const withDatabase = <A>(what: string, effect: Effect.Effect<A, KeyStoreError | SqlError, SqlClient.SqlClient>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    effect.pipe(
      Effect.catchTag("SqlError", (cause) =>
        Effect.fail(new KeyStoreError({ message: `${Database.describeDatabase(sql)}: ${what} failed: ${Database.describeCause(cause)}` }))
      )
    )
  )

/** Re-wraps every org's data keys under the current master key (the first of `RELAVIUM_MASTER_KEYS`). */
export const rotateMaster = (options: MasterKeySettings): Effect.Effect<RotateMasterReport, KeyStoreError, SqlClient.SqlClient> =>
  withDatabase(
    "rotating the master key",
    Effect.gen(function* () {
      const ring = yield* masterKeyring(options)
      const sql = yield* SqlClient.SqlClient
      const orgs = yield* sql<{ org_id: string }>`SELECT org_id FROM org_data_keys
        UNION SELECT org_id FROM provider_keys WHERE data_key_version IS NULL ORDER BY org_id`
      let rewrapped = 0
      let alreadyCurrent = 0
      let legacyResealed = 0
      for (const { org_id: orgId } of orgs) {
        const counts = yield* inOrg(
          sql,
          orgId,
          Effect.gen(function* () {
            let moved = 0
            let kept = 0
            for (const row of yield* orgDataKeys(sql, orgId)) {
              if (row.master_key_id === ring.current.id) {
                kept++
                continue
              }
              const key = yield* openDataKey(ring, orgId, row)
              const wrapped = Env.wrapDataKey(ring.current, orgId, row.version, key)
              yield* sql`UPDATE org_data_keys SET master_key_id = ${ring.current.id}, nonce = ${wrapped.nonce}, wrapped = ${wrapped.ciphertext}
                WHERE org_id = ${orgId} AND version = ${row.version}`
              moved++
            }
            const legacy = yield* sql<SecretRow>`SELECT provider, master_key_id, nonce, ciphertext, data_key_version FROM provider_keys
              WHERE org_id = ${orgId} AND data_key_version IS NULL ORDER BY provider ${lockRows(sql)}`
            if (legacy.length > 0) {
              const data = yield* ensureDataKey(sql, ring, orgId)
              for (const row of legacy) {
                const secret = yield* openRow(ring, orgId, row, () => Effect.succeed(undefined))
                yield* writeSecret(sql, orgId, row.provider, data, secret)
              }
            }
            return { moved, kept, legacy: legacy.length }
          })
        )
        rewrapped += counts.moved
        alreadyCurrent += counts.kept
        legacyResealed += counts.legacy
      }
      return {
        masterKeyId: ring.current.id,
        masterKeyLabel: ring.current.label,
        orgs: orgs.length,
        rewrapped,
        alreadyCurrent,
        legacyResealed
      }
    })
  )

/** Issues a new data key version for `orgId`, re-seals the org's secrets under it and retires the older versions. */
export const rotateOrg = (options: MasterKeySettings, orgId: string): Effect.Effect<RotateOrgReport, KeyStoreError, SqlClient.SqlClient> =>
  withDatabase(
    `rotating the data key of org ${orgId}`,
    Effect.gen(function* () {
      const ring = yield* masterKeyring(options)
      const sql = yield* SqlClient.SqlClient
      return yield* inOrg(
        sql,
        orgId,
        Effect.gen(function* () {
          // Locks the org's data keys first: a concurrent `set` (which locks the current one
          // for share) finishes before, or starts after, this rotation.
          const keys = yield* orgDataKeys(sql, orgId)
          const secrets = yield* sql<SecretRow>`SELECT provider, master_key_id, nonce, ciphertext, data_key_version FROM provider_keys
            WHERE org_id = ${orgId} ORDER BY provider ${lockRows(sql)}`
          if (keys.length === 0 && secrets.length === 0) {
            return yield* new KeyStoreError({ message: `org ${orgId} has no stored keys: nothing to rotate (check the org id)` })
          }
          const dataKeys = dataKeyCache(ring, orgId, keys)
          const opened = yield* Effect.forEach(secrets, (row) => Effect.map(openRow(ring, orgId, row, dataKeys), (secret) => ({ row, secret })))
          const version = Math.max(0, ...keys.map((k) => k.version)) + 1
          const made = yield* insertDataKey(sql, ring, orgId, version, "fail")
          const data = Option.getOrThrow(made)
          for (const { row, secret } of opened) yield* writeSecret(sql, orgId, row.provider, data, secret)
          const retired = keys.filter((k) => k.retired_at === null).map((k) => k.version)
          if (retired.length > 0) {
            yield* sql`UPDATE org_data_keys SET retired_at = ${now()} WHERE org_id = ${orgId} AND version < ${version} AND retired_at IS NULL`
          }
          return {
            orgId,
            version,
            retired,
            resealed: opened.length,
            legacy: secrets.filter((row) => row.data_key_version === null).length
          }
        })
      )
    })
  )

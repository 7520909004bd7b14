/**
 * The cloud `KeyStore`: provider API keys in the `provider_keys` table, each
 * sealed with AES-256-GCM under a master key that never touches the database
 * (`RELAVIUM_MASTER_KEY` in the api and worker processes). Every write draws a
 * random 96-bit nonce; the org and the provider are bound in as additional
 * data, so a row copied onto another provider does not open; the id of the
 * master key that sealed a row is stored beside it, so a process holding
 * another master key says so instead of returning garbage. `list` returns
 * provider names; no value is ever logged or put in an error.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Either, Layer, Option, Redacted } from "effect"
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto"
import { checkKeyEntry, KeyStore, KeyStoreError } from "@relavium/ports"
import * as Database from "./Database.js"

/** A parsed master key: 32 bytes, and the id rows record. */
export interface MasterKey {
  readonly id: string
  readonly bytes: Redacted.Redacted<Uint8Array>
}

export const masterKeyHelp = "32 random bytes in base64 or hex (make one with `openssl rand -base64 32`)"

/** Reads a master key given as base64 (or base64url) or hex; the value is never echoed. */
export const parseMasterKey = (value: Redacted.Redacted<string>, name = "RELAVIUM_MASTER_KEY"): Either.Either<MasterKey, KeyStoreError> => {
  const text = Redacted.value(value).trim()
  const bytes = /^[0-9a-fA-F]{64}$/.test(text)
    ? Buffer.from(text, "hex")
    : /^[A-Za-z0-9+/_-]{42,44}={0,2}$/.test(text)
      ? Buffer.from(text.replaceAll("-", "+").replaceAll("_", "/"), "base64")
      : undefined
  if (bytes === undefined || bytes.length !== 32) {
    return Either.left(new KeyStoreError({ message: `${name} must be ${masterKeyHelp}` }))
  }
  const id = createHash("sha256").update("relavium master key id\u0000").update(bytes).digest("hex").slice(0, 16)
  return Either.right({ id, bytes: Redacted.make(new Uint8Array(bytes)) })
}


const additionalData = (orgId: string, provider: string) => Buffer.from(`relavium provider key\u0000${orgId}\u0000${provider}`, "utf8")

interface Sealed {
  readonly nonce: string
  readonly ciphertext: string
}

/** AES-256-GCM with a fresh nonce; the ciphertext carries the 16-byte tag at its end. */
export const seal = (master: MasterKey, orgId: string, provider: string, key: Redacted.Redacted<string>): Sealed => {
  const nonce = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", Redacted.value(master.bytes), nonce)
  cipher.setAAD(additionalData(orgId, provider))
  const body = Buffer.concat([cipher.update(Redacted.value(key), "utf8"), cipher.final(), cipher.getAuthTag()])
  return { nonce: nonce.toString("base64"), ciphertext: body.toString("base64") }
}

/** The key, or `undefined` when the row does not open under this master key (tampered or foreign). */
export const open = (master: MasterKey, orgId: string, provider: string, sealed: Sealed): Redacted.Redacted<string> | undefined => {
  try {
    const body = Buffer.from(sealed.ciphertext, "base64")
    if (body.length < 16) return undefined
    const decipher = createDecipheriv("aes-256-gcm", Redacted.value(master.bytes), Buffer.from(sealed.nonce, "base64"))
    decipher.setAAD(additionalData(orgId, provider))
    decipher.setAuthTag(body.subarray(body.length - 16))
    return Redacted.make(Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString("utf8"))
  } catch {
    return undefined
  }
}

export interface EncryptedOptions {
  /** The master key (`RELAVIUM_MASTER_KEY`): {@link masterKeyHelp}. */
  readonly masterKey: Redacted.Redacted<string>
  /** The tenant whose keys these are (default `local`, the single-tenant deployment). */
  readonly orgId?: string | undefined
}

interface KeyRow {
  readonly master_key_id: string
  readonly nonce: string
  readonly ciphertext: string
}

/** The encrypted key store on the `SqlClient` provided (migrated: see `Database`). */
export const make = (options: EncryptedOptions): Effect.Effect<KeyStore["Type"], KeyStoreError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const master = yield* parseMasterKey(options.masterKey)
    const orgId = options.orgId ?? "local"
    const sql = yield* SqlClient.SqlClient
    const database = Database.describeDatabase(sql)
    const failed = (what: string) => (cause: unknown) =>
      new KeyStoreError({ message: `${database}: ${what} failed: ${Database.describeCause(cause)}` })

    return KeyStore.of({
      get: (provider) =>
        sql<KeyRow>`SELECT master_key_id, nonce, ciphertext FROM provider_keys WHERE org_id = ${orgId} AND provider = ${provider}`.pipe(
          Effect.mapError(failed(`reading the key for ${provider}`)),
          Effect.flatMap((rows) => {
            const row = rows[0]
            if (row === undefined) return Effect.succeed(Option.none())
            if (row.master_key_id !== master.id) {
              return Effect.fail(
                new KeyStoreError({
                  message: `the stored key for ${provider} was sealed with master key ${row.master_key_id}, but this process has master key ${master.id}: give every api and worker process the same RELAVIUM_MASTER_KEY`
                })
              )
            }
            const key = open(master, orgId, provider, row)
            return key === undefined
              ? Effect.fail(
                  new KeyStoreError({
                    message: `the stored key for ${provider} does not decrypt (it was altered in the database); set it again`
                  })
                )
              : Effect.succeed(Option.some(key))
          })
        ),
      set: (provider, key) =>
        Effect.gen(function* () {
          yield* checkKeyEntry(provider, key)
          const sealed = seal(master, orgId, provider, key)
          const now = new Date().toISOString()
          yield* sql`INSERT INTO provider_keys ${sql.insert({
            org_id: orgId,
            provider,
            master_key_id: master.id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            created_at: now,
            updated_at: now
          })} ON CONFLICT (org_id, provider) DO UPDATE SET master_key_id = excluded.master_key_id, nonce = excluded.nonce,
            ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`.pipe(Effect.mapError(failed(`storing the key for ${provider}`)))
        }),
      remove: (provider) =>
        sql<{ provider: string }>`DELETE FROM provider_keys WHERE org_id = ${orgId} AND provider = ${provider} RETURNING provider`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.mapError(failed(`removing the key for ${provider}`))
        ),
      list: sql<{ provider: string }>`SELECT provider FROM provider_keys WHERE org_id = ${orgId} ORDER BY provider`.pipe(
        Effect.map((rows) => rows.map((r) => r.provider)),
        Effect.mapError(failed("listing keys"))
      )
    })
  })

/**
 * `KeyStore` as AES-256-GCM rows in Postgres (plain SQL: it runs on any migrated `SqlClient`).
 * Fails to build, naming the variable, when the master key is malformed.
 */
export const layerPgEncrypted = (options: EncryptedOptions): Layer.Layer<KeyStore, KeyStoreError, SqlClient.SqlClient> =>
  Layer.effect(KeyStore, make(options))

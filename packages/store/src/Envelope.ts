/**
 * The cryptography of the cloud key store (envelope encryption, all AES-256-GCM with a fresh
 * random 96-bit nonce per seal and a 16-byte tag):
 *
 * - an org's **data key** (32 random bytes) is wrapped under a master key; the additional data
 *   binds the org id, the data key's version and the master key's id;
 * - a provider **secret** is sealed under the org's data key; the additional data binds the org
 *   id, the provider and the data key's version;
 * - **legacy** rows (written before data keys existed) were sealed directly under the master
 *   key with the org and provider as additional data; they still open, and are re-sealed under
 *   a data key by the next write or rotation.
 *
 * Wrapped keys and secrets are stored as base64 of `org tag (8 bytes) ‖ ciphertext ‖ tag`; the
 * org tag (a hash of the org id the value was sealed for) is what tells a value copied from
 * another org (`wrong_org`) from an altered one (`tampered`). It is authenticated through the
 * additional data, which binds the org id itself.
 */
import { Redacted } from "effect"
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto"
import type { MasterKey } from "./MasterKeys.js"

/** A data key in the clear: only ever held in memory, for one operation. */
export type DataKey = Redacted.Redacted<Uint8Array>

export interface Sealed {
  readonly nonce: string
  /** base64 of the org tag, the ciphertext and the GCM tag (legacy: no org tag). */
  readonly ciphertext: string
}

export type Opened<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly reason: "tampered" | "wrong_org" }

const TAG = 16
const ORG_TAG = 8

const orgTag = (orgId: string): Buffer => createHash("sha256").update("relavium org\u0000").update(orgId, "utf8").digest().subarray(0, ORG_TAG)

const dataKeyData = (orgId: string, version: number, masterKeyId: string) =>
  Buffer.from(`relavium data key\u0000${orgId}\u0000${version}\u0000${masterKeyId}`, "utf8")

const secretData = (orgId: string, provider: string, version: number) =>
  Buffer.from(`relavium provider key v2\u0000${orgId}\u0000${provider}\u0000${version}`, "utf8")

const legacyData = (orgId: string, provider: string) => Buffer.from(`relavium provider key\u0000${orgId}\u0000${provider}`, "utf8")

const encrypt = (key: Uint8Array, aad: Buffer, plain: Uint8Array, prefix: Buffer): Sealed => {
  const nonce = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", key, nonce)
  cipher.setAAD(aad)
  const body = Buffer.concat([prefix, cipher.update(plain), cipher.final(), cipher.getAuthTag()])
  return { nonce: nonce.toString("base64"), ciphertext: body.toString("base64") }
}

const decrypt = (key: Uint8Array, aad: Buffer, nonce: string, body: Buffer): Buffer | undefined => {
  try {
    if (body.length < TAG) return undefined
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(nonce, "base64"))
    decipher.setAAD(aad)
    decipher.setAuthTag(body.subarray(body.length - TAG))
    return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG)), decipher.final()])
  } catch {
    return undefined
  }
}

/** Opens an org-tagged value: `wrong_org` when it was sealed for another org, `tampered` when it does not authenticate. */
const openTagged = (key: Uint8Array, orgId: string, aad: Buffer, sealed: Sealed): Opened<Buffer> => {
  const body = Buffer.from(sealed.ciphertext, "base64")
  if (body.length < ORG_TAG + TAG) return { ok: false, reason: "tampered" }
  if (!body.subarray(0, ORG_TAG).equals(orgTag(orgId))) return { ok: false, reason: "wrong_org" }
  const plain = decrypt(key, aad, sealed.nonce, body.subarray(ORG_TAG))
  return plain === undefined ? { ok: false, reason: "tampered" } : { ok: true, value: plain }
}

/** Whether an org-tagged value says it was sealed for another org than `orgId` (copied or moved between orgs). */
export const sealedForAnotherOrg = (orgId: string, sealed: Sealed): boolean => {
  const body = Buffer.from(sealed.ciphertext, "base64")
  return body.length >= ORG_TAG + TAG && !body.subarray(0, ORG_TAG).equals(orgTag(orgId))
}

/** A new random data key. */
export const newDataKey = (): DataKey => Redacted.make(new Uint8Array(randomBytes(32)))

/** A data key wrapped under `master` for `orgId` at `version`. */
export const wrapDataKey = (master: MasterKey, orgId: string, version: number, dataKey: DataKey): Sealed =>
  encrypt(Redacted.value(master.bytes), dataKeyData(orgId, version, master.id), Redacted.value(dataKey), orgTag(orgId))

export const unwrapDataKey = (master: MasterKey, orgId: string, version: number, wrapped: Sealed): Opened<DataKey> => {
  const opened = openTagged(Redacted.value(master.bytes), orgId, dataKeyData(orgId, version, master.id), wrapped)
  if (!opened.ok) return opened
  return opened.value.length === 32 ? { ok: true, value: Redacted.make(new Uint8Array(opened.value)) } : { ok: false, reason: "tampered" }
}

/** A provider secret sealed under the org's data key of `version`. */
export const sealSecret = (dataKey: DataKey, orgId: string, provider: string, version: number, secret: Redacted.Redacted<string>): Sealed =>
  encrypt(Redacted.value(dataKey), secretData(orgId, provider, version), Buffer.from(Redacted.value(secret), "utf8"), orgTag(orgId))

export const openSecret = (dataKey: DataKey, orgId: string, provider: string, version: number, sealed: Sealed): Opened<Redacted.Redacted<string>> => {
  const opened = openTagged(Redacted.value(dataKey), orgId, secretData(orgId, provider, version), sealed)
  return opened.ok ? { ok: true, value: Redacted.make(opened.value.toString("utf8")) } : opened
}

/** A secret sealed directly under the master key, as rows were before data keys (kept for tests of the upgrade). */
export const sealLegacy = (master: MasterKey, orgId: string, provider: string, secret: Redacted.Redacted<string>): Sealed =>
  encrypt(Redacted.value(master.bytes), legacyData(orgId, provider), Buffer.from(Redacted.value(secret), "utf8"), Buffer.alloc(0))

/** Opens a legacy row; it carries no org tag, so anything that does not open is `tampered`. */
export const openLegacy = (master: MasterKey, orgId: string, provider: string, sealed: Sealed): Opened<Redacted.Redacted<string>> => {
  const plain = decrypt(Redacted.value(master.bytes), legacyData(orgId, provider), sealed.nonce, Buffer.from(sealed.ciphertext, "base64"))
  return plain === undefined ? { ok: false, reason: "tampered" } : { ok: true, value: Redacted.make(plain.toString("utf8")) }
}

/**
 * The master keys of the cloud key store: the keys that wrap each org's data keys (see
 * `Envelope` and `SqlKeyStore`). They never touch the database; a process gets them from
 * its environment, in one of two forms:
 *
 * - `RELAVIUM_MASTER_KEY`: one key, 32 random bytes in base64 (or base64url) or hex;
 * - `RELAVIUM_MASTER_KEYS`: an ordered list `label:key,label:key,…` (commas or whitespace
 *   between entries). The first key is the current one: new data keys are wrapped under it
 *   and `rotate-master` re-wraps everything under it. Every key in the list can unwrap. A
 *   label is 1–32 letters, digits, `.`, `_` or `-` and only names the key in messages.
 *
 * A key is identified in the database by its id: a hash of its bytes (16 hex characters),
 * never by its label, so relabelling a key changes nothing and a wrong key under a familiar
 * label is recognised as unknown. Values stay `Redacted`; no error ever echoes one.
 */
import { Either, Redacted } from "effect"
import { createHash } from "node:crypto"
import { KeyStoreError } from "@relavium/ports"

/** A parsed master key: 32 bytes, the id rows record, and the label messages show. */
export interface MasterKey {
  readonly id: string
  readonly label: string
  readonly bytes: Redacted.Redacted<Uint8Array>
}

/** The keys a process holds: the current one first. */
export interface MasterKeyring {
  readonly current: MasterKey
  readonly keys: ReadonlyArray<MasterKey>
}

/** Where a process's master keys come from: exactly one of the two variables. */
export interface MasterKeySettings {
  /** `RELAVIUM_MASTER_KEY`: one key. */
  readonly masterKey?: Redacted.Redacted<string> | undefined
  /** `RELAVIUM_MASTER_KEYS`: `label:key,label:key,…`, the current key first. */
  readonly masterKeys?: Redacted.Redacted<string> | undefined
}

export const masterKeyHelp = "32 random bytes in base64 or hex (make one with `openssl rand -base64 32`)"
export const masterKeysHelp =
  "a comma-separated list of label:key entries, the current key first (a label is 1-32 letters, digits, '.', '_' or '-'; a key is 32 random bytes in base64 or hex)"

const LABEL = /^[A-Za-z0-9._-]{1,32}$/

/** The id rows record for a master key: a hash of its bytes (the key cannot be recovered from it). */
const idOf = (bytes: Uint8Array): string =>
  createHash("sha256").update("relavium master key id\u0000").update(bytes).digest("hex").slice(0, 16)

/** Reads a master key given as base64 (or base64url) or hex; the value is never echoed. */
export const parseMasterKey = (
  value: Redacted.Redacted<string>,
  name = "RELAVIUM_MASTER_KEY",
  label = "master"
): Either.Either<MasterKey, KeyStoreError> => {
  const text = Redacted.value(value).trim()
  const bytes = /^[0-9a-fA-F]{64}$/.test(text)
    ? Buffer.from(text, "hex")
    : /^[A-Za-z0-9+/_-]{42,44}={0,2}$/.test(text)
      ? Buffer.from(text.replaceAll("-", "+").replaceAll("_", "/"), "base64")
      : undefined
  if (bytes === undefined || bytes.length !== 32) {
    return Either.left(new KeyStoreError({ message: `${name} must be ${masterKeyHelp}` }))
  }
  return Either.right({ id: idOf(bytes), label, bytes: Redacted.make(new Uint8Array(bytes)) })
}

/** Reads `RELAVIUM_MASTER_KEYS` ({@link masterKeysHelp}); errors name entries by position, never by content. */
export const parseMasterKeyList = (
  value: Redacted.Redacted<string>,
  name = "RELAVIUM_MASTER_KEYS"
): Either.Either<MasterKeyring, KeyStoreError> => {
  const fail = (message: string) => Either.left(new KeyStoreError({ message }))
  const entries = Redacted.value(value).split(/[\s,]+/).filter((entry) => entry !== "")
  if (entries.length === 0) return fail(`${name} is empty: it must be ${masterKeysHelp}`)
  const keys: Array<MasterKey> = []
  for (const [index, entry] of entries.entries()) {
    const where = `${name} entry ${index + 1}`
    const colon = entry.indexOf(":")
    if (colon < 0) return fail(`${where} has no label: write each entry as label:key (${masterKeysHelp})`)
    const label = entry.slice(0, colon)
    if (!LABEL.test(label)) return fail(`${where} has an invalid label: ${masterKeysHelp}`)
    const parsed = parseMasterKey(Redacted.make(entry.slice(colon + 1)), `${where} (${label})`, label)
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    const key = parsed.right
    const same = keys.findIndex((k) => k.id === key.id || k.label === key.label)
    if (same >= 0) {
      return fail(
        keys[same]!.id === key.id
          ? `${name} entries ${same + 1} and ${index + 1} are the same key`
          : `${name} entries ${same + 1} and ${index + 1} have the same label ${label}`
      )
    }
    keys.push(key)
  }
  return Either.right({ current: keys[0]!, keys })
}

/** The keyring of a process: from `RELAVIUM_MASTER_KEYS` or `RELAVIUM_MASTER_KEY`, not both. */
export const masterKeyring = (settings: MasterKeySettings): Either.Either<MasterKeyring, KeyStoreError> => {
  if (settings.masterKey !== undefined && settings.masterKeys !== undefined) {
    return Either.left(
      new KeyStoreError({
        message: "both RELAVIUM_MASTER_KEY and RELAVIUM_MASTER_KEYS are set: set only RELAVIUM_MASTER_KEYS (label:key,…, the current key first)"
      })
    )
  }
  if (settings.masterKeys !== undefined) return parseMasterKeyList(settings.masterKeys)
  if (settings.masterKey !== undefined) return Either.map(parseMasterKey(settings.masterKey), (key) => ({ current: key, keys: [key] }))
  return Either.left(new KeyStoreError({ message: `no master key: set RELAVIUM_MASTER_KEY (${masterKeyHelp}) or RELAVIUM_MASTER_KEYS (${masterKeysHelp})` }))
}

/** The key of this id, when the process holds it. */
export const findMasterKey = (ring: MasterKeyring, id: string): MasterKey | undefined => ring.keys.find((key) => key.id === id)

/** How messages show a key: its label and id. */
export const describeMasterKey = (key: MasterKey): string => `${key.label} (${key.id})`

/** How messages show what a process holds. */
export const describeKeyring = (ring: MasterKeyring): string => ring.keys.map(describeMasterKey).join(", ")

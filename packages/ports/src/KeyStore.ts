/**
 * Provider API keys. Values are `Redacted` from the moment they are read so a
 * key never prints in a log, event or payload.
 */
import { Context, Data, Effect, Layer, Option, Redacted, Ref } from "effect"

/**
 * Why a stored key does not open (the cloud key store's envelope, SqlKeyStore):
 * - `tampered`: the ciphertext, its nonce or its wrapped data key was altered (or a row
 *   refers to a data key the org does not have);
 * - `wrong_org`: the row was sealed for another organisation (copied or moved between orgs);
 * - `unknown_master`: it is wrapped under a master key this process does not hold.
 */
export type KeyStoreFailure = "tampered" | "wrong_org" | "unknown_master"

export class KeyStoreError extends Data.TaggedError("KeyStoreError")<{
  readonly message: string
  /** Set when a stored key exists but does not open; absent for every other failure. */
  readonly reason?: KeyStoreFailure | undefined
}> {}

const PROVIDER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/

/**
 * What every layer checks before it stores a key: a provider name (it becomes
 * a file key, a keychain account or an environment variable name) and a key
 * that is not blank (a blank key would read back as "no key" from some stores
 * and as an empty credential from others).
 */
export const checkKeyEntry = (provider: string, key: Redacted.Redacted<string>): Effect.Effect<void, KeyStoreError> =>
  !PROVIDER_NAME.test(provider)
    ? Effect.fail(new KeyStoreError({ message: `'${provider}' is not a provider name (lower-case letters, digits, '.', '_' and '-')` }))
    : Redacted.value(key).trim() === ""
      ? Effect.fail(new KeyStoreError({ message: `the key for ${provider} is empty; pass the provider's API key` }))
      : Effect.void

export class KeyStore extends Context.Tag("@relavium/ports/KeyStore")<
  KeyStore,
  {
    readonly get: (provider: string) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, KeyStoreError>
    readonly set: (provider: string, key: Redacted.Redacted<string>) => Effect.Effect<void, KeyStoreError>
    readonly remove: (provider: string) => Effect.Effect<boolean, KeyStoreError>
    /** Provider names that have a key; never the values. */
    readonly list: Effect.Effect<ReadonlyArray<string>, KeyStoreError>
  }
>() {
  /** Keys held in memory only, seeded from `initial`. */
  static readonly layerMemory = (initial: Readonly<Record<string, string>> = {}) =>
    Layer.effect(KeyStore, Effect.gen(function* () {
      const keys = yield* Ref.make(
        new Map(Object.entries(initial).map(([provider, value]) => [provider, Redacted.make(value)] as const))
      )
      return KeyStore.of({
        get: (provider) => Ref.get(keys).pipe(Effect.map((m) => Option.fromNullable(m.get(provider)))),
        set: (provider, key) => Effect.zipRight(checkKeyEntry(provider, key), Ref.update(keys, (m) => new Map(m).set(provider, key))),
        remove: (provider) =>
          Ref.modify(keys, (m) => {
            const next = new Map(m)
            const had = next.delete(provider)
            return [had, next] as const
          }),
        list: Ref.get(keys).pipe(Effect.map((m) => [...m.keys()].sort()))
      })
    }))
}

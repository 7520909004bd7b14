/**
 * Provider API keys. Values are `Redacted` from the moment they are read so a
 * key never prints in a log, event or payload.
 */
import { Context, Data, Effect, Layer, Option, Redacted, Ref } from "effect"

export class KeyStoreError extends Data.TaggedError("KeyStoreError")<{
  readonly message: string
}> {}

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
        set: (provider, key) => Ref.update(keys, (m) => new Map(m).set(provider, key)),
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

/**
 * The contract every `KeyStore` layer must meet (memory; keychain, key file and
 * environment in packages/keys; encrypted SQL in packages/store). `make(seed)`
 * gives a fresh store holding the keys in `seed` (provider → key); each test
 * provides its own. A read-only store (the environment) runs the reading half.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Inspectable, type Layer, Option, Redacted } from "effect"
import { KeyStore, type KeyStoreError } from "../KeyStore.js"

export interface KeyStoreCapabilities {
  /** `set` and `remove` fail with a hint instead of writing (keys come from elsewhere). */
  readonly readOnly?: boolean | undefined
}

/** Keys that look real enough to be noticed if one leaks into a message. */
const secret = (label: string) => `sk-contract-${label}-${crypto.randomUUID().replaceAll("-", "")}`

const errorOf = <A>(effect: Effect.Effect<A, KeyStoreError>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
    if (Option.isNone(error)) assert.fail(`expected a KeyStoreError, got ${String(exit)}`)
    return Option.getOrThrow(error)
  })

const valueOf = (key: Option.Option<Redacted.Redacted<string>>) => Option.map(key, Redacted.value)

export const keyStoreContract = (
  name: string,
  make: (seed: Readonly<Record<string, string>>) => Layer.Layer<KeyStore, unknown>,
  capabilities: KeyStoreCapabilities = {}
) =>
  describe(`KeyStore contract: ${name}`, () => {
    it.effect("reads back the key of a provider, and none for a provider without one", () => {
      const anthropic = secret("a")
      const openai = secret("o")
      return Effect.gen(function* () {
        const keys = yield* KeyStore
        assert.deepStrictEqual(valueOf(yield* keys.get("anthropic")), Option.some(anthropic))
        assert.deepStrictEqual(valueOf(yield* keys.get("openai")), Option.some(openai))
        assert.isTrue(Option.isNone(yield* keys.get("gemini")))
      }).pipe(Effect.provide(make({ anthropic, openai })))
    })

    it.effect("lists the providers that have a key, sorted, and never a key", () => {
      const seed = { openai: secret("o"), anthropic: secret("a") }
      return Effect.gen(function* () {
        const keys = yield* KeyStore
        const listed = yield* keys.list
        assert.deepStrictEqual(listed, ["anthropic", "openai"])
        for (const key of Object.values(seed)) assert.notInclude(JSON.stringify(listed), key)
      }).pipe(Effect.provide(make(seed)))
    })

    it.effect("a key read back prints as redacted, in strings, JSON and inspection", () => {
      const key = secret("print")
      return Effect.gen(function* () {
        const got = yield* (yield* KeyStore).get("anthropic")
        assert.isTrue(Option.isSome(got))
        for (const shown of [String(got), JSON.stringify(got), Inspectable.format(got), `${Option.getOrThrow(got)}`]) {
          assert.notInclude(shown, key)
        }
      }).pipe(Effect.provide(make({ anthropic: key })))
    })

    if (capabilities.readOnly === true) {
      it.effect("refuses to write, saying where keys come from, and keeps the keys it has", () => {
        const key = secret("ro")
        return Effect.gen(function* () {
          const keys = yield* KeyStore
          const refused = yield* errorOf(keys.set("anthropic", Redacted.make(secret("new"))))
          assert.strictEqual(refused._tag, "KeyStoreError")
          assert.include(refused.message, "anthropic".toUpperCase())
          assert.strictEqual((yield* errorOf(keys.remove("anthropic")))._tag, "KeyStoreError")
          assert.deepStrictEqual(valueOf(yield* keys.get("anthropic")), Option.some(key))
        }).pipe(Effect.provide(make({ anthropic: key })))
      })
      return
    }

    it.effect("sets, replaces and removes a key; removing a missing key says so", () => {
      const first = secret("1")
      const second = secret("2")
      return Effect.gen(function* () {
        const keys = yield* KeyStore
        assert.deepStrictEqual(yield* keys.list, [])
        yield* keys.set("deepseek", Redacted.make(first))
        assert.deepStrictEqual(valueOf(yield* keys.get("deepseek")), Option.some(first))
        yield* keys.set("deepseek", Redacted.make(second))
        assert.deepStrictEqual(valueOf(yield* keys.get("deepseek")), Option.some(second))
        assert.deepStrictEqual(yield* keys.list, ["deepseek"])
        assert.isTrue(yield* keys.remove("deepseek"))
        assert.isTrue(Option.isNone(yield* keys.get("deepseek")))
        assert.deepStrictEqual(yield* keys.list, [])
        assert.isFalse(yield* keys.remove("deepseek"))
      }).pipe(Effect.provide(make({})))
    })

    it.effect("keeps each provider's key apart", () => {
      const a = secret("a")
      const o = secret("o")
      return Effect.gen(function* () {
        const keys = yield* KeyStore
        yield* keys.set("openai", Redacted.make(o))
        assert.deepStrictEqual(valueOf(yield* keys.get("anthropic")), Option.some(a))
        assert.deepStrictEqual(valueOf(yield* keys.get("openai")), Option.some(o))
        assert.isTrue(yield* keys.remove("anthropic"))
        assert.deepStrictEqual(valueOf(yield* keys.get("openai")), Option.some(o))
        assert.deepStrictEqual(yield* keys.list, ["openai"])
      }).pipe(Effect.provide(make({ anthropic: a })))
    })

    it.effect("lists a provider it was never told about once it has a key", () =>
      Effect.gen(function* () {
        const keys = yield* KeyStore
        yield* keys.set("acme-llm", Redacted.make(secret("acme")))
        assert.deepStrictEqual(yield* keys.list, ["acme-llm"])
        assert.isTrue(yield* keys.remove("acme-llm"))
        assert.deepStrictEqual(yield* keys.list, [])
      }).pipe(Effect.provide(make({}))))

    it.effect("refuses a name that is not a provider name and a blank key, storing nothing, echoing no key", () =>
      Effect.gen(function* () {
        const keys = yield* KeyStore
        const key = secret("bad")
        for (const bad of ["../../etc/passwd", "Anthropic", "has space", "", "__proto__"]) {
          const error = yield* errorOf(keys.set(bad, Redacted.make(key)))
          assert.strictEqual(error._tag, "KeyStoreError")
          assert.include(error.message, "not a provider name")
          assert.notInclude(error.message, key)
        }
        const blank = yield* errorOf(keys.set("openai", Redacted.make("  ")))
        assert.include(blank.message, "empty")
        assert.deepStrictEqual(yield* keys.list, [])
        assert.isTrue(Option.isNone(yield* keys.get("openai")))
      }).pipe(Effect.provide(make({}))))
  })

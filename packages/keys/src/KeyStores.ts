/**
 * Local layers of the `KeyStore` tag: the OS keychain (macOS Keychain,
 * Windows Credential Manager, the Secret Service on Linux) through
 * @napi-rs/keyring, a 0600 JSON file in the data directory where no keychain
 * service runs (headless Linux, CI), and environment variables
 * `RELAVIUM_<PROVIDER>_API_KEY` layered over either.
 *
 * Precedence when reading: an environment variable wins over a stored key, so
 * CI and one-off shells can override without touching the store. `set` and
 * `rm` change the store only; `list` returns names, never values.
 */
import { FileSystem } from "@effect/platform"
import { checkKeyEntry, KeyStore, KeyStoreError } from "@relavium/ports"
import { Config, Console, Effect, Layer, Option, Redacted } from "effect"
import * as path from "node:path"
import { createRequire } from "node:module"
import { dataDir as resolveDataDirEffect } from "./DataDir.js"

/** The keychain service name every entry is stored under; the account is the provider. */
export const KEYCHAIN_SERVICE = "relavium"

/** Providers `list` probes in the keychain (which cannot be enumerated everywhere). */
export const KNOWN_PROVIDERS: ReadonlyArray<string> = [
  "anthropic",
  "openai",
  "gemini",
  "deepseek",
  "openai-compatible",
  "openrouter",
  "ollama",
  "lmstudio",
  "vllm"
]

/** `openai-compatible` → `RELAVIUM_OPENAI_COMPATIBLE_API_KEY`. */
export const envVarFor = (provider: string): string =>
  `RELAVIUM_${provider.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_API_KEY`

/** How to give Relavium a key for `provider`, for error messages. */
export const howToSet = (provider: string): string =>
  `run \`relavium keys set ${provider}\` or set ${envVarFor(provider)}`

// ---------------------------------------------------------------------------
// Environment

/** A key from `RELAVIUM_<PROVIDER>_API_KEY`, read through `Config` (so a ConfigProvider can supply it). */
export const envKey = (provider: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>> =>
  Config.option(Config.redacted(envVarFor(provider))).pipe(
    Effect.map(Option.filter((value) => Redacted.value(value).trim() !== "")),
    Effect.orElseSucceed(() => Option.none())
  )

/**
 * Environment variables over another store: `get` prefers the variable,
 * `list` includes providers that only have a variable.
 */
export const withEnvironment = (store: KeyStore["Type"]): KeyStore["Type"] =>
  KeyStore.of({
    get: (provider) =>
      Effect.flatMap(envKey(provider), (fromEnv) => (Option.isSome(fromEnv) ? Effect.succeed(fromEnv) : store.get(provider))),
    set: store.set,
    remove: store.remove,
    list: Effect.gen(function* () {
      const stored = yield* store.list
      const fromEnv = yield* Effect.filter(KNOWN_PROVIDERS, (p) => Effect.map(envKey(p), Option.isSome))
      return [...new Set([...stored, ...fromEnv])].sort()
    })
  })

// ---------------------------------------------------------------------------
// File (0600)

const parseKeyFile = (text: string): Record<string, string> | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
  const keys: Record<string, string> = {}
  for (const [name, value] of Object.entries(parsed)) if (typeof value === "string") keys[name] = value
  return keys
}

/** The key file in a data directory. */
export const keyFilePath = (dir: string): string => path.join(dir, "keys.json")

/**
 * Keys in `<dataDir>/keys.json`, mode 0600 in a 0700 directory, written
 * whole to a temporary file and renamed so a crash never leaves half a file.
 */
export const makeFileStore = (dir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const file = keyFilePath(dir)
    const fail = (what: string) => (error: { readonly message: string }) =>
      new KeyStoreError({ message: `cannot ${what} the key file ${file}: ${error.message}` })

    const read = Effect.gen(function* () {
      const exists = yield* fs.exists(file).pipe(Effect.mapError(fail("read")))
      if (!exists) return {} as Record<string, string>
      const text = yield* fs.readFileString(file).pipe(Effect.mapError(fail("read")))
      const parsed = parseKeyFile(text)
      // Never echo the content: it holds keys.
      if (parsed === undefined) {
        return yield* new KeyStoreError({ message: `the key file ${file} is not valid JSON; fix or delete it` })
      }
      return parsed
    })

    const write = (keys: Record<string, string>) =>
      Effect.gen(function* () {
        yield* fs.makeDirectory(dir, { recursive: true, mode: 0o700 })
        const tmp = `${file}.${process.pid}.tmp`
        yield* fs.writeFileString(tmp, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 })
        yield* fs.chmod(tmp, 0o600)
        yield* fs.rename(tmp, file)
      }).pipe(Effect.mapError(fail("write")))

    return KeyStore.of({
      get: (provider) =>
        Effect.map(read, (keys) =>
          Object.hasOwn(keys, provider) ? Option.some(Redacted.make(keys[provider]!)) : Option.none()
        ),
      set: (provider, key) =>
        Effect.gen(function* () {
          yield* checkKeyEntry(provider, key)
          const keys = yield* read
          yield* write({ ...keys, [provider]: Redacted.value(key) })
        }),
      remove: (provider) =>
        Effect.gen(function* () {
          const keys = yield* read
          if (!Object.hasOwn(keys, provider)) return false
          const { [provider]: _removed, ...rest } = keys
          yield* write(rest)
          return true
        }),
      list: Effect.map(read, (keys) => Object.keys(keys).sort())
    })
  })

// ---------------------------------------------------------------------------
// OS keychain

/** The slice of @napi-rs/keyring this module uses; injectable for tests. */
export interface KeyringEntry {
  readonly getPassword: () => string | null
  readonly setPassword: (password: string) => void
  readonly deletePassword: () => boolean
}
export type KeyringBackend = (service: string, account: string) => KeyringEntry

/** @napi-rs/keyring, loaded lazily so a missing native build is a fallback, not a crash at import. */
export const napiKeyring: KeyringBackend = (service, account) => {
  const require = createRequire(import.meta.url)
  const { Entry } = require("@napi-rs/keyring") as typeof import("@napi-rs/keyring")
  // On Linux require the Secret Service: the kernel keyring forgets keys at logout.
  return new Entry(service, account, { linux: { store: "secret-service" } })
}

/** The keychain account listing the providers stored (a leading '.' is never a provider name). */
const INDEX_ACCOUNT = ".providers"

const parseIndex = (text: string | null): ReadonlyArray<string> => {
  if (text === null || text === "") return []
  try {
    const parsed: unknown = JSON.parse(text)
    return Array.isArray(parsed) ? parsed.filter((name): name is string => typeof name === "string") : []
  } catch {
    return []
  }
}

const keychainStore = (backend: KeyringBackend, service: string) => {
  const attempt = <A>(what: string, f: () => A) =>
    Effect.try({
      try: f,
      catch: (error) =>
        new KeyStoreError({ message: `the OS keychain could not ${what}: ${error instanceof Error ? error.message : String(error)}` })
    })
  const get = (provider: string) =>
    attempt("read a key", () => backend(service, provider).getPassword()).pipe(
      Effect.map((value) => (value === null || value === "" ? Option.none() : Option.some(Redacted.make(value))))
    )
  // A keychain cannot be enumerated everywhere, so the providers stored are
  // also named in an index entry (an account no provider name can take).
  const index = backend(service, INDEX_ACCOUNT)
  const indexed = attempt("read the key index", () => parseIndex(index.getPassword()))
  const updateIndex = (f: (names: ReadonlySet<string>) => ReadonlySet<string>) =>
    Effect.flatMap(indexed, (names) =>
      attempt("update the key index", () => index.setPassword(JSON.stringify([...f(new Set(names))].sort())))
    )
  return KeyStore.of({
    get,
    set: (provider, key) =>
      Effect.flatMap(checkKeyEntry(provider, key), () =>
        attempt("store the key", () => backend(service, provider).setPassword(Redacted.value(key))).pipe(
          Effect.zipRight(updateIndex((names) => new Set([...names, provider])))
        )
      ),
    remove: (provider) =>
      attempt("remove the key", () => backend(service, provider).deletePassword()).pipe(
        Effect.catchAll(() => Effect.succeed(false)),
        Effect.tap(() => updateIndex((names) => new Set([...names].filter((name) => name !== provider))).pipe(Effect.ignore))
      ),
    list: Effect.flatMap(indexed, (names) =>
      Effect.filter([...new Set([...KNOWN_PROVIDERS, ...names])].sort(), (provider) => Effect.map(get(provider), Option.isSome))
    )
  })
}

/** True when the keychain answers a read (a missing entry is an answer; "no service" is not). */
const keychainAvailable = (backend: KeyringBackend, service: string) =>
  Effect.try(() => backend(service, "relavium-probe").getPassword()).pipe(
    Effect.as(true),
    Effect.orElseSucceed(() => false)
  )

export interface KeychainOptions {
  /** Data directory for the fallback file (default: {@link dataDir}). */
  readonly dataDir?: string | undefined
  /** Keychain service name (default `relavium`). */
  readonly service?: string | undefined
  /** The keychain implementation (default @napi-rs/keyring). */
  readonly backend?: KeyringBackend | undefined
  /** Read `RELAVIUM_<PROVIDER>_API_KEY` first (default true). */
  readonly environment?: boolean | undefined
}

/**
 * The OS keychain, or — when no keychain service answers (detected by trying a
 * read) — the 0600 key file, with a one-line notice on stderr. Environment
 * variables win over either unless `environment: false`.
 */
export const layerKeychain = (options: KeychainOptions = {}): Layer.Layer<KeyStore, never, FileSystem.FileSystem> =>
  Layer.effect(
    KeyStore,
    Effect.gen(function* () {
      const service = options.service ?? KEYCHAIN_SERVICE
      const backend = options.backend ?? napiKeyring
      const useEnv = options.environment ?? true
      let store: KeyStore["Type"]
      if (yield* keychainAvailable(backend, service)) {
        store = keychainStore(backend, service)
      } else {
        const dir = options.dataDir ?? (yield* resolveDataDirEffect())
        yield* Console.error(
          `relavium: no OS keychain service is available; keys are stored in ${keyFilePath(dir)} (mode 0600)`
        )
        store = yield* makeFileStore(dir)
      }
      return useEnv ? withEnvironment(store) : store
    })
  )

/** The 0600 key file only (no keychain attempt), with environment variables on top unless disabled. */
export const layerFile = (
  options: { readonly dataDir?: string | undefined; readonly environment?: boolean | undefined } = {}
): Layer.Layer<KeyStore, never, FileSystem.FileSystem> =>
  Layer.effect(
    KeyStore,
    Effect.gen(function* () {
      const dir = options.dataDir ?? (yield* resolveDataDirEffect())
      const store = yield* makeFileStore(dir)
      return (options.environment ?? true) ? withEnvironment(store) : store
    })
  )

/** Environment variables only (read-only: `set`/`rm` fail with a hint). */
export const layerEnv: Layer.Layer<KeyStore> = Layer.succeed(
  KeyStore,
  KeyStore.of({
    get: envKey,
    set: (provider) =>
      Effect.fail(new KeyStoreError({ message: `keys come from the environment here; set ${envVarFor(provider)}` })),
    remove: (provider) =>
      Effect.fail(new KeyStoreError({ message: `keys come from the environment here; unset ${envVarFor(provider)}` })),
    list: Effect.filter(KNOWN_PROVIDERS, (p) => Effect.map(envKey(p), Option.isSome))
  })
)

/**
 * Every setting the `relavium` binary reads from its environment, read through
 * Effect `Config` here and nowhere else (a `ConfigProvider` can supply them in
 * tests). Flags win over these: commands give them to `Options.withFallbackConfig`
 * or pass the flag's value first.
 */
import { Config, Data, Effect, Option, Redacted } from "effect"
import { join } from "node:path"
import { DataDir, KeyStores } from "@relavium/keys"

const optionalText = (name: string) =>
  Config.option(Config.string(name)).pipe(Config.map(Option.filter((value) => value.trim() !== "")))

const optionalSecret = (name: string) =>
  Config.option(Config.redacted(name)).pipe(Config.map(Option.filter((value) => Redacted.value(value).trim() !== "")))

// ---------------------------------------------------------------------------
// Local
// ---------------------------------------------------------------------------

/** `RELAVIUM_CASSETTE`: replay model calls from this cassette file (the `--cassette` flag's fallback). */
export const cassette = Config.string("RELAVIUM_CASSETTE")

/**
 * The data directory: the `--data-dir` flag, else `RELAVIUM_DATA_DIR`, else the platform's
 * convention (`$XDG_DATA_HOME/relavium`, `~/.local/share/relavium`, …).
 */
export const dataDir = (flag: Option.Option<string> | string | undefined = Option.none()) =>
  DataDir.dataDir(Option.isOption(flag) ? flag : Option.fromNullable(flag))

/** The user's price file: `RELAVIUM_PRICES`, else `prices.json` in the data directory. */
export const pricesFile = (dataDirectory: string) =>
  optionalText("RELAVIUM_PRICES").pipe(
    Config.map(Option.getOrElse(() => join(dataDirectory, "prices.json"))),
    Effect.orDie
  )

/** Whether output may be coloured: stdout is a terminal and `NO_COLOR` is not set. */
export const colors = Config.option(Config.string("NO_COLOR")).pipe(
  Effect.map((noColor) => process.stdout.isTTY === true && Option.isNone(noColor)),
  Effect.orElseSucceed(() => false)
)

/** Whether `RELAVIUM_<PROVIDER>_API_KEY` is set (it overrides a stored key). */
export const providerKeyInEnvironment = (provider: string) =>
  Config.option(Config.string(KeyStores.envVarFor(provider))).pipe(Effect.map(Option.isSome), Effect.orElseSucceed(() => false))

// ---------------------------------------------------------------------------
// Tokens and keys
// ---------------------------------------------------------------------------

/** A setting a flag falls back to: its environment variable's name (for help and messages) and its `Config`. */
export interface Setting<A> {
  readonly name: string
  readonly config: Config.Config<A>
}

const setting = <A>(name: string, make: (name: string) => Config.Config<A>): Setting<A> => ({ name, config: make(name) })

/** `RELAVIUM_TOKEN`: the bearer token of a monolith, api replica or gateway. */
export const tokenName = "RELAVIUM_TOKEN"
export const token = setting(tokenName, (name) => Config.redacted(name))
/** The same, when set and not blank (for clients that fall back to it). */
export const clientToken = optionalSecret(tokenName).pipe(Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>()))

/** `RELAVIUM_DAEMON_TOKEN`: the token clients of a listening tools daemon must present. */
export const daemonToken = optionalSecret("RELAVIUM_DAEMON_TOKEN").pipe(Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>()))

/** Where the cloud key store's master keys come from (exactly one of the two; see docs/security/keys.md). */
export interface MasterKeySettings {
  /** `RELAVIUM_MASTER_KEY`: one key. */
  readonly masterKey?: Redacted.Redacted<string> | undefined
  /** `RELAVIUM_MASTER_KEYS`: `label:key,label:key,…`, the current key first. */
  readonly masterKeys?: Redacted.Redacted<string> | undefined
}

const optionalSecretSetting = (name: string) =>
  optionalSecret(name).pipe(Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>()))

/**
 * `RELAVIUM_MASTER_KEYS` and `RELAVIUM_MASTER_KEY`, when either is set (never flags: argv is
 * visible to every user of the machine); both set is refused when the keys are parsed.
 */
export const masterKey: Effect.Effect<Option.Option<MasterKeySettings>> = Effect.map(
  Effect.all([optionalSecretSetting("RELAVIUM_MASTER_KEY"), optionalSecretSetting("RELAVIUM_MASTER_KEYS")]),
  ([one, list]) =>
    Option.isNone(one) && Option.isNone(list)
      ? Option.none()
      : Option.some({ masterKey: Option.getOrUndefined(one), masterKeys: Option.getOrUndefined(list) })
)

// ---------------------------------------------------------------------------
// The distributed deployment (fallbacks of the `relavium server` and `db` flags)
// ---------------------------------------------------------------------------

export const databaseUrl = setting("RELAVIUM_DATABASE_URL", (name) => Config.redacted(name))
export const redisUrl = setting("RELAVIUM_REDIS_URL", (name) => Config.redacted(name))
export const natsUrl = setting("RELAVIUM_NATS_URL", (name) => Config.redacted(name))
export const queuePrefix = setting("RELAVIUM_QUEUE_PREFIX", Config.string)
export const subjectPrefix = setting("RELAVIUM_SUBJECT_PREFIX", Config.string)
/** `RELAVIUM_INFERENCE_ROUTES`: the routes file of `relavium server inference` (docs/inference.md). */
export const inferenceRoutes = setting("RELAVIUM_INFERENCE_ROUTES", Config.string)

/** What carries live run events between the processes: NATS subjects, or Redis Streams (on the queues' Redis). */
export const hubKinds = ["nats", "redis"] as const
export type HubKind = (typeof hubKinds)[number]
const isHubKind = (value: string): value is HubKind => (hubKinds as ReadonlyArray<string>).includes(value)
/** `RELAVIUM_HUB`: `nats` or `redis` (anything else is refused, naming the setting and its choices). */
export const hub = setting("RELAVIUM_HUB", (name) =>
  Config.string(name).pipe(
    Config.map((value) => value.trim()),
    Config.validate({ message: `${name} must be nats or redis`, validation: isHubKind })
  )
)
export const daemonName = setting("RELAVIUM_DAEMON", Config.string)

// ---------------------------------------------------------------------------
// Execution mode (`relavium run`): local providers with the user's keys, or a managed gateway
// ---------------------------------------------------------------------------

/** Where a run's model calls go, resolved once before the engine is made (docs/inference.md, "Execution modes"). */
export type RunMode =
  | { readonly executionMode: "local" }
  | { readonly executionMode: "managed"; readonly gateway: { readonly url: string; readonly token: Redacted.Redacted<string> } }

export const runModes = ["local", "managed"] as const
export const modeName = "RELAVIUM_MODE"
export const gatewayUrlName = "RELAVIUM_GATEWAY_URL"
export const gatewayTokenName = "RELAVIUM_GATEWAY_TOKEN"

/** A setting that is missing or wrong, told in one line (the caller shows it and exits 2). */
export class ModeSettingError extends Data.TaggedError("ModeSettingError")<{ readonly message: string }> {}

const isHttpUrl = (value: string): boolean => {
  try {
    const url = new URL(value)
    return (url.protocol === "http:" || url.protocol === "https:") && url.username === "" && url.password === ""
  } catch {
    return false
  }
}

/**
 * The `--mode` flag, else `RELAVIUM_MODE`, else `local`. `managed` needs `RELAVIUM_GATEWAY_URL`
 * (an http(s) URL without credentials) and `RELAVIUM_GATEWAY_TOKEN`: one missing or malformed is
 * an error before anything runs, never a quiet fall back to the local providers.
 */
export const runMode = (flag: Option.Option<string>): Effect.Effect<RunMode, ModeSettingError> =>
  Effect.gen(function* () {
    const fromEnv = yield* optionalText(modeName).pipe(Effect.orElseSucceed(() => Option.none<string>()))
    const chosen = Option.getOrElse(Option.orElse(flag, () => Option.map(fromEnv, (value) => value.trim())), () => "local")
    const where = Option.isSome(flag) ? "--mode" : modeName
    if (chosen === "cloud") {
      return yield* new ModeSettingError({
        message: `${where}=cloud: \`relavium run\` runs on this machine in local or managed mode; a cloud run is started on a deployment with --server`
      })
    }
    if (chosen === "local") return { executionMode: "local" } as const
    if (chosen !== "managed") {
      return yield* new ModeSettingError({ message: `${where} must be local or managed, not '${chosen}'` })
    }
    const url = yield* optionalText(gatewayUrlName).pipe(Effect.orElseSucceed(() => Option.none<string>()))
    const token = yield* optionalSecret(gatewayTokenName).pipe(Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>()))
    if (Option.isNone(url)) {
      return yield* new ModeSettingError({ message: `managed mode needs ${gatewayUrlName}, the Relavium gateway's URL (e.g. https://gateway.example.com)` })
    }
    if (!isHttpUrl(url.value.trim())) {
      return yield* new ModeSettingError({ message: `${gatewayUrlName} must be an http(s) URL without a user or password, not '${url.value}'` })
    }
    if (Option.isNone(token)) {
      return yield* new ModeSettingError({ message: `managed mode needs ${gatewayTokenName}, the org's gateway token` })
    }
    return { executionMode: "managed", gateway: { url: url.value.trim(), token: token.value } } as const
  })

/** `RELAVIUM_PUBLIC_URL`: the server's address as people reach it, for the links in notifications. */
export const publicUrl: Effect.Effect<Option.Option<string>> = optionalText("RELAVIUM_PUBLIC_URL").pipe(
  Effect.orElseSucceed(() => Option.none<string>())
)

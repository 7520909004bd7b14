/**
 * Every setting the `relavium` binary reads from its environment, read through
 * Effect `Config` here and nowhere else (a `ConfigProvider` can supply them in
 * tests). Flags win over these: commands give them to `Options.withFallbackConfig`
 * or pass the flag's value first.
 */
import { Config, Effect, Option, Redacted } from "effect"
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

/** `RELAVIUM_PUBLIC_URL`: the server's address as people reach it, for the links in notifications. */
export const publicUrl: Effect.Effect<Option.Option<string>> = optionalText("RELAVIUM_PUBLIC_URL").pipe(
  Effect.orElseSucceed(() => Option.none<string>())
)

/**
 * The one place that chooses what answers model calls, for every deployment:
 * a recorded cassette (no key, no network) when one is given, else in managed
 * mode a Relavium gateway (with the org's gateway token; the user's keys are
 * never opened), else the live providers with keys from the `KeyStore` the
 * deployment provides.
 */
import { NodeContext } from "@effect/platform-node"
import { Context, Effect, Layer, Redacted, Stream } from "effect"
import { KeySecrets } from "@relavium/keys"
import type { KnownSecrets } from "@relavium/ports"
import { KeyStore, LlmProvider } from "@relavium/ports"
import { Cassette, type Providers } from "@relavium/llm"

export interface ModelOptions {
  /** Replay model calls from this cassette file instead of calling providers (tests, demos). */
  readonly cassette?: string | undefined
  /** With a cassette: pause this long between streamed chunks. */
  readonly tokenDelayMs?: number | undefined
  /**
   * With a cassette: the calls already made (by earlier processes of the same chat), which are
   * skipped, so that call N replays `calls[N]` across `chat send` and `chat resume`.
   */
  readonly skipCalls?: number | undefined
  /** Live providers only: record every model call into this cassette file (`run --record-cassette`). */
  readonly recordCassette?: string | undefined
  /** Provider overrides (base URLs, extra providers); env `RELAVIUM_<PROVIDER>_BASE_URL` works too. */
  readonly providers?: Providers.ProvidersConfig | undefined
  /** Managed mode: every model call goes to this gateway (Settings.runMode), never to a provider. */
  readonly gateway?: { readonly url: string; readonly token: Redacted.Redacted<string> } | undefined
}

/** The entry the gateway token has in managed mode's key store: so it is a known secret, scrubbed from outputs. */
export const gatewayTokenEntry = "relavium-gateway"

const cassetteLayer = (file: string, options: ModelOptions): Layer.Layer<LlmProvider, Cassette.CassetteError> => {
  const replay = { tokenDelayMs: options.tokenDelayMs ?? 0 }
  const skip = options.skipCalls ?? 0
  return (
    skip === 0
      ? Cassette.layerCassetteFile(file, replay)
      : Layer.unwrapEffect(
          Effect.map(Cassette.readCassetteFile(file), (cassette) => Cassette.layerCassette({ ...cassette, calls: cassette.calls.slice(skip) }, replay))
        )
  ).pipe(Layer.provide(NodeContext.layer))
}

/**
 * The live providers, loaded on the first model call (runtime/LiveModels.ts): a workflow without
 * agents never loads the provider adapters or the HTTP client.
 */
const liveLayer = (options: ModelOptions): Layer.Layer<LlmProvider, never, KeyStore> =>
  Layer.scoped(
    LlmProvider,
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      const keys = yield* KeyStore
      const open = yield* Effect.cached(
        Effect.promise(() => import("./LiveModels.js")).pipe(
          Effect.flatMap((live) => Layer.buildWithScope(live.layer(options.providers).pipe(Layer.provide(Layer.succeed(KeyStore, keys))), scope)),
          Effect.map((context) => Context.get(context, LlmProvider))
        )
      )
      return LlmProvider.of({ stream: (request) => Stream.unwrap(Effect.map(open, (provider) => provider.stream(request))) })
    })
  )

/** Managed mode: the gateway's provider, loaded with the HTTP client on the first model call. */
const managedLayer = (gateway: NonNullable<ModelOptions["gateway"]>): Layer.Layer<LlmProvider> =>
  Layer.scoped(
    LlmProvider,
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      const open = yield* Effect.cached(
        Effect.promise(() => import("./LiveModels.js")).pipe(
          Effect.flatMap((live) => Layer.buildWithScope(live.managed(gateway), scope)),
          Effect.map((context) => Context.get(context, LlmProvider))
        )
      )
      return LlmProvider.of({ stream: (request) => Stream.unwrap(Effect.map(open, (provider) => provider.stream(request))) })
    })
  )

/** The model: a cassette, or the live providers (which read keys from the `KeyStore`). */
export const layer = (options: ModelOptions): Layer.Layer<LlmProvider, Cassette.CassetteError, KeyStore> =>
  options.cassette === undefined ? liveLayer(options) : cassetteLayer(options.cassette, options)

/**
 * The model with its keys: with a cassette no key is needed, so `keys` is never opened (an empty
 * in-memory store stands in); else the live providers on `keys`. The keys are also the known
 * secrets scrubbed from tool outputs and model answers before they are stored or sent to a model.
 */
export const layerWithKeys = <E, R>(
  options: ModelOptions,
  keys: Layer.Layer<KeyStore, E, R>
): Layer.Layer<LlmProvider | KeyStore | KnownSecrets, Cassette.CassetteError | E, R> =>
  (options.cassette !== undefined
    ? Layer.merge(cassetteLayer(options.cassette, options), KeyStore.layerMemory())
    : options.gateway !== undefined
      ? // The user's keys are never opened: the only secret is the gateway token.
        Layer.merge(managedLayer(options.gateway), KeyStore.layerMemory({ [gatewayTokenEntry]: Redacted.value(options.gateway.token) }))
      : layer(options).pipe(Layer.provideMerge(keys))
  ).pipe((base) => Layer.provideMerge(KeySecrets.layer(), base), recording(options))

/**
 * With `recordCassette`, the model calls are recorded (what the model streamed, with known secrets
 * replaced) into a cassette that `--cassette` or a scenario replays; else the layer as it is.
 */
const recording =
  (options: ModelOptions) =>
  <E, R>(base: Layer.Layer<LlmProvider | KeyStore | KnownSecrets, E, R>): Layer.Layer<LlmProvider | KeyStore | KnownSecrets, E, R> =>
    options.recordCassette === undefined || options.cassette !== undefined
      ? base
      : Cassette.layerRecording(options.recordCassette).pipe(Layer.provide(NodeContext.layer), Layer.provideMerge(base))

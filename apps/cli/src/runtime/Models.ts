/**
 * The one place that chooses what answers model calls, for every deployment:
 * a recorded cassette (no key, no network) when one is given, else the live
 * providers with keys from the `KeyStore` the deployment provides.
 */
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { KeySecrets } from "@relavium/keys"
import type { KnownSecrets, LlmProvider } from "@relavium/ports"
import { KeyStore } from "@relavium/ports"
import { Cassette, Providers } from "@relavium/llm"

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
  /** Provider overrides (base URLs, extra providers); env `RELAVIUM_<PROVIDER>_BASE_URL` works too. */
  readonly providers?: Providers.ProvidersConfig | undefined
}

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

/** The model: a cassette, or the live providers (which read keys from the `KeyStore`). */
export const layer = (options: ModelOptions): Layer.Layer<LlmProvider, Cassette.CassetteError, KeyStore> =>
  options.cassette === undefined
    ? Providers.layer(options.providers).pipe(Layer.provide(NodeHttpClient.layerUndici))
    : cassetteLayer(options.cassette, options)

/**
 * The model with its keys: with a cassette no key is needed, so `keys` is never opened (an empty
 * in-memory store stands in); else the live providers on `keys`. The keys are also the known
 * secrets scrubbed from tool outputs and model answers before they are stored or sent to a model.
 */
export const layerWithKeys = <E, R>(
  options: ModelOptions,
  keys: Layer.Layer<KeyStore, E, R>
): Layer.Layer<LlmProvider | KeyStore | KnownSecrets, Cassette.CassetteError | E, R> =>
  (options.cassette === undefined
    ? layer(options).pipe(Layer.provideMerge(keys))
    : Layer.merge(cassetteLayer(options.cassette, options), KeyStore.layerMemory())
  ).pipe((base) => Layer.provideMerge(KeySecrets.layer(), base))

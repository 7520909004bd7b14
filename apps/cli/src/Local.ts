/**
 * The local composition root: which layer backs each component tag when the
 * CLI works on this machine. This is the only place that chooses.
 *
 * Runs are durable: events go to SQLite in the data directory, so a run killed
 * at any point is continued by `relavium resume`.
 */
import { Options } from "@effect/cli"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { Context, Effect, Layer, Option } from "effect"
import { mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { layerLocal, QuickJsSandbox } from "@relavium/core"
import { type DaemonRouter, KeyStore, LlmProvider, RunQueue, UpdateHub } from "@relavium/ports"
import { layerLocal as localDaemon } from "@relavium/daemon"
import { DataDir, KeyStores } from "@relavium/keys"
import { Cassette, Pricing, Providers } from "@relavium/llm"
import { Store } from "@relavium/store"
import type { StoreError } from "@relavium/ports"
import { UsageProblem } from "./Problem.js"

export interface LocalOptions {
  readonly dataDir?: string | undefined
  /** Replay model calls from this cassette file (else RELAVIUM_CASSETTE). */
  readonly cassette?: string | undefined
  readonly tokenDelayMs?: number | undefined
  /** The directory the agents' file and command tools work in (default: the current directory). */
  readonly workspace?: string | undefined
  /** Wraps the in-process daemon's router (the monolith prefers a daemon dialed in over it). */
  readonly daemonRouter?: ((inProcess: Layer.Layer<DaemonRouter>) => Layer.Layer<DaemonRouter>) | undefined
}

/** Provider keys: the OS keychain (or the 0600 file in the data directory), environment first. */
export const keysLayer = (dataDir?: string) =>
  KeyStores.layerKeychain({ dataDir: DataDir.resolveDataDir({ flag: dataDir }) }).pipe(Layer.provide(NodeContext.layer))

/** The same keys, opened on first use: a run that needs no key never touches the keychain. */
const lazyKeysLayer = (dataDir?: string) =>
  Layer.scoped(
    KeyStore,
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      const open = yield* Effect.cached(
        Layer.buildWithScope(keysLayer(dataDir), scope).pipe(Effect.map((context) => Context.get(context, KeyStore)))
      )
      return KeyStore.of({
        get: (provider) => Effect.flatMap(open, (keys) => keys.get(provider)),
        set: (provider, key) => Effect.flatMap(open, (keys) => keys.set(provider, key)),
        remove: (provider) => Effect.flatMap(open, (keys) => keys.remove(provider)),
        list: Effect.flatMap(open, (keys) => keys.list)
      })
    })
  )

/** A recorded cassette when one is given (no key, no network); else the live providers. */
export const modelLayers = (options: LocalOptions): Layer.Layer<LlmProvider | KeyStore, Cassette.CassetteError> => {
  const cassette = options.cassette ?? process.env.RELAVIUM_CASSETTE
  return cassette === undefined
    ? Providers.layer().pipe(Layer.provideMerge(lazyKeysLayer(options.dataDir)), Layer.provide(NodeHttpClient.layerUndici))
    : Layer.merge(
        Cassette.layerCassetteFile(cassette, { tokenDelayMs: options.tokenDelayMs ?? 0 }).pipe(Layer.provide(NodeContext.layer)),
        KeyStore.layerMemory()
      )
}

/** The user's price file: `$RELAVIUM_PRICES`, else `prices.json` in the data directory. */
export const pricesFile = (dataDir?: string) =>
  process.env.RELAVIUM_PRICES ?? join(DataDir.resolveDataDir({ flag: dataDir }), "prices.json")

export const databaseFile = (dataDir?: string) => join(DataDir.resolveDataDir({ flag: dataDir }), "relavium.db")

/** The durable SQLite store in the data directory (created if missing). */
export const storeLayer = (dataDir?: string) =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      const dir = DataDir.resolveDataDir({ flag: dataDir })
      mkdirSync(dir, { recursive: true })
      return Store.layerSqlite({ filename: join(dir, "relavium.db") })
    })
  )

const memoryQueue = RunQueue.layerMemory()

/** The engine and its workers in this process, on SQLite. */
export const localLayer = (options: LocalOptions = {}) =>
  layerLocal({ executionMode: "local" }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        UpdateHub.layerMemory,
        memoryQueue,
        QuickJsSandbox.layerQuickJs,
        modelLayers(options),
        Pricing.layerFile(pricesFile(options.dataDir)),
        // The tools daemon runs in this process and starts on the first tool call.
        (options.daemonRouter ?? ((inProcess) => inProcess))(localDaemon({ workspace: resolve(options.workspace ?? process.cwd()) }))
      )
    ),
    Layer.provideMerge(storeLayer(options.dataDir)),
    Layer.provideMerge(NodeContext.layer)
  )

export const cassetteOption = Options.file("cassette").pipe(
  Options.optional,
  Options.withDescription("replay model calls from a recorded cassette (no key, no network); also RELAVIUM_CASSETTE")
)

export const tokenDelayOption = Options.integer("token-delay-ms").pipe(
  Options.withDefault(0),
  Options.withDescription("with a cassette: pause this long between streamed chunks, to watch a replay")
)

export const workspaceOption = Options.directory("workspace", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription("the directory agents' tools (files, commands, git) are confined to (default: the current directory)")
)

export const dataDirOption = Options.directory("data-dir").pipe(
  Options.optional,
  Options.withDescription("where runs are stored (default: $RELAVIUM_DATA_DIR, else ~/.local/share/relavium)")
)

/** Runs `effect` on the local engine; a database or cassette problem becomes a one-line error. */
export const withLocal = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options: Omit<LocalOptions, "dataDir" | "workspace"> & {
    readonly dataDir: Option.Option<string> | string | undefined
    readonly workspace?: Option.Option<string> | string | undefined
  }
) =>
  effect.pipe(
    Effect.provide(
      localLayer({
        ...options,
        dataDir: Option.isOption(options.dataDir) ? Option.getOrUndefined(options.dataDir) : options.dataDir,
        workspace: Option.isOption(options.workspace) ? Option.getOrUndefined(options.workspace) : options.workspace
      })
    ),
    Effect.mapError((e): UsageProblem | E => {
      const tagged = e as { readonly _tag?: unknown }
      if (tagged._tag === "StoreError") return new UsageProblem((e as StoreError).message, "store")
      if (tagged._tag === "CassetteError") return new UsageProblem((e as Cassette.CassetteError).message)
      if (tagged._tag === "PricingError") return new UsageProblem((e as Pricing.PricingError).message)
      return e as E
    })
  )

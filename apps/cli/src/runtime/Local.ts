/**
 * The local deployment (`relavium run`, `resume`, `runs`, `gate`, `chat`):
 * which layer backs each component tag when the CLI works on this machine.
 * Runs and chats are durable: their events go to SQLite in the data directory
 * (created 0700), so a run killed at any point is continued by `relavium resume`
 * and a chat by `relavium chat resume` (runtime/LocalChat.ts). The tools daemon
 * runs in this process and is loaded and started on the first tool call.
 */
import { NodeContext } from "@effect/platform-node"
import { Context, Effect, Layer, Option } from "effect"
import { join, resolve } from "node:path"
import { layerLocal, QuickJsSandbox } from "@relavium/core"
import { KeySecrets } from "@relavium/keys"
import { Pricing } from "@relavium/llm"
import { type DaemonRouter, KeyStore, RunQueue, RunStore, UpdateHub } from "@relavium/ports"
import { Store } from "@relavium/store"
import { endingOf, localErrors, type LocalError } from "../ExitCodes.js"
import { UsageProblem } from "../Problem.js"
import * as DataDirectory from "./DataDirectory.js"
import * as InProcessDaemon from "./InProcessDaemon.js"
import { keysLayer } from "./Keys.js"
import * as Models from "./Models.js"
import * as Settings from "./Settings.js"
import * as Telemetry from "./Telemetry.js"

export interface LocalOptions extends Models.ModelOptions {
  /** The data directory, resolved (see `Settings.dataDir`). */
  readonly dataDir: string
  /** The directory the agents' file and command tools work in (default: the current directory). */
  readonly workspace?: string | undefined
  /** Wraps the in-process daemon's router (the monolith prefers a daemon dialed in over it). */
  readonly daemonRouter?: ((inProcess: Layer.Layer<DaemonRouter>) => Layer.Layer<DaemonRouter>) | undefined
  /** The expressions of the workflow about to run: if one needs QuickJS, its worker starts loading first thing. */
  readonly expressions?: ReadonlyArray<string> | undefined
  /** Recorded on `run:started`: `managed` when `gateway` is set (Settings.runMode), else `local`. */
  readonly executionMode?: "local" | "managed" | undefined
}

/** The same keys, opened on first use: a run that needs no key never touches the keychain. */
const lazyKeysLayer = (dataDir: string) =>
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

/** The model (a cassette, else the live providers) with the user's keys. */
export const modelLayer = (options: LocalOptions) => Models.layerWithKeys(options, lazyKeysLayer(options.dataDir))

/** The user's price file (`RELAVIUM_PRICES`, else `prices.json` in the data directory) over the shipped prices. */
export const pricingLayer = (dataDir: string) => Layer.unwrapEffect(Effect.map(Settings.pricesFile(dataDir), Pricing.layerFile))

/** The durable SQLite store in the data directory (the directory created 0700 if missing). */
export const storeLayer = (dataDir: string) =>
  Layer.unwrapEffect(
    Effect.map(DataDirectory.ensure(dataDir), (dir) => Store.layerSqlite({ filename: join(dir, "relavium.db") }))
  )

const memoryQueue = RunQueue.layerMemory()

/** The engine and its workers in this process, on SQLite. */
export const localLayer = (options: LocalOptions) =>
  layerLocal({ executionMode: options.executionMode ?? "local" }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        UpdateHub.layerMemory,
        memoryQueue,
        modelLayer(options),
        pricingLayer(options.dataDir),
        // The tools daemon runs in this process and starts on the first tool call.
        (options.daemonRouter ?? ((inProcess) => inProcess))(InProcessDaemon.layer({
          workspace: resolve(options.workspace ?? process.cwd()),
          // The data directory and the key file are never reachable by the file tools.
          excludedPaths: KeySecrets.excludedPaths(options.dataDir, resolve(options.workspace ?? process.cwd()))
        }))
      )
    ),
    Layer.provideMerge(storeLayer(options.dataDir)),
    // Built before the store, so a worker warmed for the run's expressions loads while SQLite opens.
    Layer.provideMerge(
      QuickJsSandbox.layerQuickJsWith(QuickJsSandbox.defaultLimits, options.expressions === undefined ? {} : { warmFor: options.expressions })
    ),
    Layer.provideMerge(NodeContext.layer)
  )

/** Local options as commands have them: the data directory and workspace as flags (`Option`s). */
export type LocalFlags = Omit<LocalOptions, "dataDir" | "workspace"> & {
  readonly dataDir: Option.Option<string> | string | undefined
  readonly workspace?: Option.Option<string> | string | undefined
}

const orUndefined = <A>(value: Option.Option<A> | A | undefined): A | undefined =>
  Option.isOption(value) ? Option.getOrUndefined(value as Option.Option<A>) : (value as A | undefined)

/** The options of the local deployment, with the data directory resolved from the flag and the settings. */
export const resolveOptions = (flags: LocalFlags) =>
  Effect.map(Settings.dataDir(orUndefined(flags.dataDir)), (dataDir): LocalOptions => ({
    ...flags,
    dataDir,
    workspace: orUndefined(flags.workspace)
  }))

/** A problem opening the local deployment (database, cassette, price file) as the one-line usage problem it is shown as. */
export const toUsageProblem = <E>(e: E): UsageProblem | Exclude<E, LocalError> => {
  const ending = endingOf(localErrors, e)
  return ending === undefined ? (e as Exclude<E, LocalError>) : new UsageProblem((e as unknown as LocalError).message, ending.code)
}

/**
 * Runs `effect` on the local engine, with the telemetry OTEL_* configures (none by default); a
 * database or cassette problem becomes a one-line error.
 */
export const withLocal = <A, E, R>(effect: Effect.Effect<A, E, R>, flags: LocalFlags) =>
  Effect.flatMap(resolveOptions(flags), (options) => effect.pipe(Effect.provide(localLayer(options)))).pipe(
    Effect.mapError(toUsageProblem),
    Telemetry.provide("cli")
  )

/** The execution mode a stored run was started in (its `run:started`); `local` when it has none. */
const startedMode = (runId: string, dataDir: string) =>
  withStore(
    Effect.flatMap(RunStore, (store) => store.events(runId)).pipe(
      Effect.map((events) => {
        const started = events.find((event) => event.type === "run:started")
        return started?.type === "run:started" ? started.executionMode : "local"
      }),
      Effect.orElseSucceed(() => "local" as const)
    ),
    dataDir
  )

/**
 * `withLocal` for a command that continues a stored run (`resume`, `gate`): the engine runs in
 * the mode the run was started in, resolved again from the settings, so a managed run never
 * continues on the user's own keys (without its gateway settings it is refused, exit 2).
 */
export const withLocalRun = <A, E, R>(runId: Option.Option<string>, effect: Effect.Effect<A, E, R>, flags: LocalFlags) =>
  Effect.gen(function* () {
    const options = yield* resolveOptions(flags)
    const recorded = Option.isNone(runId) ? "local" : yield* startedMode(runId.value, options.dataDir)
    const mode = yield* Settings.runMode(Option.some(recorded)).pipe(
      Effect.mapError((e) => new UsageProblem(`run ${Option.getOrElse(runId, () => "")} was started in ${recorded} mode and continues in it: ${e.message}`))
    )
    const gateway = mode.executionMode === "managed" ? mode.gateway : undefined
    return yield* effect.pipe(Effect.provide(localLayer({ ...options, executionMode: mode.executionMode, gateway })))
  }).pipe(Effect.mapError(toUsageProblem))

/** Runs `effect` on the local SQLite store alone. */
export const withStore = <A, E, R>(effect: Effect.Effect<A, E, R>, dataDir: Option.Option<string> | string | undefined) =>
  Effect.flatMap(Settings.dataDir(orUndefined(dataDir)), (dir) => effect.pipe(Effect.provide(storeLayer(dir))))

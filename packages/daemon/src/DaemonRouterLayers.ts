/**
 * The `DaemonRouter` layers this package provides:
 *
 * - `layerLocal` — the daemon in this process, started on the first tool
 *   call (nothing is spawned or connected before), as the Reliant monolith's
 *   LazyDaemonStarter + LocalDaemonRouter.
 * - `layerRpcClient` — a daemon in another process, reached over an
 *   authenticated websocket RPC connection that reconnects by itself; a call
 *   whose connection drops fails with `tool_unavailable`, never hangs.
 */
import { NodeSocket } from "@effect/platform-node"
import { RpcClient, RpcClientError, RpcSerialization } from "@effect/rpc"
import { Effect, Layer, Redacted, Schedule, Stream } from "effect"
import { DaemonRouter, ToolError } from "@relavium/ports"
import * as Daemon from "./Daemon.js"
import { DaemonRpcs, layerAuthClient, type Unauthorized } from "./DaemonRpcs.js"
import * as LazyStarter from "./LazyStarter.js"

export interface LocalDaemonOptions extends Daemon.DaemonOptions {}

/** A router over a started daemon. */
const routerOf = (daemon: Effect.Effect<Daemon.DaemonService, ToolError>) =>
  DaemonRouter.of({
    tools: (names) => Effect.flatMap(daemon, (d) => d.tools(names)),
    execute: (call, options) => Effect.flatMap(daemon, (d) => Daemon.collectResult(d.execute(call), options))
  })

/** The daemon in-process, started lazily on the first tool call. */
export const layerLocal = (options: LocalDaemonOptions): Layer.Layer<DaemonRouter> =>
  Layer.scoped(
    DaemonRouter,
    Effect.map(LazyStarter.make(Daemon.make(options)), (starter) => routerOf(starter.get))
  )

export interface RpcClientOptions {
  /** The daemon's websocket URL, e.g. `ws://127.0.0.1:7420/rpc`. */
  readonly url: string
  readonly token: Redacted.Redacted<string> | string
  /** Pause between reconnection attempts (default: 200 ms growing to 2 s). */
  readonly retrySchedule?: Schedule.Schedule<unknown, unknown> | undefined
}

export type DaemonClient = RpcClient.RpcClient<import("@effect/rpc").RpcGroup.Rpcs<typeof DaemonRpcs>, RpcClientError.RpcClientError>

const defaultRetry = Schedule.exponential("200 millis", 1.5).pipe(Schedule.union(Schedule.spaced("2 seconds")))

/** An RPC client of a daemon, living in the current scope (used by `layerRpcClient` and tests). */
export const makeClient = (options: RpcClientOptions): Effect.Effect<DaemonClient, never, import("effect").Scope.Scope> =>
  Effect.gen(function* () {
    const token = typeof options.token === "string" ? Redacted.make(options.token) : options.token
    const context = yield* Layer.build(
      Layer.mergeAll(
        RpcClient.layerProtocolSocket({ retryTransientErrors: false, retrySchedule: options.retrySchedule ?? defaultRetry }).pipe(
          Layer.provide(NodeSocket.layerWebSocket(options.url)),
          Layer.provide(RpcSerialization.layerJson)
        ),
        layerAuthClient(token)
      )
    )
    return yield* RpcClient.make(DaemonRpcs).pipe(Effect.provide(context))
  })

const transportError = (error: RpcClientError.RpcClientError | Unauthorized | ToolError): ToolError => {
  switch (error._tag) {
    case "ToolError":
      return error
    case "Unauthorized":
      return new ToolError({ code: "tool_denied", message: `${error.message} (check the daemon token)` })
    case "RpcClientError":
      return new ToolError({
        code: "tool_unavailable",
        message: `the tools daemon is unreachable or the connection dropped during the call: ${error.message}`
      })
  }
}

/** A daemon in another process, over its websocket RPC endpoint. Connects on the first tool call. */
export const layerRpcClient = (options: RpcClientOptions): Layer.Layer<DaemonRouter> =>
  Layer.scoped(
    DaemonRouter,
    Effect.gen(function* () {
      const starter = yield* LazyStarter.make(makeClient(options))
      return DaemonRouter.of({
        tools: (names) =>
          starter.get.pipe(
            Effect.flatMap((client) => client.ListTools({ names })),
            Effect.mapError(transportError)
          ),
        execute: (call, executeOptions) =>
          starter.get.pipe(
            Effect.flatMap((client) =>
              Daemon.collectResult(client.Execute({ call }).pipe(Stream.mapError(transportError)), executeOptions)
            )
          )
      })
    })
  )

/**
 * A standalone daemon: the tools of one workspace behind the `DaemonRpcs`
 * websocket endpoint `ws://127.0.0.1:PORT/rpc`, for `relavium daemon start`
 * and for engines in other processes (`layerRpcClient`). It listens on the
 * loopback address only and answers only requests that carry its token.
 */
import * as Http from "node:http"
import type * as Net from "node:net"
import { HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { RpcSerialization, RpcServer } from "@effect/rpc"
import { Data, Effect, ExecutionStrategy, Layer, Redacted, Scope } from "effect"
import * as Daemon from "./Daemon.js"
import { DaemonRpcs, layerAuth, layerHandlers } from "./DaemonRpcs.js"

export interface ServeOptions extends Daemon.DaemonOptions {
  /** TCP port; 0 picks a free one (read it from the result). */
  readonly port: number
  /** The only address the daemon listens on. */
  readonly host?: "127.0.0.1" | undefined
  readonly token: Redacted.Redacted<string> | string
}

export interface DaemonServer {
  readonly host: string
  readonly port: number
  /** The websocket URL clients connect to. */
  readonly url: string
  readonly daemon: Daemon.DaemonService
}

export class DaemonServeError extends Data.TaggedError("DaemonServeError")<{ readonly message: string }> {}

export const RPC_PATH = "/rpc"

/** Starts the daemon and its RPC endpoint in the current scope; closing the scope stops both. */
export const serveDaemon = (options: ServeOptions): Effect.Effect<DaemonServer, DaemonServeError, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    if (host !== "127.0.0.1") {
      return yield* new DaemonServeError({ message: `the daemon only listens on 127.0.0.1 (got '${String(host)}')` })
    }
    const token = typeof options.token === "string" ? Redacted.make(options.token) : options.token
    if (Redacted.value(token).length < 16) {
      return yield* new DaemonServeError({ message: "the daemon token must be at least 16 characters" })
    }
    const daemon = yield* Daemon.make(options).pipe(Effect.mapError((e) => new DaemonServeError({ message: e.message })))
    // Open websocket connections keep the Node and ws servers from closing, so on shutdown the daemon
    // first cuts them (a finalizer on the outer scope), then closes the servers (their own scope).
    const connections = new Set<Net.Socket>()
    const httpScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const socket of connections) socket.destroy()
      })
    )
    const server = yield* NodeHttpServer.make(
      () =>
        Http.createServer().on("connection", (socket: Net.Socket) => {
          connections.add(socket)
          socket.on("close", () => connections.delete(socket))
        }),
      { port: options.port, host }
    ).pipe(
      Scope.extend(httpScope),
      Effect.mapError((e) => new DaemonServeError({ message: `cannot listen on ${host}:${options.port}: ${String(e.cause ?? e)}` }))
    )
    const rpcContext = yield* Layer.build(
      Layer.mergeAll(layerHandlers, layerAuth(token), RpcSerialization.layerJson).pipe(Layer.provide(Layer.succeed(Daemon.Daemon, daemon)))
    )
    const rpcApp = yield* RpcServer.toHttpAppWebsocket(DaemonRpcs).pipe(Effect.provide(rpcContext))
    yield* HttpServer.serveEffect(HttpRouter.empty.pipe(HttpRouter.get(RPC_PATH, rpcApp))).pipe(
      Effect.provideService(HttpServer.HttpServer, server),
      Scope.extend(httpScope)
    )
    const port = server.address._tag === "TcpAddress" ? server.address.port : options.port
    return { host, port, url: `ws://${host}:${port}${RPC_PATH}`, daemon }
  })

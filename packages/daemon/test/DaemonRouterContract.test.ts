/**
 * The DaemonRouter contract on every layer of packages/daemon, each over the
 * suite's workspace: the daemon in this process (`layerLocal`), a daemon
 * process's RPC socket (`layerRpcClient` to `serveDaemon`, real websocket on
 * loopback), and the reverse connection (`layerRouterGateway` over a
 * daemon dialed in to a gateway endpoint).
 */
import { HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import * as Http from "node:http"
import type * as Net from "node:net"
import { Context, Effect, Exit, Layer, Redacted, Scope, Stream } from "effect"
import { daemonRouterContract } from "@relavium/ports/testing"
import {
  authorizeToken,
  DAEMON_RPC_PATH,
  DaemonRegistry,
  dialGateway,
  httpApp,
  layerLocal,
  layerRouterGateway,
  layerRpcClient,
  serveDaemon
} from "../src/index.js"

const TOKEN = "contract-token-0123456789abcdef"

daemonRouterContract("daemon in process", (workspace) => layerLocal({ workspace }))

daemonRouterContract("RPC client to a daemon server", (workspace) =>
  Layer.unwrapScoped(
    Effect.map(serveDaemon({ workspace, port: 0, token: TOKEN }), (server) => layerRpcClient({ url: server.url, token: TOKEN }))
  )
)

/** A gateway endpoint on loopback with a daemon over `workspace` dialed in and connected. */
const gatewayWithDaemon = (workspace: string) =>
  Effect.gen(function* () {
    const registryContext = yield* Layer.build(DaemonRegistry.layerMemory)
    const registry = Context.get(registryContext, DaemonRegistry)
    // The endpoint lives in a scope of its own, closed after its connections are cut
    // (an open websocket would hold a graceful close), once the daemon has hung up.
    const sockets = new Set<Net.Socket>()
    const endpoint = yield* Scope.make()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => sockets.forEach((socket) => socket.destroy())).pipe(Effect.zipRight(Scope.close(endpoint, Exit.void)))
    )
    const server = yield* NodeHttpServer.make(
      () =>
        Http.createServer().on("connection", (socket: Net.Socket) => {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
        }),
      { port: 0, host: "127.0.0.1" }
    ).pipe(Scope.extend(endpoint))
    const app = httpApp(registry, { authorize: authorizeToken(Redacted.make(TOKEN)) })
    yield* HttpServer.serveEffect(HttpRouter.empty.pipe(HttpRouter.get(DAEMON_RPC_PATH, app))).pipe(
      Effect.provideService(HttpServer.HttpServer, server),
      Scope.extend(endpoint)
    )
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const dialed = yield* dialGateway({
      url: `ws://127.0.0.1:${port}${DAEMON_RPC_PATH}`,
      token: TOKEN,
      workspace,
      reconnectDelay: { initial: "50 millis", max: "200 millis" }
    })
    yield* dialed.changes.pipe(
      Stream.filter((state) => state._tag === "Connected"),
      Stream.runHead,
      Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the daemon did not connect to the gateway") }),
      Effect.orDie
    )
    return layerRouterGateway().pipe(Layer.provide(Layer.succeedContext(registryContext)))
  })

daemonRouterContract("gateway to a dialed-in daemon", (workspace) => Layer.unwrapScoped(gatewayWithDaemon(workspace)))

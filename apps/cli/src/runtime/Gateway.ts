/**
 * The gateway of the distributed deployment (`relavium server gateway`): holds
 * the long-lived connections of remote tools daemons
 * (`relavium daemon start --gateway URL --token T [--name N]`) and answers,
 * over NATS, the tool calls workers send to them.
 *
 * - HTTP (or HTTPS with a certificate): the daemons' websocket at
 *   `/rpc/daemon` (bearer token checked before the upgrade) and `GET /health`.
 * - For each daemon name with at least one open connection,
 *   `NatsDaemonRouter.serveDaemon` answers `<prefix>.daemon.<name>.call`; its
 *   scope closes when the name's last connection closes, so workers get
 *   `tool_unavailable` (no responders) at once instead of waiting.
 *
 * The NATS client loads only when a gateway is made.
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Data, type Duration, Effect, ExecutionStrategy, FiberMap, Layer, Redacted, Scope, Stream } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"
import type * as Net from "node:net"
import { authorizeToken, DAEMON_RPC_PATH, DaemonRegistry, httpApp, routerFor } from "@relavium/daemon"
import type { NatsDaemonRouter } from "@relavium/hub"
import type { Monolith } from "@relavium/server"

export const loadHub = () => import("@relavium/hub")

export interface GatewayOptions {
  readonly host: string
  readonly port: number
  /** The bearer token a daemon must present to connect. */
  readonly token: Redacted.Redacted<string>
  /** `nats://[user:password@]host:port`, several comma-separated. */
  readonly natsUrl: Redacted.Redacted<string>
  readonly subjectPrefix: string
  /** Serve HTTPS (wss://) with this certificate and key; plain HTTP (ws://) without. */
  readonly tls?: Monolith.TlsMaterial | undefined
  /** How long to wait for NATS before failing (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Called when a daemon name gets its first connection (once its NATS subject is served) or loses its last. */
  readonly onChange?: ((change: { readonly name: string; readonly connected: boolean }) => Effect.Effect<void>) | undefined
}

export interface Gateway {
  /** `http(s)://host:port` */
  readonly url: string
  /** Completes (with what happened) if the NATS connection closes for good; never while it is up. */
  readonly natsLost: Effect.Effect<string>
}

/** Refused to start: NATS unreachable, or the port not free. */
export class GatewayError extends Data.TaggedError("GatewayError")<{ readonly message: string }> {}

export const serversOf = (url: Redacted.Redacted<string>) =>
  Redacted.value(url)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")

/**
 * Serves `app` on an HTTP(S) server on `host:port` for the scope. When the scope closes, the open
 * sockets (daemons' websockets, keep-alive requests) are destroyed first and only then is the
 * server closed: the server and the handlers live in a scope of their own, closed after that,
 * because a websocket handler's resources end up in the scope it was served in and would wait
 * for the daemon to hang up.
 */
const listen = (
  options: Pick<GatewayOptions, "host" | "port" | "tls">,
  app: HttpRouter.HttpRouter
) =>
  Effect.gen(function* () {
    const httpScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const sockets = new Set<Net.Socket>()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const socket of sockets) socket.destroy()
      })
    )
    const track = <S extends Http.Server>(server: S) =>
      server.on("connection", (socket: Net.Socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
      })
    const tls = options.tls
    const server = yield* NodeHttpServer.make(
      () =>
        tls === undefined
          ? track(Http.createServer())
          : (track(Https.createServer({ cert: tls.cert, key: Redacted.value(tls.key) })) as unknown as Http.Server),
      { host: options.host, port: options.port }
    ).pipe(
      Scope.extend(httpScope),
      Effect.mapError((e) => new GatewayError({ message: `cannot listen on ${options.host}:${options.port}: ${String((e.cause as Error | undefined)?.message ?? e.cause)}` }))
    )
    yield* HttpServer.serveEffect(app).pipe(Effect.provideService(HttpServer.HttpServer, server), Scope.extend(httpScope))
    return server
  })

const urlOf = (server: HttpServer.HttpServer, tls: boolean) => {
  const address = server.address
  if (address._tag === "UnixAddress") return `unix:${address.path}`
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
  return `${tls ? "https" : "http"}://${host}:${address.port}`
}

/**
 * The gateway for the scope: connected to NATS, serving the daemons' websocket, and answering on
 * NATS the calls for each daemon connected to it.
 */
export const makeGateway = (options: GatewayOptions): Effect.Effect<Gateway, GatewayError | NatsDaemonRouter.NatsRouterError, Scope.Scope> =>
  Effect.gen(function* () {
    const { NatsDaemonRouter, NatsUpdateHub } = yield* Effect.promise(loadHub)
    const nc = yield* NatsDaemonRouter.acquireConnection({
      servers: serversOf(options.natsUrl),
      connectTimeout: options.connectTimeout,
      name: "relavium-gateway"
    })
    const registry = Context.get(yield* Layer.build(DaemonRegistry.layerMemory), DaemonRegistry)
    const onChange = options.onChange ?? (() => Effect.void)

    // Subscribed before the server listens, so no daemon's arrival is missed.
    const changes = yield* registry.subscribe
    const served = yield* FiberMap.make<string>()
    const announced = new Set<string>()
    const serveName = (name: string) =>
      Effect.gen(function* () {
        yield* NatsDaemonRouter.serveDaemon(nc, routerFor(registry, name), { daemon: name, subjectPrefix: options.subjectPrefix })
        announced.add(name)
        yield* onChange({ name, connected: true })
        return yield* Effect.never
      }).pipe(Effect.scoped)
    yield* changes.pipe(
      Stream.runForEach((change) =>
        change._tag === "Connected"
          ? FiberMap.run(served, change.name, serveName(change.name))
          : Effect.zipRight(
              FiberMap.remove(served, change.name),
              Effect.suspend(() => (announced.delete(change.name) ? onChange({ name: change.name, connected: false }) : Effect.void))
            )
      ),
      Effect.forkScoped
    )

    const routes = HttpRouter.empty.pipe(
      HttpRouter.get(DAEMON_RPC_PATH, httpApp(registry, { authorize: authorizeToken(options.token) })),
      HttpRouter.get("/health", HttpServerResponse.unsafeJson({ status: "ok" }))
    )
    const server = yield* listen(options, routes)

    const shown = serversOf(options.natsUrl).map(NatsUpdateHub.redactUrl).join(", ")
    return {
      url: urlOf(server, options.tls !== undefined),
      natsLost: Effect.promise(() => nc.closed()).pipe(
        Effect.map((error) => `lost the connection to NATS at ${shown}${error instanceof Error ? `: ${error.message}` : ""}`)
      )
    }
  })


/**
 * `relavium server gateway`: the process of the distributed deployment that
 * holds the long-lived connections of remote tools daemons
 * (`relavium daemon start --gateway URL --token T [--name N]`) and answers,
 * over NATS, the tool calls workers send to them.
 *
 * - HTTP (or HTTPS with --tls-cert/--tls-key): the daemons' websocket at
 *   `/rpc/daemon` (bearer token checked before the upgrade) and `GET /health`.
 * - For each daemon name with at least one open connection,
 *   `NatsDaemonRouter.serveDaemon` answers `<prefix>.daemon.<name>.call`; its
 *   scope closes when the name's last connection closes, so workers get
 *   `tool_unavailable` (no responders) at once instead of waiting.
 *
 * A gateway that cannot reach NATS says so on one line and exits 1; one that
 * loses NATS for good (the client gave up reconnecting) exits 1 the same way;
 * a missing setting exits 2; SIGTERM or SIGINT stops it with exit 0. The NATS
 * client loads only when this command runs.
 */
import { Command, Options } from "@effect/cli"
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Console, Context, Data, type Duration, Effect, ExecutionStrategy, FiberMap, Layer, Option, Redacted, Scope, Stream } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"
import type * as Net from "node:net"
import { authorizeToken, DAEMON_RPC_PATH, DaemonRegistry, httpApp, routerFor } from "@relavium/daemon"
import type { NatsDaemonRouter } from "@relavium/hub"
import type { Monolith } from "@relavium/server"
import { ExitCode } from "../Follow.js"

const loadHub = () => import("@relavium/hub")

// ---------------------------------------------------------------------------
// The composition
// ---------------------------------------------------------------------------

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

const serversOf = (url: Redacted.Redacted<string>) =>
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

// ---------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------

/** A missing or malformed setting: exit 2. */
class Misconfigured extends Data.TaggedError("Misconfigured")<{ readonly message: string }> {}

const fromEnv = (flag: string, env: string, description: string) =>
  Options.redacted(flag).pipe(
    Options.withFallbackConfig(Config.redacted(env)),
    Options.optional,
    Options.withDescription(`${description} (else ${env})`)
  )

const readPem = (file: string) =>
  Effect.tryPromise({
    try: () => import("node:fs/promises").then((fs) => fs.readFile(file, "utf8")),
    catch: (e) => new Misconfigured({ message: `cannot read ${file}: ${(e as Error).message}` })
  })

const readTls = (cert: Option.Option<string>, key: Option.Option<string>) =>
  Effect.gen(function* () {
    if (Option.isNone(cert) && Option.isNone(key)) return undefined
    if (Option.isNone(cert) || Option.isNone(key)) return yield* new Misconfigured({ message: "--tls-cert and --tls-key go together" })
    return { cert: yield* readPem(cert.value), key: Redacted.make(yield* readPem(key.value)) }
  })

export const gateway = Command.make(
  "gateway",
  {
    host: Options.text("host").pipe(
      Options.withDefault("127.0.0.1"),
      Options.withDescription("the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 to take daemons from other machines)")
    ),
    port: Options.integer("port").pipe(Options.withDefault(7432), Options.withDescription("the port to listen on (0: any free port; the URL is printed)")),
    token: fromEnv("token", "RELAVIUM_TOKEN", "the bearer token daemons must present (relavium daemon start --token)"),
    natsUrl: fromEnv("nats-url", "RELAVIUM_NATS_URL", "NATS (tool calls from workers): nats://host:port, several comma-separated"),
    subjectPrefix: Options.text("subject-prefix").pipe(
      Options.withFallbackConfig(Config.string("RELAVIUM_SUBJECT_PREFIX")),
      Options.withDefault("relavium"),
      Options.withDescription("the NATS subject prefix of this deployment (else RELAVIUM_SUBJECT_PREFIX; default relavium)")
    ),
    tlsCert: Options.file("tls-cert", { exists: "yes" }).pipe(Options.optional, Options.withDescription("serve wss:// with this PEM certificate (with --tls-key)")),
    tlsKey: Options.file("tls-key", { exists: "yes" }).pipe(Options.optional, Options.withDescription("the PEM private key of --tls-cert"))
  },
  (options) =>
    Effect.gen(function* () {
      const missing = [
        Option.isNone(options.token) ? "--token (or RELAVIUM_TOKEN): the bearer token daemons must present" : undefined,
        Option.isNone(options.natsUrl) ? "--nats-url (or RELAVIUM_NATS_URL): workers reach the gateway through NATS" : undefined
      ].filter((m) => m !== undefined)
      if (missing.length > 0) return yield* new Misconfigured({ message: `missing ${missing.join("; ")}` })
      const token = Option.getOrThrow(options.token)
      const natsUrl = Option.getOrThrow(options.natsUrl)
      if (Redacted.value(token).length < 16) return yield* new Misconfigured({ message: "--token (or RELAVIUM_TOKEN) must be at least 16 characters" })
      if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
        return yield* new Misconfigured({ message: `--port must be between 0 and 65535 (got ${options.port})` })
      }
      const tls = yield* readTls(options.tlsCert, options.tlsKey)
      const { NatsUpdateHub } = yield* Effect.promise(loadHub)
      const shownNats = serversOf(natsUrl).map(NatsUpdateHub.redactUrl).join(", ")
      const started = yield* makeGateway({
        host: options.host,
        port: options.port,
        token,
        natsUrl,
        subjectPrefix: options.subjectPrefix,
        tls,
        onChange: ({ connected, name }) =>
          Console.log(
            connected
              ? `relavium server gateway: tools daemon '${name}' connected; serving its tool calls on NATS`
              : `relavium server gateway: tools daemon '${name}' disconnected; its tool calls get tool_unavailable until it reconnects`
          )
      })
      const wsUrl = `${started.url.replace(/^http/, "ws")}${DAEMON_RPC_PATH}`
      yield* Console.log(
        [
          `relavium server gateway: listening on ${started.url} (pid ${process.pid})`,
          `  tools daemons: ${wsUrl}  (relavium daemon start --gateway ${wsUrl} --token T [--name N])`,
          `  NATS:          ${shownNats} (subject prefix ${options.subjectPrefix})`
        ].join("\n")
      )
      const lost = yield* started.natsLost
      return yield* new GatewayError({ message: lost })
    }).pipe(
      Effect.scoped,
      // SIGTERM/SIGINT interrupt the gateway: closing it in order is a clean stop.
      Effect.onInterrupt(() => Effect.sync(() => void (process.exitCode = ExitCode.ok))),
      Effect.catchAll((e) =>
        Effect.sync(() => {
          process.stderr.write(`relavium server gateway: ${e.message}\n`)
          process.exitCode = e._tag === "Misconfigured" ? ExitCode.invalid : ExitCode.failed
        })
      )
    )
).pipe(
  Command.withDescription(
    "The gateway of the distributed mode: holds the connections of remote tools daemons (relavium daemon start --gateway) and answers workers' tool calls for them over NATS"
  )
)

/**
 * The server side of a daemon's reverse connection: tools daemons behind NAT
 * dial in (`Dial.ts`, `relavium daemon start --gateway URL`) and the server
 * reaches their tools over that socket. Used by the monolith at
 * `GET /rpc/daemon` and meant for a cloud gateway process as it is.
 *
 * The protocol, per connection:
 *
 * 1. The daemon opens a websocket to `DAEMON_RPC_PATH` with
 *    `authorization: Bearer <token>` and `x-relavium-daemon: <name>`.
 * 2. The server checks the token (constant time) before upgrading: a missing
 *    or wrong one is answered 401 and nothing is registered; a bad name 400;
 *    a plain (non-upgrade) request with a good token 426.
 * 3. Roles are reversed on the socket: the daemon SERVES `DaemonRpcs` and the
 *    server is the RPC client (`RpcClient.makeProtocolSocket`, never retried:
 *    a closed socket ends the connection). Each request carries the same
 *    bearer token back, for the daemon's `DaemonAuth` middleware.
 * 4. The connection is registered in `DaemonRegistry` under its name (the
 *    newest connection of a name is used; an older one takes over again when
 *    the newer closes), then the server sends a `Ping`: the daemon reports
 *    itself connected when it has answered it, so by then calls reach it.
 * 5. Liveness: the RPC client pings every 10 s and drops a daemon that misses
 *    a pong; the daemon drops a server it has not heard from in 30 s and
 *    redials. A dropped connection fails its calls with `tool_unavailable`.
 *
 * Reuse: a gateway process builds `DaemonRegistry.layerMemory`, mounts
 * `makeHttpApp({ authorize })` on its HTTP server, and answers tool calls with
 * `routerFor(registry, name)` (or `layerRouterGateway(name)` for one name);
 * `registry.subscribe` says when a name comes and goes (e.g. to subscribe to
 * its NATS subject).
 */
import { type HttpApp, HttpServerRequest, HttpServerResponse, Socket } from "@effect/platform"
import { RpcClient, type RpcClientError, RpcSerialization } from "@effect/rpc"
import {
  Cause,
  Context,
  Data,
  Deferred,
  type Duration,
  Effect,
  Either,
  Layer,
  Option,
  PubSub,
  Redacted,
  Schedule,
  Schema,
  type Scope,
  Stream
} from "effect"
import { DaemonRouter, ToolError } from "@relavium/ports"
import * as Daemon from "./Daemon.js"
import type { DaemonClient } from "./DaemonRouterLayers.js"
import { DaemonRpcs, layerAuthClient, tokenMatches, type Unauthorized } from "./DaemonRpcs.js"
import { observeSocket } from "./internal/observeSocket.js"

/** Where the monolith serves the daemons' websocket, beside its HTTP API. */
export const DAEMON_RPC_PATH = "/rpc/daemon"
/** The upgrade request header that names the daemon. */
export const DAEMON_NAME_HEADER = "x-relavium-daemon"
export const DEFAULT_DAEMON_NAME = "default"

export const DaemonName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
    message: () => "a daemon name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
  })
)

// ---------------------------------------------------------------------------
// The registry of connected daemons
// ---------------------------------------------------------------------------

/** One open connection of a daemon. */
export interface DaemonConnection {
  readonly name: string
  readonly connectedAt: Date
  readonly client: DaemonClient
  /** Completes when the connection has closed. */
  readonly closed: Effect.Effect<void>
}

export interface DaemonInfo {
  readonly name: string
  /** When the connection in use was opened. */
  readonly connectedAt: Date
  /** Open connections of this name (the newest is used). */
  readonly connections: number
}

export type RegistryChange = Data.TaggedEnum<{
  Connected: { readonly name: string }
  Disconnected: { readonly name: string }
}>
export const RegistryChange = Data.taggedEnum<RegistryChange>()

export interface DaemonRegistryService {
  /**
   * Adds a connection for as long as the current scope lives. The newest connection of a name is the
   * one `get` returns; when it goes, the previous one still open takes over.
   */
  readonly register: (connection: DaemonConnection) => Effect.Effect<void, never, Scope.Scope>
  readonly get: (name: string) => Effect.Effect<Option.Option<DaemonConnection>>
  readonly list: Effect.Effect<ReadonlyArray<DaemonInfo>>
  /** Subscribes now (for the scope): a name's first connection opening and its last one closing, from here on. */
  readonly subscribe: Effect.Effect<Stream.Stream<RegistryChange>, never, Scope.Scope>
}

export class DaemonRegistry extends Context.Tag("@relavium/daemon/DaemonRegistry")<DaemonRegistry, DaemonRegistryService>() {
  /** The daemons connected to this process. */
  static readonly layerMemory: Layer.Layer<DaemonRegistry> = Layer.scoped(
    DaemonRegistry,
    Effect.gen(function* () {
      const byName = new Map<string, Array<DaemonConnection>>()
      const hub = yield* Effect.acquireRelease(PubSub.unbounded<RegistryChange>(), PubSub.shutdown)
      const remove = (connection: DaemonConnection) =>
        Effect.suspend(() => {
          const open = byName.get(connection.name) ?? []
          const rest = open.filter((c) => c !== connection)
          if (rest.length === open.length) return Effect.void
          if (rest.length > 0) {
            byName.set(connection.name, rest)
            return Effect.void
          }
          byName.delete(connection.name)
          return PubSub.publish(hub, RegistryChange.Disconnected({ name: connection.name }))
        })
      return DaemonRegistry.of({
        register: (connection) =>
          Effect.acquireRelease(
            Effect.suspend(() => {
              const open = byName.get(connection.name) ?? []
              byName.set(connection.name, [...open, connection])
              return open.length === 0 ? PubSub.publish(hub, RegistryChange.Connected({ name: connection.name })) : Effect.void
            }),
            () => remove(connection)
          ).pipe(Effect.asVoid),
        get: (name) => Effect.sync(() => Option.fromNullable(byName.get(name)?.at(-1))),
        list: Effect.sync(() =>
          [...byName.entries()]
            .map(([name, open]) => ({ name, connectedAt: open.at(-1)!.connectedAt, connections: open.length }))
            .sort((a, b) => a.name.localeCompare(b.name))
        ),
        subscribe: Stream.fromPubSub(hub, { scoped: true })
      })
    })
  )
}

// ---------------------------------------------------------------------------
// The websocket endpoint
// ---------------------------------------------------------------------------

export interface GatewayOptions {
  /** Whether a bearer token presented on the upgrade request may connect a daemon. */
  readonly authorize: (presented: Redacted.Redacted<string>) => Effect.Effect<boolean>
  /** How long the first `Ping` may take before the connection is dropped (default 10 s). */
  readonly pingTimeout?: Duration.DurationInput | undefined
}

/** `authorize` for one shared token, compared in constant time. */
export const authorizeToken =
  (token: Redacted.Redacted<string>) =>
  (presented: Redacted.Redacted<string>): Effect.Effect<boolean> =>
    Effect.sync(() => Redacted.value(presented) !== "" && tokenMatches(token, Redacted.value(presented)))

const problem = (status: number, tag: string, message: string) =>
  HttpServerResponse.unsafeJson({ _tag: tag, message }, { status })

const decodeName = Schema.decodeUnknownEither(DaemonName)

/** The server's RPC client over one daemon's socket, in the current scope. */
const clientOver = (socket: Socket.Socket, token: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      Layer.mergeAll(
        // Never retried: the socket is the daemon's, and once it closes only the daemon can open another.
        RpcClient.layerProtocolSocket({ retryTransientErrors: false, retrySchedule: Schedule.stop }).pipe(
          Layer.provide(Layer.succeed(Socket.Socket, socket)),
          Layer.provide(RpcSerialization.layerJson)
        ),
        layerAuthClient(token)
      )
    )
    return yield* RpcClient.make(DaemonRpcs).pipe(Effect.provide(context))
  })

/** Serves one upgraded daemon socket: registers it, confirms it with a Ping, and returns once it has closed. */
const serveConnection = (
  registry: DaemonRegistryService,
  socket: Socket.Socket,
  name: string,
  token: Redacted.Redacted<string>,
  pingTimeout: Duration.DurationInput
) =>
  Effect.gen(function* () {
    const closed = yield* Deferred.make<void>()
    const observed = observeSocket(socket, { onEnd: Deferred.succeed(closed, undefined) })
    const client = yield* clientOver(observed, token)
    yield* registry.register({ name, connectedAt: new Date(), client, closed: Deferred.await(closed) })
    const ping = yield* client.Ping().pipe(
      Effect.timeoutFail({ duration: pingTimeout, onTimeout: () => "no answer to a ping" }),
      Effect.either
    )
    if (Either.isLeft(ping)) {
      const why = typeof ping.left === "string" ? ping.left : ping.left.message
      return yield* Effect.logWarning(`tools daemon '${name}' dropped: ${why}`)
    }
    yield* Deferred.await(closed)
  }).pipe(Effect.scoped)

const bearerOf = (header: string | undefined): Redacted.Redacted<string> | undefined => {
  if (header === undefined || !header.startsWith("Bearer ")) return undefined
  const token = header.slice("Bearer ".length).trim()
  return token === "" ? undefined : Redacted.make(token)
}

/**
 * The HTTP handler of the daemons' websocket endpoint (mount it at `DAEMON_RPC_PATH` with GET). Every
 * check happens before the upgrade, so a refused daemon never reaches the registry.
 */
export const makeHttpApp = (
  options: GatewayOptions
): Effect.Effect<HttpApp.Default<never, HttpServerRequest.HttpServerRequest>, never, DaemonRegistry> =>
  Effect.map(DaemonRegistry, (registry) => httpApp(registry, options))

/** The same handler over a given registry. */
export const httpApp = (
  registry: DaemonRegistryService,
  options: GatewayOptions
): HttpApp.Default<never, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const token = bearerOf(request.headers.authorization)
    if (token === undefined || !(yield* options.authorize(token))) {
      return problem(401, "Unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)")
    }
    const name = decodeName(request.headers[DAEMON_NAME_HEADER] ?? DEFAULT_DAEMON_NAME)
    if (Either.isLeft(name)) {
      return problem(400, "BadRequest", `${DAEMON_NAME_HEADER}: expected a daemon name: 1 to 64 letters, digits, '.', '_' or '-'`)
    }
    if (request.headers.upgrade?.toLowerCase() !== "websocket") {
      return problem(
        426,
        "UpgradeRequired",
        "this is the websocket endpoint for tools daemons: connect one with `relavium daemon start --gateway URL`"
      )
    }
    const socket = yield* request.upgrade.pipe(Effect.orDie)
    yield* serveConnection(registry, socket, name.right, token, options.pingTimeout ?? "10 seconds")
    return HttpServerResponse.empty()
  })

// ---------------------------------------------------------------------------
// Routing tool calls to a connected daemon
// ---------------------------------------------------------------------------

export interface RouterGatewayOptions {
  /**
   * The router used while no daemon of the name is connected (the monolith's in-process daemon).
   * Without one, such a call fails with `tool_unavailable`.
   */
  readonly orElse?: Layer.Layer<DaemonRouter> | undefined
  /** How to connect a daemon, for the `tool_unavailable` message (default: the `relavium daemon start` line). */
  readonly hint?: string | undefined
}

type DaemonRouterService = Context.Tag.Service<DaemonRouter>

const defaultHint = (name: string) =>
  `start one with \`relavium daemon start --gateway wss://HOST:PORT${DAEMON_RPC_PATH} --token …${name === DEFAULT_DAEMON_NAME ? "" : ` --name ${name}`}\``

const notConnected = (name: string, hint: string) =>
  new ToolError({ code: "tool_unavailable", message: `no tools daemon named '${name}' is connected; ${hint}` })

const dropped = (name: string) =>
  new ToolError({
    code: "tool_unavailable",
    message: `the tools daemon '${name}' disconnected during the call; its result is unknown (it reconnects by itself)`
  })

const transportError =
  (name: string) =>
  (error: RpcClientError.RpcClientError | Unauthorized | ToolError): ToolError => {
    switch (error._tag) {
      case "ToolError":
        return error
      case "Unauthorized":
        return new ToolError({ code: "tool_denied", message: `the tools daemon '${name}' refused the call: ${error.message}` })
      case "RpcClientError":
        return dropped(name)
    }
  }

/**
 * A call over a connection, failing with `tool_unavailable` as soon as the connection closes. A closing
 * client ends its open calls as interrupted; that is the connection dropping too (when this fiber is
 * itself interrupted, no handler runs).
 */
const overConnection = <A>(connection: DaemonConnection, call: Effect.Effect<A, ToolError>) =>
  call.pipe(
    Effect.raceFirst(Effect.zipRight(connection.closed, Effect.fail(dropped(connection.name)))),
    Effect.catchAllCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.fail(dropped(connection.name)) : Effect.failCause(cause)))
  )

/** A `DaemonRouter` that sends tool calls to the connected daemon named `name` (else to `orElse`). */
export const routerFor = (
  registry: DaemonRegistryService,
  name: string,
  options: { readonly orElse?: DaemonRouterService | undefined; readonly hint?: string | undefined } = {}
): DaemonRouterService => {
  const hint = options.hint ?? defaultHint(name)
  const withConnection = <A>(
    use: (connection: DaemonConnection) => Effect.Effect<A, ToolError>,
    fallback: (router: DaemonRouterService) => Effect.Effect<A, ToolError>
  ) =>
    Effect.flatMap(
      registry.get(name),
      Option.match({
        onNone: () => (options.orElse !== undefined ? fallback(options.orElse) : Effect.fail(notConnected(name, hint))),
        onSome: (connection) => overConnection(connection, use(connection))
      })
    )
  return DaemonRouter.of({
    tools: (names) =>
      withConnection(
        (connection) => connection.client.ListTools({ names }).pipe(Effect.mapError(transportError(name))),
        (router) => router.tools(names)
      ),
    execute: (call, executeOptions) =>
      withConnection(
        (connection) => Daemon.collectResult(connection.client.Execute({ call }).pipe(Stream.mapError(transportError(name))), executeOptions),
        (router) => router.execute(call, executeOptions)
      )
  })
}

/**
 * `DaemonRouter` over the daemon named `name` connected to this process's `DaemonRegistry`. With
 * `orElse`, calls made while none is connected go there (it is built with this layer; a lazy one such
 * as `layerLocal` starts nothing until then).
 */
export const layerRouterGateway = (
  name: string = DEFAULT_DAEMON_NAME,
  options: RouterGatewayOptions = {}
): Layer.Layer<DaemonRouter, never, DaemonRegistry> =>
  Layer.scoped(
    DaemonRouter,
    Effect.gen(function* () {
      const registry = yield* DaemonRegistry
      const orElse = options.orElse === undefined ? undefined : Context.get(yield* Layer.build(options.orElse), DaemonRouter)
      return routerFor(registry, name, { orElse, hint: options.hint })
    })
  )

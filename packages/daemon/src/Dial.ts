/**
 * The daemon side of the reverse connection: a tools daemon on a machine
 * behind NAT dials OUT to a gateway (the monolith's `GET /rpc/daemon`, later
 * a cloud gateway) and SERVES `DaemonRpcs` over that outbound websocket, so
 * the server can call its tools (`relavium daemon start --gateway URL`).
 * The server side and the whole per-connection protocol are in `Gateway.ts`.
 *
 * How: `RpcServer.layerProtocolSocketServer` over a `SocketServer` whose
 * `run` does not accept connections but makes them, one at a time: dial
 * (undici's WebSocket, `authorization: Bearer <token>` and
 * `x-relavium-daemon: <name>` on the upgrade request, an optional CA for a
 * self-signed server), serve the socket until it closes, wait, dial again.
 * The wait grows from `reconnectDelay.initial` to `.max` while dials fail and
 * starts over after a connection that opened. A server silent for
 * `idleTimeout` (it pings every 10 s) is taken for dead and redialed.
 *
 * A failed handshake is explained by a plain GET of the same URL with the
 * token: 401 means the token is wrong, and dialing stops (`join` fails with
 * `DialError`); anything else is retried. The state (`Connecting`,
 * `Connected` once the server's first Ping is answered, `Waiting`, `Refused`)
 * is observable for a CLI to print.
 */
import { Socket, SocketServer } from "@effect/platform"
import { Agent, request as undiciRequest, WebSocket as UndiciWebSocket } from "@effect/platform-node/Undici"
import { RpcSerialization, RpcServer } from "@effect/rpc"
import {
  Data,
  Deferred,
  Duration,
  Effect,
  Either,
  Layer,
  Redacted,
  Schema,
  type Scope,
  type Stream,
  SubscriptionRef
} from "effect"
import * as Daemon from "./Daemon.js"
import { DaemonRpcs, layerAuth } from "./DaemonRpcs.js"
import { DAEMON_NAME_HEADER, DaemonName, DEFAULT_DAEMON_NAME } from "./Gateway.js"
import { observeSocket } from "./internal/observeSocket.js"

export interface DialOptions extends Daemon.DaemonOptions {
  /** The gateway's websocket URL, e.g. `wss://127.0.0.1:7430/rpc/daemon`. */
  readonly url: string
  /** The bearer token the gateway expects (the monolith's `monolith.token`). */
  readonly token: Redacted.Redacted<string> | string
  /** The name this daemon is reached by (default `default`). */
  readonly name?: string | undefined
  /** A PEM certificate to trust for `wss://` (e.g. the monolith's self-signed `monolith-cert.pem`); default: the system's CAs. */
  readonly ca?: string | undefined
  /** The pause before redialing: from `initial` (default 250 ms), doubling while dials fail, up to `max` (default 5 s). */
  readonly reconnectDelay?: { readonly initial?: Duration.DurationInput; readonly max?: Duration.DurationInput } | undefined
  /** A connected server that sends nothing for this long is taken for dead (default 30 s; the server pings every 10 s). */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** How long the websocket handshake may take (default 10 s). */
  readonly openTimeout?: Duration.DurationInput | undefined
}

export type DialState = Data.TaggedEnum<{
  /** Dialing (attempt 1 is the first dial; the count restarts after a connection). */
  Connecting: { readonly attempt: number }
  /** The gateway has the daemon: it answered the gateway's first Ping on this connection. */
  Connected: { readonly url: string; readonly name: string }
  /** The connection failed or dropped; the next dial is in `retryInMs`. */
  Waiting: { readonly reason: string; readonly retryInMs: number; readonly wasConnected: boolean }
  /** The gateway refused the token (401); dialing has stopped. */
  Refused: { readonly message: string }
}>
export const DialState = Data.taggedEnum<DialState>()

export class DialError extends Data.TaggedError("DialError")<{
  readonly reason: "invalid" | "refused"
  readonly message: string
}> {}

export interface DialedDaemon {
  readonly daemon: Daemon.DaemonService
  readonly state: Effect.Effect<DialState>
  /** The current state, then every change. */
  readonly changes: Stream.Stream<DialState>
  /** Fails when dialing has stopped for good (the token was refused); never succeeds. */
  readonly join: Effect.Effect<never, DialError>
}

const describeCause = (cause: unknown): string => {
  const error = cause as { readonly message?: string; readonly code?: string; readonly cause?: unknown } | undefined
  const inner = error?.cause as { readonly message?: string; readonly code?: string } | undefined
  const code = inner?.code ?? error?.code
  const message = inner?.message ?? error?.message ?? String(cause)
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message
}

/**
 * Starts the daemon of `options.workspace` and keeps it dialed in to the gateway at `options.url`
 * until the scope closes.
 */
export const dialGateway = (options: DialOptions): Effect.Effect<DialedDaemon, DialError, Scope.Scope> =>
  Effect.gen(function* () {
    const invalid = (message: string) => new DialError({ reason: "invalid", message })
    const url = yield* Effect.try({
      try: () => new URL(options.url),
      catch: () => invalid(`${options.url}: not a URL (expected e.g. wss://HOST:PORT/rpc/daemon)`)
    })
    if (url.protocol !== "ws:" && url.protocol !== "wss:") {
      return yield* invalid(`${options.url}: expected a ws:// or wss:// URL`)
    }
    const name = options.name ?? DEFAULT_DAEMON_NAME
    if (Either.isLeft(Schema.decodeUnknownEither(DaemonName)(name))) {
      return yield* invalid(`daemon name '${name}': expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`)
    }
    const token = typeof options.token === "string" ? Redacted.make(options.token) : options.token
    if (Redacted.value(token).trim() === "") return yield* invalid("the gateway token is empty")
    const daemon = yield* Daemon.make(options).pipe(Effect.mapError((e) => invalid(e.message)))

    const initialDelay = Duration.toMillis(options.reconnectDelay?.initial ?? "250 millis")
    const maxDelay = Duration.toMillis(options.reconnectDelay?.max ?? "5 seconds")
    const idleMs = Duration.toMillis(options.idleTimeout ?? "30 seconds")
    const openTimeout = options.openTimeout ?? "10 seconds"
    const href = url.toString()
    const probeUrl = href.replace(/^ws/, "http")
    const headers = { authorization: `Bearer ${Redacted.value(token)}`, [DAEMON_NAME_HEADER]: name }

    const state = yield* SubscriptionRef.make<DialState>(DialState.Connecting({ attempt: 1 }))
    const stopped = yield* Deferred.make<never, DialError>()
    const dispatcher = yield* Effect.acquireRelease(
      Effect.sync(() => new Agent(options.ca === undefined ? {} : { connect: { ca: options.ca } })),
      (agent) => Effect.promise(() => agent.destroy())
    )

    // Per connection: whether the gateway's first Ping has been answered (that is when it has us).
    let confirmed = false
    const handlers = DaemonRpcs.toLayer({
      Execute: ({ call }) => daemon.execute(call),
      ListTools: ({ names }) => daemon.tools(names),
      Ping: () =>
        Effect.tap(daemon.ping, () => {
          if (confirmed) return Effect.void
          confirmed = true
          return SubscriptionRef.set(state, DialState.Connected({ url: href, name }))
        })
    })

    /** Why a handshake failed, from a plain GET of the same URL: the HTTP status, or the network error. */
    const probe = Effect.tryPromise({
      try: async () => {
        const response = await undiciRequest(probeUrl, { method: "GET", headers, dispatcher, headersTimeout: 10_000, bodyTimeout: 10_000 })
        await response.body.dump()
        return response.statusCode
      },
      catch: describeCause
    }).pipe(Effect.either)

    /** One connection: dial, serve it with `handler` until it ends; says whether it opened and why it ended. */
    const connectOnce = <E, R>(handler: (socket: Socket.Socket) => Effect.Effect<unknown, E, R>) =>
      Effect.gen(function* () {
        let opened = false
        let closeReason: string | undefined
        let silent = false
        const clock = yield* Effect.clock
        let lastSeen = clock.unsafeCurrentTimeMillis()
        confirmed = false
        const acquire = Effect.acquireRelease(
          Effect.sync(() => {
            const ws = new UndiciWebSocket(href, { headers, dispatcher })
            ws.addEventListener("open", () => {
              opened = true
            })
            ws.addEventListener("close", (event) => {
              closeReason = event.code === 1000 || event.code === 1005 ? "the gateway closed the connection" : `the connection dropped (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`
            })
            return ws as unknown as globalThis.WebSocket
          }),
          (ws) => Effect.sync(() => ws.close(1000))
        )
        const watchdog = Effect.gen(function* () {
          for (;;) {
            yield* Effect.sleep(Math.max(50, Math.floor(idleMs / 4)))
            const now = clock.unsafeCurrentTimeMillis()
            if (opened && now - lastSeen > idleMs) {
              silent = true
              return yield* new Socket.SocketGenericError({ reason: "Read", cause: "the gateway went silent" })
            }
            if (!opened) lastSeen = now
          }
        })
        const socket = observeSocket(yield* Socket.fromWebSocket(acquire, { openTimeout }), {
          onMessage: () => {
            lastSeen = clock.unsafeCurrentTimeMillis()
          },
          watchdog
        })
        yield* Effect.exit(handler(socket))
        const reason = silent
          ? `the gateway sent nothing for ${Duration.format(Duration.millis(idleMs))}`
          : (closeReason ?? "the connection ended")
        return { opened, reason }
      })

    const dialing: SocketServer.SocketServer["Type"] = {
      address: { _tag: "TcpAddress", hostname: url.hostname, port: Number(url.port || (url.protocol === "wss:" ? 443 : 80)) },
      run: (handler) =>
        Effect.gen(function* () {
          let failures = 0
          for (let attempt = 1; ; attempt++) {
            yield* SubscriptionRef.set(state, DialState.Connecting({ attempt }))
            const outcome = yield* connectOnce(handler)
            let reason = outcome.reason
            if (!outcome.opened) {
              const status = yield* probe
              if (Either.isRight(status) && status.right === 401) {
                const message = `the gateway at ${href} refused the daemon's token (401)`
                yield* SubscriptionRef.set(state, DialState.Refused({ message }))
                yield* Deferred.fail(stopped, new DialError({ reason: "refused", message }))
                return yield* Effect.never
              }
              reason = Either.isRight(status)
                ? `the gateway at ${href} answered HTTP ${status.right} instead of a websocket`
                : `cannot reach the gateway at ${href} (${status.left})`
            }
            failures = outcome.opened ? 0 : failures + 1
            if (outcome.opened) attempt = 0
            const retryInMs = Math.min(maxDelay, initialDelay * 2 ** Math.max(0, failures - 1))
            yield* SubscriptionRef.set(state, DialState.Waiting({ reason, retryInMs, wasConnected: outcome.opened }))
            yield* Effect.sleep(retryInMs)
          }
        })
    }

    yield* Layer.build(
      RpcServer.layer(DaemonRpcs).pipe(
        Layer.provide(RpcServer.layerProtocolSocketServer),
        Layer.provide(Layer.mergeAll(handlers, layerAuth(token), RpcSerialization.layerJson, Layer.succeed(SocketServer.SocketServer, dialing)))
      )
    )
    return { daemon, state: SubscriptionRef.get(state), changes: state.changes, join: Deferred.await(stopped) }
  })

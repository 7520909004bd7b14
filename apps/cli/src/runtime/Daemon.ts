/**
 * The tools daemon of one workspace as a standalone process
 * (`relavium daemon start`), in one of two ways:
 *
 * - listening: the DaemonRpcs websocket endpoint on ws://127.0.0.1:PORT/rpc,
 *   for engines in other processes (`layerRpcClient`). Token: the flag, else
 *   RELAVIUM_DAEMON_TOKEN, else a random one printed once at start.
 * - dialing out to a monolith (or gateway) and serving its tool calls over
 *   that connection, for a machine the server cannot reach (NAT). Token: the
 *   flag, else RELAVIUM_TOKEN (the monolith's monolith.token); never printed.
 *   Prints a line when connected and when reconnecting; a refused token ends
 *   it with exit 2.
 *
 * The data directory and its key file are excluded from the file tools.
 * It needs no layers beyond the platform: it builds the daemon itself, which
 * loads only when a daemon starts.
 */
import * as Crypto from "node:crypto"
import { readFileSync } from "node:fs"
import { Console, Effect, Either, Option, Redacted, Stream } from "effect"
import { KeySecrets } from "@relavium/keys"
import { daemonErrors, ExitCode } from "../ExitCodes.js"
import * as Settings from "./Settings.js"
import * as Telemetry from "./Telemetry.js"

const loadDaemon = () => import("@relavium/daemon")

export const DEFAULT_DAEMON_PORT = 7420
export const DAEMON_PATH = "/rpc/daemon"

/** `https://host:port` → `wss://host:port/rpc/daemon`; a ws(s):// URL with a path is taken as it is. */
export const gatewayUrl = (given: string): string | undefined => {
  let url: URL
  try {
    url = new URL(given)
  } catch {
    return undefined
  }
  const protocol = { "https:": "wss:", "http:": "ws:", "wss:": "wss:", "ws:": "ws:" }[url.protocol]
  if (protocol === undefined) return undefined
  const path = url.pathname === "/" || url.pathname === "" ? DAEMON_PATH : url.pathname
  return `${protocol}//${url.host}${path}${url.search}`
}

export const fail = (message: string, code: number) =>
  Effect.sync(() => {
    process.stderr.write(`relavium: ${message}\n`)
    process.exitCode = code
  })

export const listen = (options: { readonly root: string; readonly port: number; readonly token: Option.Option<Redacted.Redacted<string>> }) =>
  Effect.gen(function* () {
    const { port, root } = options
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return yield* fail(`--port must be between 0 and 65535 (got ${port})`, ExitCode.invalid)
    }
    const fromEnv = yield* Settings.daemonToken
    const token = Option.orElse(options.token, () => fromEnv)
    const generated = Option.isNone(token)
    const secret = Option.getOrElse(token, () => Redacted.make(Crypto.randomBytes(32).toString("base64url")))
    const { serveDaemon } = yield* Effect.promise(loadDaemon)
    const excludedPaths = KeySecrets.excludedPaths(yield* Settings.dataDir(), root)
    const server = yield* serveDaemon({ workspace: root, port, host: "127.0.0.1", token: secret, excludedPaths })
    yield* Console.log(`relavium daemon: serving ${root} at ${server.url}`)
    if (generated) {
      yield* Console.log(`token (shown once; pass it to clients, or set RELAVIUM_DAEMON_TOKEN to choose one): ${Redacted.value(secret)}`)
    }
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Telemetry.provide("daemon"),
    Effect.catchTag("DaemonServeError", (error) => fail(`the daemon cannot start: ${error.message}`, daemonErrors[error._tag].exit))
  )

const readCa = (path: string) =>
  Effect.try({ try: () => readFileSync(path, "utf8"), catch: (e) => `--ca ${path}: cannot read it: ${(e as Error).message}` })

export const dialOut = (options: {
  readonly root: string
  readonly gateway: string
  readonly token: Option.Option<Redacted.Redacted<string>>
  readonly name: Option.Option<string>
  readonly ca: Option.Option<string>
}) =>
  Effect.gen(function* () {
    const url = gatewayUrl(options.gateway)
    if (url === undefined) {
      return yield* fail(`--gateway ${options.gateway}: expected a wss:// (or ws://, https://) URL, e.g. wss://HOST:7430${DAEMON_PATH}`, ExitCode.invalid)
    }
    const fromEnv = yield* Settings.clientToken
    const token = Option.orElse(options.token, () => fromEnv)
    if (Option.isNone(token)) {
      return yield* fail("no token for the gateway: pass --token or set RELAVIUM_TOKEN (a monolith's token is in its monolith.token)", ExitCode.invalid)
    }
    const ca = Option.isSome(options.ca) ? yield* Effect.either(readCa(options.ca.value)) : Either.right(undefined)
    if (Either.isLeft(ca)) return yield* fail(ca.left, ExitCode.invalid)
    const name = Option.getOrElse(options.name, () => "default")
    const { dialGateway } = yield* Effect.promise(loadDaemon)
    // The data directory and the key file are never reachable by the file tools.
    const excludedPaths = KeySecrets.excludedPaths(yield* Settings.dataDir(), options.root)
    const dialed = yield* dialGateway({ url, token: token.value, name, ca: ca.right, workspace: options.root, excludedPaths })
    let lastReason: string | undefined
    yield* dialed.changes.pipe(
      Stream.runForEach((state) => {
        switch (state._tag) {
          case "Connected":
            lastReason = undefined
            return Console.log(`relavium daemon: connected to ${url} as '${name}', serving ${options.root}`)
          case "Waiting": {
            // A gateway that stays away is said once per distinct reason, not at every attempt.
            if (state.reason === lastReason) return Effect.void
            lastReason = state.reason
            const hint = /CERT|certificate|TLS|SSL/.test(state.reason) ? "; pass --ca with the monolith's monolith-cert.pem" : ""
            return Console.log(
              state.wasConnected
                ? `relavium daemon: lost the connection to the gateway (${state.reason}); reconnecting`
                : `relavium daemon: ${state.reason}${hint}; retrying until it answers`
            )
          }
          default:
            return Effect.void
        }
      }),
      Effect.forkScoped
    )
    return yield* dialed.join
  }).pipe(
    Effect.scoped,
    Telemetry.provide("daemon"),
    Effect.catchTag("DialError", (error) =>
      error.reason === "refused"
        ? fail(`${error.message}; pass the gateway's token (a monolith's is the contents of its monolith.token) with --token or RELAVIUM_TOKEN`, daemonErrors[error._tag].exit)
        : fail(`the daemon cannot start: ${error.message}`, daemonErrors[error._tag].exit)
    )
  )

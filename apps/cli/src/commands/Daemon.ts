/**
 * `relavium daemon start` — the tools daemon of one workspace as a standalone
 * process, in one of two ways:
 *
 * - listening (default): the DaemonRpcs websocket endpoint on
 *   ws://127.0.0.1:PORT/rpc, for engines in other processes
 *   (`layerRpcClient`). Token: --token, else RELAVIUM_DAEMON_TOKEN, else a
 *   random one printed once at start.
 * - `--gateway URL`: dials OUT to a monolith (or gateway) and serves its tool
 *   calls over that connection, for a machine the server cannot reach (NAT).
 *   Token: --token, else RELAVIUM_TOKEN (the monolith's monolith.token); never
 *   printed. Prints a line when connected and when reconnecting; a refused
 *   token ends it with exit 2.
 *
 * Layers needed: none beyond the platform (it builds the daemon itself).
 */
import * as Crypto from "node:crypto"
import { readFileSync } from "node:fs"
import * as NodePath from "node:path"
import { Command, Options } from "@effect/cli"
import { Config, Console, Effect, Either, Option, Redacted, Stream } from "effect"

/** The daemon's RPC server loads only when this command runs, so other commands do not pay for it at start-up. */
const loadDaemon = () => import("@relavium/daemon")

export const DEFAULT_DAEMON_PORT = 7420
const DAEMON_PATH = "/rpc/daemon"

const workspaceOption = Options.directory("workspace", { exists: "yes" }).pipe(
  Options.withDefault("."),
  Options.withDescription("the directory the daemon's file tools are confined to (default: the current directory)")
)
const portOption = Options.integer("port").pipe(
  Options.optional,
  Options.withDescription(`the port to listen on, on 127.0.0.1 only (default ${DEFAULT_DAEMON_PORT}; 0 picks a free one); not with --gateway`)
)
const tokenOption = Options.redacted("token").pipe(
  Options.optional,
  Options.withDescription(
    "the bearer token: the one clients must present (default: RELAVIUM_DAEMON_TOKEN, else a random one printed once); with --gateway, the one the gateway expects (default: RELAVIUM_TOKEN)"
  )
)
const gatewayOption = Options.text("gateway").pipe(
  Options.optional,
  Options.withDescription(
    `dial out to a monolith or gateway at this URL instead of listening, e.g. wss://HOST:7430${DAEMON_PATH} (an https:// URL of a monolith works too)`
  )
)
const nameOption = Options.text("name").pipe(
  Options.optional,
  Options.withDescription("with --gateway: the name the daemon is reached by (default: default)")
)
const caOption = Options.file("ca", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription("with --gateway: a PEM certificate to trust (the monolith's monolith-cert.pem); default: the system's CAs")
)

const fail = (message: string, code: number) =>
  Effect.sync(() => {
    process.stderr.write(`relavium: ${message}\n`)
    process.exitCode = code
  })

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

const listen = (options: { readonly root: string; readonly port: number; readonly token: Option.Option<Redacted.Redacted<string>> }) =>
  Effect.gen(function* () {
    const { port, root } = options
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return yield* fail(`--port must be between 0 and 65535 (got ${port})`, 2)
    }
    const fromEnv = yield* Config.option(Config.redacted("RELAVIUM_DAEMON_TOKEN"))
    const token = Option.orElse(options.token, () => fromEnv)
    const generated = Option.isNone(token)
    const secret = Option.getOrElse(token, () => Redacted.make(Crypto.randomBytes(32).toString("base64url")))
    const { serveDaemon } = yield* Effect.promise(loadDaemon)
    const server = yield* serveDaemon({ workspace: root, port, host: "127.0.0.1", token: secret })
    yield* Console.log(`relavium daemon: serving ${root} at ${server.url}`)
    if (generated) {
      yield* Console.log(`token (shown once; pass it to clients, or set RELAVIUM_DAEMON_TOKEN to choose one): ${Redacted.value(secret)}`)
    }
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.catchTag("DaemonServeError", (error) => fail(`the daemon cannot start: ${error.message}`, 1))
  )

const readCa = (path: string) =>
  Effect.try({ try: () => readFileSync(path, "utf8"), catch: (e) => `--ca ${path}: cannot read it: ${(e as Error).message}` })

const dialOut = (options: {
  readonly root: string
  readonly gateway: string
  readonly token: Option.Option<Redacted.Redacted<string>>
  readonly name: Option.Option<string>
  readonly ca: Option.Option<string>
}) =>
  Effect.gen(function* () {
    const url = gatewayUrl(options.gateway)
    if (url === undefined) {
      return yield* fail(`--gateway ${options.gateway}: expected a wss:// (or ws://, https://) URL, e.g. wss://HOST:7430${DAEMON_PATH}`, 2)
    }
    const fromEnv = yield* Config.option(Config.redacted("RELAVIUM_TOKEN"))
    const token = Option.orElse(options.token, () => fromEnv)
    if (Option.isNone(token)) {
      return yield* fail("no token for the gateway: pass --token or set RELAVIUM_TOKEN (a monolith's token is in its monolith.token)", 2)
    }
    const ca = Option.isSome(options.ca) ? yield* Effect.either(readCa(options.ca.value)) : Either.right(undefined)
    if (Either.isLeft(ca)) return yield* fail(ca.left, 2)
    const name = Option.getOrElse(options.name, () => "default")
    const { dialGateway } = yield* Effect.promise(loadDaemon)
    const dialed = yield* dialGateway({ url, token: token.value, name, ca: ca.right, workspace: options.root })
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
    Effect.catchTag("DialError", (error) =>
      error.reason === "refused"
        ? fail(`${error.message}; pass the gateway's token (a monolith's is the contents of its monolith.token) with --token or RELAVIUM_TOKEN`, 2)
        : fail(`the daemon cannot start: ${error.message}`, 2)
    )
  )

const start = Command.make(
  "start",
  { workspace: workspaceOption, port: portOption, token: tokenOption, gateway: gatewayOption, name: nameOption, ca: caOption },
  ({ ca, gateway, name, port, token, workspace }) => {
    const root = NodePath.resolve(workspace)
    if (Option.isSome(gateway)) {
      if (Option.isSome(port)) return fail("--port is for listening; with --gateway the daemon dials out and listens on no port", 2)
      return dialOut({ root, gateway: gateway.value, token, name, ca })
    }
    if (Option.isSome(name) || Option.isSome(ca)) return fail("--name and --ca go with --gateway URL", 2)
    return listen({ root, port: Option.getOrElse(port, () => DEFAULT_DAEMON_PORT), token })
  }
).pipe(
  Command.withDescription(
    "Run the tools daemon for a workspace: websocket RPC on 127.0.0.1 (token required), or dialed in to a monolith with --gateway URL"
  )
)

export const daemon = Command.make("daemon").pipe(
  Command.withDescription("The machine-local tools daemon (files, commands, git, HTTPS, MCP) confined to a workspace"),
  Command.withSubcommands([start])
)

/**
 * `relavium daemon start [--workspace DIR] [--port N] [--token T]` — the
 * tools daemon of one workspace as a standalone process: the DaemonRpcs
 * websocket endpoint on ws://127.0.0.1:PORT/rpc, for engines in other
 * processes (`layerRpcClient`). The token comes from --token, else
 * RELAVIUM_DAEMON_TOKEN, else a random one printed once at start.
 * Layers needed: none beyond the platform (it builds the daemon itself).
 */
import * as Crypto from "node:crypto"
import * as NodePath from "node:path"
import { Command, Options } from "@effect/cli"
import { Config, Console, Effect, Option, Redacted } from "effect"

/** The daemon's RPC server loads only when this command runs, so other commands do not pay for it at start-up. */
const loadDaemon = () => import("@relavium/daemon")

export const DEFAULT_DAEMON_PORT = 7420

const workspaceOption = Options.directory("workspace", { exists: "yes" }).pipe(
  Options.withDefault("."),
  Options.withDescription("the directory the daemon's file tools are confined to (default: the current directory)")
)
const portOption = Options.integer("port").pipe(
  Options.withDefault(DEFAULT_DAEMON_PORT),
  Options.withDescription(`the port to listen on, on 127.0.0.1 only (default ${DEFAULT_DAEMON_PORT}; 0 picks a free one)`)
)
const tokenOption = Options.redacted("token").pipe(
  Options.withFallbackConfig(Config.redacted("RELAVIUM_DAEMON_TOKEN")),
  Options.optional,
  Options.withDescription("the bearer token clients must present (default: RELAVIUM_DAEMON_TOKEN, else a random one printed once)")
)

const start = Command.make("start", { workspace: workspaceOption, port: portOption, token: tokenOption }, ({ port, token, workspace }) =>
  Effect.gen(function* () {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      yield* Console.error(`relavium: --port must be between 0 and 65535 (got ${port})`)
      process.exitCode = 2
      return
    }
    const generated = Option.isNone(token)
    const secret = Option.getOrElse(token, () => Redacted.make(Crypto.randomBytes(32).toString("base64url")))
    const root = NodePath.resolve(workspace)
    const { serveDaemon } = yield* Effect.promise(loadDaemon)
    const server = yield* serveDaemon({ workspace: root, port, host: "127.0.0.1", token: secret })
    yield* Console.log(`relavium daemon: serving ${root} at ${server.url}`)
    if (generated) {
      yield* Console.log(`token (shown once; pass it to clients, or set RELAVIUM_DAEMON_TOKEN to choose one): ${Redacted.value(secret)}`)
    }
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.catchTag("DaemonServeError", (error) =>
      Effect.sync(() => {
        process.stderr.write(`relavium: the daemon cannot start: ${error.message}\n`)
        process.exitCode = 1
      })
    )
  )
).pipe(Command.withDescription("Run the tools daemon for a workspace (websocket RPC on 127.0.0.1, token required)"))

export const daemon = Command.make("daemon").pipe(
  Command.withDescription("The machine-local tools daemon (files, commands, git, HTTPS, MCP) confined to a workspace"),
  Command.withSubcommands([start])
)

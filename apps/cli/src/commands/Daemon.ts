/**
 * `relavium daemon start` — the tools daemon of one workspace as a standalone
 * process (runtime/Daemon.ts): listening on 127.0.0.1 (default), or dialed
 * out to a monolith or gateway with `--gateway URL`.
 */
import { Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import { DAEMON_PATH, DEFAULT_DAEMON_PORT } from "../runtime/Daemon.js"

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

const startConfig = { workspace: workspaceOption, port: portOption, token: tokenOption, gateway: gatewayOption, name: nameOption, ca: caOption }

const start = Command.make("start", startConfig, lazy(() => import("../handlers/Daemon.js"), (m) => m.start)).pipe(
  Command.withDescription(
    "Run the tools daemon for a workspace: websocket RPC on 127.0.0.1 (token required), or dialed in to a monolith with --gateway URL"
  )
)

export const daemon = Command.make("daemon").pipe(
  Command.withDescription("The machine-local tools daemon (files, commands, git, HTTPS, MCP) confined to a workspace"),
  Command.withSubcommands([start])
)

/** What each command's handler gets (handlers/Daemon.ts). */
export interface DaemonArgs {
  readonly start: Command.Command.ParseConfig<typeof startConfig>
}

/**
 * `relavium daemon start` — the tools daemon of one workspace as a standalone
 * process (runtime/Daemon.ts): listening on 127.0.0.1 (default), or dialed
 * out to a monolith or gateway with `--gateway URL`.
 */
import * as NodePath from "node:path"
import { Command, Options } from "@effect/cli"
import { Option } from "effect"
import { ExitCode } from "../ExitCodes.js"
import { DAEMON_PATH, DEFAULT_DAEMON_PORT, dialOut, fail, listen } from "../runtime/Daemon.js"

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

const start = Command.make(
  "start",
  { workspace: workspaceOption, port: portOption, token: tokenOption, gateway: gatewayOption, name: nameOption, ca: caOption },
  ({ ca, gateway, name, port, token, workspace }) => {
    const root = NodePath.resolve(workspace)
    if (Option.isSome(gateway)) {
      if (Option.isSome(port)) return fail("--port is for listening; with --gateway the daemon dials out and listens on no port", ExitCode.invalid)
      return dialOut({ root, gateway: gateway.value, token, name, ca })
    }
    if (Option.isSome(name) || Option.isSome(ca)) return fail("--name and --ca go with --gateway URL", ExitCode.invalid)
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

/**
 * `relavium daemon start` — the tools daemon of one workspace as a standalone
 * process (runtime/Daemon.ts): listening on 127.0.0.1 (default), or dialed
 * out to a monolith or gateway with `--gateway URL`. Flags in commands/Daemon.ts.
 */
import * as NodePath from "node:path"
import { Option } from "effect"
import { ExitCode } from "../ExitCodes.js"
import type { DaemonArgs } from "../commands/Daemon.js"
import { DEFAULT_DAEMON_PORT, dialOut, fail, listen } from "../runtime/Daemon.js"

export const start = ({ ca, gateway, name, port, token, workspace }: DaemonArgs["start"]) => {
  const root = NodePath.resolve(workspace)
  if (Option.isSome(gateway)) {
    if (Option.isSome(port)) return fail("--port is for listening; with --gateway the daemon dials out and listens on no port", ExitCode.invalid)
    return dialOut({ root, gateway: gateway.value, token, name, ca })
  }
  if (Option.isSome(name) || Option.isSome(ca)) return fail("--name and --ca go with --gateway URL", ExitCode.invalid)
  return listen({ root, port: Option.getOrElse(port, () => DEFAULT_DAEMON_PORT), token })
}

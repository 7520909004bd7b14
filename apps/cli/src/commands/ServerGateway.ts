/**
 * `relavium server gateway` (handlers/ServerGateway.ts): the gateway of runtime/Gateway.ts until a signal
 * stops it (exit 0). A gateway that cannot reach NATS says so on one line and
 * exits 1; one that loses NATS for good (the client gave up reconnecting)
 * exits 1 the same way; a missing setting exits 2.
 */
import { Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import * as Settings from "../runtime/Settings.js"
import { secretFlag, textFlag } from "./Flags.js"

const gatewayConfig = {
  host: Options.text("host").pipe(
    Options.withDefault("127.0.0.1"),
    Options.withDescription("the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 to take daemons from other machines)")
  ),
  port: Options.integer("port").pipe(Options.withDefault(7432), Options.withDescription("the port to listen on (0: any free port; the URL is printed)")),
  token: secretFlag("token", Settings.token, "the bearer token daemons must present (relavium daemon start --token)"),
  natsUrl: secretFlag("nats-url", Settings.natsUrl, "NATS (tool calls from workers): nats://host:port, several comma-separated"),
  subjectPrefix: textFlag("subject-prefix", Settings.subjectPrefix, "relavium", "the NATS subject prefix of this deployment"),
  tlsCert: Options.file("tls-cert", { exists: "yes" }).pipe(Options.optional, Options.withDescription("serve wss:// with this PEM certificate (with --tls-key)")),
  tlsKey: Options.file("tls-key", { exists: "yes" }).pipe(Options.optional, Options.withDescription("the PEM private key of --tls-cert"))
}

export const gateway = Command.make("gateway", gatewayConfig, lazy(() => import("../handlers/ServerGateway.js"), (m) => m.gateway)).pipe(
  Command.withDescription(
    "The gateway of the distributed mode: holds the connections of remote tools daemons (relavium daemon start --gateway) and answers workers' tool calls for them over NATS"
  )
)

/** What each command's handler gets (handlers/ServerGateway.ts). */
export interface GatewayArgs {
  readonly gateway: Command.Command.ParseConfig<typeof gatewayConfig>
}

/**
 * `relavium server gateway`: the gateway of runtime/Gateway.ts until a signal
 * stops it (exit 0). A gateway that cannot reach NATS says so on one line and
 * exits 1; one that loses NATS for good (the client gave up reconnecting)
 * exits 1 the same way; a missing setting exits 2. Flags in commands/ServerGateway.ts.
 */
import { Console, Effect, Option, Redacted } from "effect"
import { DAEMON_RPC_PATH } from "@relavium/daemon"
import { endingOf, ExitCode, serverProcessErrors } from "../ExitCodes.js"
import { Misconfigured } from "../Problem.js"
import { GatewayError, loadHub, makeGateway, serversOf } from "../runtime/Gateway.js"
import * as Telemetry from "../runtime/Telemetry.js"
import type { GatewayArgs } from "../commands/ServerGateway.js"

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

export const gateway = (options: GatewayArgs["gateway"]) =>
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
      Telemetry.provide("gateway"),
      // SIGTERM/SIGINT interrupt the gateway: closing it in order is a clean stop.
      Effect.onInterrupt(() => Effect.sync(() => void (process.exitCode = ExitCode.ok))),
      Effect.catchAll((e) =>
        Effect.sync(() => {
          process.stderr.write(`relavium server gateway: ${e.message}\n`)
          process.exitCode = endingOf(serverProcessErrors, e)?.exit ?? ExitCode.failed
        })
      )
    )

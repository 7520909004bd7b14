/**
 * `relavium monolith`: one process serving the HTTP API (HTTPS, bearer token:
 * its user is the owner of the org `local`)
 * with live run events over SSE, the engine and its workers, chats, and the
 * tools daemon (started on the first tool call), on SQLite in the data
 * directory (created 0700).
 *
 * Tools daemons on other machines dial in to `wss://HOST:PORT/rpc/daemon`
 * (same port, same bearer token; `relavium daemon start --gateway URL`); tool
 * calls go to the one named `default` while it is connected, else to the
 * in-process daemon.
 *
 * Layers: the local ones of `relavium run` (Local.ts `localLayer`, with the
 * in-process daemon behind `layerRouterGateway`) and its chat service, plus
 * the API server of @relavium/server (single-user authentication, the audit
 * trail of Tenancy.ts) and the daemons' endpoint on a TLS `HttpServer`.
 */
import { Console, Context, Effect, Layer, Stream } from "effect"
import { ChatService } from "@relavium/chat"
import { recoverAtStart } from "@relavium/core"
import { authorizeToken, DAEMON_RPC_PATH, DaemonRegistry, DEFAULT_DAEMON_NAME, httpApp, layerRouterGateway } from "@relavium/daemon"
import { Auth, type HttpGuard, Monolith, Server, TriggerScheduler } from "@relavium/server"
import * as DataDirectory from "./DataDirectory.js"
import * as Settings from "./Settings.js"
import { localLayer } from "./Local.js"
import { chatServices } from "./LocalChat.js"
import { monolithMasterKey, notificationsLayer } from "./Notifications.js"
import * as Telemetry from "./Telemetry.js"
import { tenancyLayer, triggersLayer } from "./Tenancy.js"

export interface MonolithOptions {
  readonly dataDir: string
  readonly host: string
  readonly port: number
  readonly workspace?: string | undefined
  readonly cassette?: string | undefined
  readonly tokenDelayMs?: number | undefined
  /** Chat projects (`POST /projects`) must be directories under this one. */
  readonly projectsRoot?: string | undefined
  /** Request and header timeouts: slow clients get 408 and are dropped. */
  readonly timeouts?: HttpGuard.ServerTimeouts | undefined
}

/** Closes the turns of chats a previous process left running (the partial answer is kept; `POST /chats/{id}/resume` goes on). */
const recoverChats = Effect.flatMap(ChatService, (chats) => chats.recover()).pipe(
  Effect.map((report) => report.chats.length),
  Effect.catchAll((e) => Effect.as(Console.error(`relavium monolith: could not recover chats: ${e.message}`), 0))
)

/**
 * The whole monolith as one layer, with the telemetry OTEL_* configures (none by default). The
 * lock is taken before anything else is opened, so a second monolith on the same directory
 * changes nothing.
 */
export const monolithLayer = (options: MonolithOptions) =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      yield* DataDirectory.ensure(options.dataDir)
      yield* Monolith.lock(options.dataDir)
      const token = yield* Monolith.ensureToken(options.dataDir)
      const tls = yield* Monolith.ensureCertificate(options.dataDir, options.host)
      const triggers = triggersLayer({ masterKey: yield* Monolith.ensureMasterKey(options.dataDir) })
      const https = Monolith.layerHttps({ host: options.host, port: options.port, tls, timeouts: options.timeouts })
      const daemons = yield* Layer.build(DaemonRegistry.layerMemory)
      const registry = Context.get(daemons, DaemonRegistry)
      const serve = Server.layerMonolith({
        // `GET /models` shows the user's prices as the engine uses them.
        pricesFile: yield* Settings.pricesFile(options.dataDir),
        projectsRoot: options.projectsRoot,
        routes: [{ path: DAEMON_RPC_PATH, handler: httpApp(registry, { authorize: authorizeToken(token) }) }]
      }).pipe(
        Layer.provide(Auth.layerSingleUser(token)),
        Layer.provide(tenancyLayer),
        Layer.provide(triggers),
        Layer.provide(
          notificationsLayer({
            masterKey: yield* monolithMasterKey(options.dataDir),
            token,
            ownUrl: `https://${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`
          }).pipe(Layer.mapError((e) => new Monolith.MonolithError({ message: e.message })))
        )
      )
      // Schedule triggers fire on the local queue (docs/triggers.md).
      const scheduler = TriggerScheduler.layer().pipe(Layer.provide(triggers))
      const announce = Layer.scopedDiscard(
        Effect.gen(function* () {
          const daemonChanges = yield* registry.subscribe
          const recoveredChats = yield* recoverChats
          const url = yield* Monolith.serverUrl
          yield* Console.log(
            [
              `relavium monolith: listening on ${url} (pid ${process.pid})`,
              `  data directory: ${options.dataDir}`,
              `  bearer token:   ${Monolith.tokenFile(options.dataDir)}  (Authorization: Bearer <its contents>)`,
              `  TLS certificate (self-signed; trust it in clients): ${Monolith.certFile(options.dataDir)}`,
              `  API reference:  ${url}/docs  ·  OpenAPI: ${url}/openapi.json  (both need the token; only /health is public)`,
              `  tools daemons:  ${url.replace(/^https:/, "wss:")}${DAEMON_RPC_PATH}  (relavium daemon start --gateway URL --token T --ca CERT)`,
              ...(recoveredChats > 0 ? [`  recovered ${recoveredChats} interrupted chat(s); POST /chats/{chatId}/resume continues one`] : [])
            ].join("\n")
          )
          // Interrupted runs are resumed in the background: the server answers while they start
          // again, and a run that keeps stopping the process is failed as a poison run.
          yield* recoverAtStart.pipe(
            Effect.flatMap((report) =>
              report.resumed.length + report.poisoned.length === 0
                ? Effect.void
                : Console.log(
                    [
                      `relavium monolith: resumed ${report.resumed.length} interrupted run(s)`,
                      ...report.poisoned.map((p) => `  run ${p.runId} failed (poison_run) at node '${p.nodeId}': ${p.message}`)
                    ].join("\n")
                  )
            ),
            Effect.forkScoped
          )
          yield* daemonChanges.pipe(
            Stream.runForEach((change) =>
              Console.log(`relavium monolith: tools daemon '${change.name}' ${change._tag === "Connected" ? "connected" : "disconnected"}`)
            ),
            Effect.forkScoped
          )
        })
      ).pipe(Layer.provide(serve))
      return Layer.merge(announce, scheduler).pipe(
        Layer.provide(https),
        // Chats work in directories of this machine, each with its own in-process daemon, or in a dialed-in daemon.
        // A project bound to a dialed-in daemon (`POST /projects` with `daemon`) works in that daemon.
        Layer.provide(
          chatServices({
            dataDir: options.dataDir,
            daemons: (name) => layerRouterGateway(name).pipe(Layer.provide(Layer.succeedContext(daemons)))
          })
        ),
        Layer.provide(
          localLayer({
            dataDir: options.dataDir,
            workspace: options.workspace,
            cassette: options.cassette,
            tokenDelayMs: options.tokenDelayMs,
            // A daemon dialed in as `default` gets the tool calls; without one, the in-process daemon.
            daemonRouter: (inProcess) =>
              layerRouterGateway(DEFAULT_DAEMON_NAME, { orElse: inProcess }).pipe(Layer.provide(Layer.succeedContext(daemons)))
          })
        )
      )
    })
  ).pipe(Layer.provide(Layer.orDie(Telemetry.layer("monolith"))))

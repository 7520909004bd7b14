/**
 * `relavium server api`: a stateless api replica of the distributed
 * deployment. `layerEngine` accepts requests, writes events and enqueues jobs
 * (it never executes one) and streams events (NATS joined to the Postgres
 * log), behind the HTTP API of @relavium/server; it migrates Postgres under
 * the advisory lock as it starts.
 *
 * Callers: tokens issued to orgs (the `Tenancy` port of Tenancy.ts), each for
 * its org and role; and the shared `--token`, the owner of the org `local`
 * (what it always was: a single-user deployment needs nothing else).
 */
import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Option, type Redacted } from "effect"
import { createServer } from "node:http"
import { layerEngine } from "@relavium/core"
import type { RunQueue, UpdateHub } from "@relavium/ports"
import { Auth, HttpGuard, Monolith, Server } from "@relavium/server"
import type { Store } from "@relavium/store"
import { type Deployment, infrastructure, keys, type store } from "./Deployment.js"
import type { MasterKeySettings } from "./Settings.js"
import { tenancyLayer, triggersLayer } from "./Tenancy.js"
import { cloudChats } from "./CloudChat.js"
import { models } from "./CloudWorker.js"
import type * as Models from "./Models.js"
import { notificationsLayer } from "./Notifications.js"

/**
 * The engine of an api replica on the given services: it writes events and enqueues jobs, and
 * streams events (NATS joined to the Postgres log); it never executes a job.
 */
export const apiEngineOn = <E, R>(services: Layer.Layer<Store.Services | RunQueue | UpdateHub, E, R>) =>
  layerEngine({ executionMode: "cloud" }).pipe(Layer.provideMerge(services), Layer.provideMerge(NodeContext.layer))

/** The engine of an api replica on the deployment's Postgres, Redis and NATS. */
export const apiEngine = (d: Deployment, onMigrated?: Parameters<typeof store>[2]) => apiEngineOn(infrastructure(d, "api", onMigrated))

export interface ApiOptions extends Deployment {
  readonly host: string
  readonly port: number
  /** A bearer token accepted beside the tokens of orgs: its caller is the owner of the org `local`. */
  readonly token: Redacted.Redacted<string>
  /** Serve HTTPS with this certificate and key (PEM); plain HTTP without. */
  readonly tls?: Monolith.TlsMaterial | undefined
  /** Request and header timeouts (slow clients get 408); HttpGuard's defaults when absent. */
  readonly timeouts?: HttpGuard.ServerTimeouts | undefined
  /** Body size and JSON depth limits, the price file of `GET /models` (see `Server.ServerOptions`). */
  readonly http?: Server.ServerOptions | undefined
  readonly masterKey: Option.Option<MasterKeySettings>
  readonly onMigrated?: Parameters<typeof store>[2] | undefined
  /** The model of the chat service (never called here: turns run on workers); the live providers by default. */
  readonly models?: Models.ModelOptions | undefined
  /** The tools daemon of chats whose project names none (default `default`). */
  readonly daemon?: string | undefined
}

/** An HTTP(S) `HttpServer` on `host:port` (port 0: any free port). */
export const httpServer = (options: Pick<ApiOptions, "host" | "port" | "tls" | "timeouts">) =>
  options.tls === undefined
    ? NodeHttpServer.layer(() => createServer(HttpGuard.nodeServerOptions(options.timeouts)), { host: options.host, port: options.port })
    : Monolith.layerHttps({ host: options.host, port: options.port, tls: options.tls, timeouts: options.timeouts })

/** `http(s)://host:port` of the server in context. */
export const serverUrl = (tls: boolean) =>
  Effect.map(HttpServer.HttpServer, (server) => {
    const address = server.address
    if (address._tag === "UnixAddress") return `unix:${address.path}`
    const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
    return `${tls ? "https" : "http"}://${host}:${address.port}`
  })

/**
 * A whole api replica: the HTTP API with the chats (bearer auth, roles, SSE) on the engine, keys
 * and services above. Its chat service hands every turn to a worker (CloudChat.ts); it holds a
 * model only because the service is the same everywhere, and never calls it.
 */
export const layerApi = (options: ApiOptions) => {
  const engine = apiEngine(options, options.onMigrated)
  return Server.layerMonolith({ ...options.http }).pipe(
    Layer.provide(Auth.layerTenancy({ localOwnerToken: options.token })),
    Layer.provide(tenancyLayer),
    Layer.provide(triggersLayer(Option.getOrUndefined(options.masterKey))),
    Layer.provide(
      notificationsLayer({
        masterKey: options.masterKey,
        token: options.token,
        ownUrl: `${options.tls === undefined ? "http" : "https"}://${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`
      })
    ),
    Layer.provideMerge(httpServer(options)),
    Layer.provide(cloudChats(options, "relavium-api-chats").pipe(Layer.provide(models(options.models ?? {})))),
    Layer.provide(keys(options.masterKey)),
    Layer.provide(engine)
  )
}

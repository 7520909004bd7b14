/**
 * The distributed deployment: which layer backs each component tag in
 * `relavium server api` and `relavium server worker`, chosen here and only
 * here. The processes meet only through Postgres (runs, event logs,
 * workflows, encrypted provider keys), Redis (BullMQ jobs) and NATS (live run
 * events):
 *
 * - api: `layerEngine` (accepts requests, enqueues, never executes) and the
 *   HTTP API; it migrates Postgres under the advisory lock as it starts.
 * - worker: `layerWorker` (executes orchestrator, node and system jobs) with
 *   the expression sandbox, the LLM providers (or a cassette), pricing and a
 *   `DaemonRouter` for tool calls; it only checks the schema.
 *
 * A process that cannot reach one of the three fails to start with a message
 * naming it and its URL (password masked); nothing falls back to local mode.
 * The in-process tests and the distributed bench compose the same pieces.
 */
import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { type Duration, Effect, Either, Layer, Option, Redacted } from "effect"
import { createServer } from "node:http"
import { layerEngine, layerWorker, layerWorkerWith, type WorkerOptions as EngineWorkerOptions, QuickJsSandbox } from "@relavium/core"
import { DaemonRouter, type KeyStore, type KeyStoreError, type LlmProvider, type ModelPricing, type QueueError, type RunQueue, type StoreError, type UpdateHub } from "@relavium/ports"
import { NatsDaemonRouter, NatsUpdateHub } from "@relavium/hub"
import { KeyStores } from "@relavium/keys"
import { Cassette, Pricing, Providers } from "@relavium/llm"
import { BullMqRunQueue } from "@relavium/queue"
import { Database, SqlKeyStore, Store } from "@relavium/store"
import * as Monolith from "./Monolith.js"
import { nodeServerOptions, type ServerTimeouts } from "./HttpGuard.js"
import * as Server from "./Server.js"

export type Secret = string | Redacted.Redacted<string>

const reveal = (value: Secret): string => (Redacted.isRedacted(value) ? Redacted.value(value) : value)

/** Where a deployment's processes meet, and how its queues behave. */
export interface Deployment {
  /** `postgres://user[:password]@host:port/database` */
  readonly databaseUrl: Secret
  /** `redis://[user:password@]host:port[/db]` */
  readonly redisUrl: Secret
  /** `nats://[user:password@]host:port` (several, comma-separated) */
  readonly natsUrl: Secret
  /** Namespaces the deployment's Redis keys (BullMQ `prefix`; default `relavium`). */
  readonly queuePrefix?: string | undefined
  /** Namespaces the deployment's NATS subjects (default `relavium`). */
  readonly subjectPrefix?: string | undefined
  /** How long to wait for each of Postgres, Redis and NATS before failing (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Postgres pool size per process (default 10). */
  readonly maxConnections?: number | undefined
  /** BullMQ: per-pool concurrency of this worker, job lock, stalled-job checks, close timeout. */
  readonly queue?:
    | Pick<BullMqRunQueue.BullMqOptions, "concurrency" | "lockDuration" | "stalledInterval" | "maxStalledCount" | "closeTimeout">
    | undefined
}

export type Role = "api" | "worker"

/** Why a process could not start: each names the service (and its URL, password masked) or the setting at fault. */
export type StartupError =
  | StoreError
  | QueueError
  | NatsUpdateHub.HubError
  | NatsDaemonRouter.NatsRouterError
  | KeyStoreError
  | Cassette.CassetteError

// ---------------------------------------------------------------------------
// The three services
// ---------------------------------------------------------------------------

/** What `relavium db migrate` does: migrates under the advisory lock and says what it applied. */
export const migrate = (d: Pick<Deployment, "databaseUrl" | "connectTimeout">) =>
  Database.migratePg({ url: Redacted.make(reveal(d.databaseUrl)), connectTimeout: d.connectTimeout })

/**
 * Postgres with every repository. The api migrates it first (under the advisory lock, so
 * replicas starting together take turns) and reports what it applied to `onMigrated`; a worker
 * only checks the schema and refuses one that is behind, saying to run `relavium db migrate`.
 */
export const store = (
  d: Deployment,
  role: Role,
  onMigrated: (report: Database.MigrationReport & { readonly database: string }) => Effect.Effect<void> = () => Effect.void
) => {
  const pool = Store.layerPg({
    url: Redacted.make(reveal(d.databaseUrl)),
    connectTimeout: d.connectTimeout,
    maxConnections: d.maxConnections,
    migrate: "verify"
  })
  return role === "api" ? pool.pipe(Layer.provide(Layer.effectDiscard(Effect.flatMap(migrate(d), onMigrated)))) : pool
}

/** BullMQ on Redis; the api only enqueues on it, workers consume its three pools. */
export const queue = (d: Deployment): Layer.Layer<RunQueue, QueueError> =>
  BullMqRunQueue.layerBullMq({
    connection: reveal(d.redisUrl),
    prefix: d.queuePrefix,
    connectTimeout: d.connectTimeout,
    ...d.queue
  })

/** Live run events on core NATS subjects; followers join them to the Postgres log. */
export const hub = (d: Deployment, role: Role): Layer.Layer<UpdateHub, NatsUpdateHub.HubError> =>
  NatsUpdateHub.layerNats({
    servers: reveal(d.natsUrl).split(",").map((s) => s.trim()).filter((s) => s !== ""),
    subjectPrefix: d.subjectPrefix,
    connectTimeout: d.connectTimeout,
    name: `relavium-${role}`
  })

/** The three, connected in parallel: the first that cannot be reached fails the start, by name. */
export const infrastructure = (d: Deployment, role: Role, onMigrated?: Parameters<typeof store>[2]) =>
  Layer.mergeAll(store(d, role, onMigrated), queue(d), hub(d, role))

/** A service's URL as messages show it: the password masked. */
export const shownUrl = (service: "postgres" | "redis" | "nats", url: Secret): string => {
  const plain = reveal(url)
  switch (service) {
    case "postgres":
      return Database.redactUrl(plain)
    case "redis":
      return BullMqRunQueue.redactUrl(plain)
    case "nats":
      return plain.split(",").map((s) => NatsUpdateHub.redactUrl(s.trim())).join(", ")
  }
}

// ---------------------------------------------------------------------------
// Provider keys
// ---------------------------------------------------------------------------

/** Fails, naming RELAVIUM_MASTER_KEY (never showing it), when a master key is given but malformed. */
export const checkMasterKey = (masterKey: Option.Option<Redacted.Redacted<string>>): Effect.Effect<void, KeyStoreError> =>
  Option.match(masterKey, {
    onNone: () => Effect.void,
    onSome: (key) => Effect.asVoid(SqlKeyStore.parseMasterKey(key))
  })

/** The id rows sealed under this master key record (a hash; the key cannot be recovered from it). */
export const masterKeyId = (masterKey: Redacted.Redacted<string>): string =>
  Either.match(SqlKeyStore.parseMasterKey(masterKey), { onLeft: () => "(malformed)", onRight: (key) => key.id })

/**
 * Provider keys. With a master key (`RELAVIUM_MASTER_KEY`), AES-256-GCM rows in Postgres that the
 * api's `/keys` routes write and workers read; without one, `RELAVIUM_<PROVIDER>_API_KEY` from
 * each process's environment (read-only: the `/keys` routes say how to set them). Either way a
 * key is read where a model is called and never travels in a job.
 */
export const keys = (masterKey: Option.Option<Redacted.Redacted<string>>) =>
  Option.match(masterKey, {
    onNone: (): Layer.Layer<KeyStore, KeyStoreError, Store.Services> => KeyStores.layerEnv,
    onSome: (key) => SqlKeyStore.layerPgEncrypted({ masterKey: key })
  })

// ---------------------------------------------------------------------------
// The api
// ---------------------------------------------------------------------------

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
  /** The bearer token every request must carry. */
  readonly token: Redacted.Redacted<string>
  /** Serve HTTPS with this certificate and key (PEM); plain HTTP without. */
  readonly tls?: Monolith.TlsMaterial | undefined
  /** Request and header timeouts (slow clients get 408); the defaults of HttpGuard.ts when absent. */
  readonly timeouts?: ServerTimeouts | undefined
  /** Body size and JSON depth limits, the price file of `GET /models` (see `Server.ServerOptions`). */
  readonly http?: Omit<Server.ServerOptions, "token"> | undefined
  readonly masterKey: Option.Option<Redacted.Redacted<string>>
  readonly onMigrated?: Parameters<typeof store>[2] | undefined
}

/** An HTTP(S) `HttpServer` on `host:port` (port 0: any free port). */
export const httpServer = (options: Pick<ApiOptions, "host" | "port" | "tls" | "timeouts">) =>
  options.tls === undefined
    ? NodeHttpServer.layer(() => createServer(nodeServerOptions(options.timeouts)), { host: options.host, port: options.port })
    : Monolith.layerHttps({ host: options.host, port: options.port, tls: options.tls, timeouts: options.timeouts })

/** `http(s)://host:port` of the server in context. */
export const serverUrl = (tls: boolean) =>
  Effect.map(HttpServer.HttpServer, (server) => {
    const address = server.address
    if (address._tag === "UnixAddress") return `unix:${address.path}`
    const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
    return `${tls ? "https" : "http"}://${host}:${address.port}`
  })

/** A whole api replica: the HTTP API (bearer auth, SSE) on the engine, keys and services above. */
export const layerApi = (options: ApiOptions) => {
  const engine = apiEngine(options, options.onMigrated)
  return Server.layer({ ...options.http, token: options.token }).pipe(
    Layer.provideMerge(httpServer(options)),
    Layer.provide(keys(options.masterKey)),
    Layer.provide(engine)
  )
}

// ---------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------

export interface ModelOptions {
  /** Replay model calls from this cassette file instead of calling providers (tests, demos). */
  readonly cassette?: string | undefined
  readonly tokenDelayMs?: number | undefined
  /** Provider overrides (base URLs, extra providers); env `RELAVIUM_<PROVIDER>_BASE_URL` works too. */
  readonly providers?: Providers.ProvidersConfig | undefined
}

/** The models a worker calls: a cassette, or the live providers with keys from the `KeyStore`; and the price table. */
export const models = (options: ModelOptions): Layer.Layer<LlmProvider | ModelPricing, Cassette.CassetteError, KeyStore> =>
  Layer.merge(
    options.cassette === undefined
      ? Providers.layer(options.providers).pipe(Layer.provide(NodeHttpClient.layerUndici))
      : Cassette.layerCassetteFile(options.cassette, { tokenDelayMs: options.tokenDelayMs ?? 0 }).pipe(Layer.provide(NodeContext.layer)),
    Pricing.layerStatic
  )

/**
 * Tool calls of a worker's agents: over NATS to the `relavium server gateway` holding the daemon
 * named `daemon` (default `default`). With no gateway holding it, a call fails at once with
 * `tool_unavailable` (no responders) and the node's retry policy applies; a worker never runs
 * tools on its own machine.
 */
export const tools = (d: Deployment & { readonly daemon?: string | undefined }): Layer.Layer<DaemonRouter, NatsDaemonRouter.NatsRouterError> =>
  NatsDaemonRouter.layerRouter({
    servers: reveal(d.natsUrl).split(",").map((s) => s.trim()).filter((s) => s !== ""),
    subjectPrefix: d.subjectPrefix,
    connectTimeout: d.connectTimeout,
    daemon: d.daemon ?? "default",
    name: "relavium-worker-tools"
  })

/** No tools at all (each call is `tool_unavailable`), for in-process tests that need no gateway. */
export const noTools: Layer.Layer<DaemonRouter> = DaemonRouter.layerInProcess([])

/**
 * A worker on the given services: `layerWorker` consuming the queue until the layer is released
 * (active jobs get the queue's close timeout to finish; the rest are taken over by other workers).
 */
export const workerOn = <E1, R1, E2, R2>(
  services: Layer.Layer<Store.Services | RunQueue | UpdateHub, E1, R1>,
  execution: Layer.Layer<LlmProvider | ModelPricing | DaemonRouter, E2, R2>,
  sweep?: EngineWorkerOptions
) => {
  const infra = services.pipe(Layer.provideMerge(NodeContext.layer))
  return (sweep === undefined ? layerWorker : layerWorkerWith(sweep)).pipe(
    Layer.provide(Layer.merge(QuickJsSandbox.layerQuickJs, execution).pipe(Layer.provideMerge(infra)))
  )
}

export interface WorkerOptions extends Deployment, ModelOptions {
  readonly masterKey: Option.Option<Redacted.Redacted<string>>
  /** The tools daemon (its `--name`) agents' tool calls go to, through a gateway (default `default`). */
  readonly daemon?: string | undefined
  /** Where agents' tool calls go (default {@link tools}: over NATS to a gateway). */
  readonly daemonRouter?: Layer.Layer<DaemonRouter, StartupError> | undefined
  /** The sweep for runs whose jobs were lost (a worker killed between a commit and its offer). */
  readonly sweep?: EngineWorkerOptions | undefined
}

/** A whole worker process on the deployment's Postgres, Redis and NATS. */
export const layerWorkerProcess = (options: WorkerOptions) =>
  workerOn(
    infrastructure(options, "worker"),
    Layer.merge(models(options), options.daemonRouter ?? tools(options)).pipe(Layer.provide(keys(options.masterKey))),
    options.sweep
  )


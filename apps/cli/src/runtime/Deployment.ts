/**
 * The distributed deployment's shared pieces: where its processes meet
 * (Postgres for runs, event logs, workflows and encrypted provider keys; Redis
 * for BullMQ jobs; NATS for live run events and tool calls) and the layers on
 * each. CloudApi.ts, CloudWorker.ts and Gateway.ts compose processes from them.
 *
 * A process that cannot reach one of the three fails to start with a message
 * naming it and its URL (password masked); nothing falls back to local mode.
 */
import { type Duration, Effect, Either, Layer, Option, Redacted } from "effect"
import type { KeyStore, KeyStoreError, QueueError, RunQueue, StoreError, UpdateHub } from "@relavium/ports"
import { NatsDaemonRouter, NatsUpdateHub, RedisStreamsUpdateHub } from "@relavium/hub"
import { KeyStores } from "@relavium/keys"
import type { Cassette } from "@relavium/llm"
import { BullMqRunQueue } from "@relavium/queue"
import { Database, SqlKeyStore, Store } from "@relavium/store"
import type { MasterKeySettings } from "./Settings.js"

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
  /**
   * What carries live run events (default `nats`): NATS subjects under `subjectPrefix`, or
   * Redis Streams on `redisUrl` under `queuePrefix` (kept for a while, so a follower resuming
   * with `Last-Event-ID` is answered from Redis rather than Postgres).
   */
  readonly hub?: "nats" | "redis" | undefined
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

/** Live run events on core NATS subjects or on Redis Streams; followers join them to the Postgres log. */
export const hub = (d: Deployment, role: Role): Layer.Layer<UpdateHub, NatsUpdateHub.HubError> =>
  d.hub === "redis"
    ? RedisStreamsUpdateHub.layerRedisStreams({
      url: reveal(d.redisUrl),
      keyPrefix: d.queuePrefix,
      connectTimeout: d.connectTimeout
    })
    : NatsUpdateHub.layerNats({
      servers: natsServers(d.natsUrl),
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

/** Fails, naming the variable (never showing a key), when master keys are given but malformed. */
export const checkMasterKey = (masterKey: Option.Option<MasterKeySettings>): Effect.Effect<void, KeyStoreError> =>
  Option.match(masterKey, {
    onNone: () => Effect.void,
    onSome: (settings) => Effect.asVoid(SqlKeyStore.masterKeyring(settings))
  })

/**
 * How a process describes its master keys: the id of the current one (a hash; the key cannot be
 * recovered from it) and the older ones it can still unwrap with.
 */
export const describeMasterKeys = (masterKey: MasterKeySettings): string =>
  Either.match(SqlKeyStore.masterKeyring(masterKey), {
    onLeft: () => "AES-256-GCM encrypted in Postgres (master keys malformed)",
    onRight: (ring) => {
      const older = ring.keys.slice(1).map((key) => `${key.label} (${key.id})`)
      return `AES-256-GCM encrypted in Postgres (master key ${ring.current.id}) under a data key per org${
        older.length > 0 ? `; older master keys still unwrapping: ${older.join(", ")}` : ""
      }`
    }
  })

/**
 * Provider keys. With master keys (`RELAVIUM_MASTER_KEYS` or `RELAVIUM_MASTER_KEY`), envelope
 * encrypted rows in Postgres (a data key per org, wrapped under the master key) that the api's
 * `/keys` routes write and workers read; without, `RELAVIUM_<PROVIDER>_API_KEY` from each
 * process's environment (read-only: the `/keys` routes say how to set them). Either way a key is
 * read where a model is called and never travels in a job.
 */
export const keys = (masterKey: Option.Option<MasterKeySettings>) =>
  Option.match(masterKey, {
    onNone: (): Layer.Layer<KeyStore, KeyStoreError, Store.Services> => KeyStores.layerEnv,
    onSome: (settings) => SqlKeyStore.layerPgEncrypted(settings)
  })

/** The servers of a NATS URL setting (several, comma-separated). */
export const natsServers = (url: Secret): Array<string> =>
  reveal(url).split(",").map((s) => s.trim()).filter((s) => s !== "")

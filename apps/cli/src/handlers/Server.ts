/**
 * `relavium server api` and `relavium server worker`: the processes of the
 * distributed deployment, meeting only through Postgres, Redis and NATS. Their
 * layers are chosen in runtime/CloudApi.ts and runtime/CloudWorker.ts; this module turns the flags
 * of commands/Server.ts (or, for an absent flag, the environment) into their options. The Postgres,
 * Redis and NATS clients load only when one of these commands runs.
 *
 * A process that cannot reach one of the three prints which one (URL, password
 * masked) on one line and exits 1; a missing setting exits 2; SIGTERM or
 * SIGINT stops it cleanly with exit 0 (ExitCodes.ts `serverProcessErrors`).
 */
import { FileSystem } from "@effect/platform"
import { Console, Effect, Layer, Option, Redacted } from "effect"
import { endingOf, ExitCode, type ServerProcessError, serverProcessErrors } from "../ExitCodes.js"
import { Misconfigured } from "../Problem.js"
import type * as Deployment from "../runtime/Deployment.js"
import * as Settings from "../runtime/Settings.js"
import * as Telemetry from "../runtime/Telemetry.js"
import type { ServerArgs } from "../commands/Server.js"

const loadApi = () => import("../runtime/CloudApi.js")
const loadWorker = () => import("../runtime/CloudWorker.js")
const loadDeployment = () => import("../runtime/Deployment.js")

interface Connections {
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  readonly redisUrl: Option.Option<Redacted.Redacted<string>>
  readonly natsUrl: Option.Option<Redacted.Redacted<string>>
  readonly queuePrefix: string
  readonly subjectPrefix: string
  readonly hub: Settings.HubKind
}

const required = <A>(value: Option.Option<A>, what: string) =>
  Option.match(value, { onNone: () => Effect.fail(new Misconfigured({ message: what })), onSome: Effect.succeed })

const deployment = (c: Connections) =>
  Effect.gen(function* () {
    const missing = [
      Option.isNone(c.databaseUrl) ? "--database-url (or RELAVIUM_DATABASE_URL)" : undefined,
      Option.isNone(c.redisUrl) ? "--redis-url (or RELAVIUM_REDIS_URL)" : undefined,
      Option.isNone(c.natsUrl) ? "--nats-url (or RELAVIUM_NATS_URL)" : undefined
    ].filter((m) => m !== undefined)
    if (missing.length > 0) return yield* new Misconfigured({ message: `missing ${missing.join(", ")}: the distributed mode runs on Postgres, Redis and NATS` })
    return {
      databaseUrl: Option.getOrThrow(c.databaseUrl),
      redisUrl: Option.getOrThrow(c.redisUrl),
      natsUrl: Option.getOrThrow(c.natsUrl),
      queuePrefix: c.queuePrefix,
      subjectPrefix: c.subjectPrefix,
      hub: c.hub
    } satisfies Deployment.Deployment
  })

/** `RELAVIUM_MASTER_KEYS` or `RELAVIUM_MASTER_KEY`, when set (never a flag: argv is visible to every user of the machine). */
const masterKey = Settings.masterKey

/** What a process says about its keys at start. */
const describeKeys = (cloud: typeof Deployment, key: Option.Option<Settings.MasterKeySettings>) =>
  Option.match(key, {
    onNone: () => "from this process's environment (RELAVIUM_<PROVIDER>_API_KEY); set RELAVIUM_MASTER_KEYS to store keys through the API",
    onSome: (k) => cloud.describeMasterKeys(k)
  })

const describeServices = (cloud: typeof Deployment, d: Deployment.Deployment) => [
  `  Redis:    ${cloud.shownUrl("redis", d.redisUrl)} (queue prefix ${d.queuePrefix ?? "relavium"})`,
  `  NATS:     ${cloud.shownUrl("nats", d.natsUrl)} (subject prefix ${d.subjectPrefix ?? "relavium"})`,
  `  events:   ${d.hub === "redis" ? "Redis Streams (on the Redis above)" : "NATS (on the NATS above)"}`
]

/**
 * Runs a server process until a signal stops it (exit 0); a start-up failure is one line on
 * stderr and exit 1, a missing or malformed setting exit 2.
 */
const serve = <R>(name: "api" | "worker", program: Effect.Effect<void, ServerProcessError, R>) =>
  program.pipe(
    Telemetry.provide(name),
    Effect.onInterrupt(() => Effect.sync(() => void (process.exitCode = ExitCode.ok))),
    Effect.catchAll((error) =>
      Effect.sync(() => {
        const message =
          error._tag === "ServeError" ? `cannot listen: ${String((error.cause as Error | undefined)?.message ?? error.cause)}` : error.message
        process.stderr.write(`relavium server ${name}: ${message}\n`)
        process.exitCode = endingOf(serverProcessErrors, error)?.exit ?? ExitCode.failed
      })
    )
  )

// ---------------------------------------------------------------------------
// relavium server api
// ---------------------------------------------------------------------------

const readTls = (cert: Option.Option<string>, key: Option.Option<string>) =>
  Effect.gen(function* () {
    if (Option.isNone(cert) && Option.isNone(key)) return undefined
    if (Option.isNone(cert) || Option.isNone(key)) return yield* new Misconfigured({ message: "--tls-cert and --tls-key go together" })
    const fs = yield* FileSystem.FileSystem
    const read = (file: string) =>
      fs.readFileString(file).pipe(Effect.mapError((e) => new Misconfigured({ message: `cannot read ${file}: ${e.message}` })))
    return { cert: yield* read(cert.value), key: Redacted.make(yield* read(key.value)) }
  })

export const api = (options: ServerArgs["api"]) =>
    serve(
      "api",
      Effect.gen(function* () {
        const d = yield* deployment(options)
        const token = yield* required(options.token, "missing --token (or RELAVIUM_TOKEN): the bearer token clients must send")
        if (Redacted.value(token).length < 16) return yield* new Misconfigured({ message: "--token (or RELAVIUM_TOKEN) must be at least 16 characters" })
        if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
          return yield* new Misconfigured({ message: `--port must be between 0 and 65535 (got ${options.port})` })
        }
        const tls = yield* readTls(options.tlsCert, options.tlsKey)
        const key = yield* masterKey
        const cloud = yield* Effect.promise(loadDeployment)
        const api = yield* Effect.promise(loadApi)
        yield* cloud.checkMasterKey(key).pipe(Effect.mapError((e) => new Misconfigured({ message: e.message })))
        let migrated = ""
        const announce = Layer.effectDiscard(
          Effect.gen(function* () {
            const url = yield* api.serverUrl(tls !== undefined)
            yield* Console.log(
              [
                `relavium server api: listening on ${url} (pid ${process.pid})`,
                `  Postgres: ${migrated}`,
                ...describeServices(cloud, d),
                `  keys:     ${describeKeys(cloud, key)}`
              ].join("\n")
            )
          })
        )
        return yield* Layer.launch(
          announce.pipe(
            Layer.provide(
              api.layerApi({
                ...d,
                host: options.host,
                port: options.port,
                token,
                tls,
                masterKey: key,
                onMigrated: (report) =>
                  Effect.sync(() => {
                    migrated = `${report.database} (schema ${report.version}; ${
                      report.applied.length > 0 ? `applied ${report.applied.join(", ")}` : "up to date"
                    })`
                  })
              })
            )
          )
        )
      })
    )

// ---------------------------------------------------------------------------
// relavium server worker
// ---------------------------------------------------------------------------

export const worker = (options: ServerArgs["worker"]) =>
    serve(
      "worker",
      Effect.gen(function* () {
        const d = yield* deployment(options)
        const pools = {
          orchestrator: options.orchestratorConcurrency,
          node: options.nodeConcurrency,
          system: options.systemConcurrency
        }
        for (const [pool, n] of Object.entries(pools)) {
          if (!Number.isInteger(n) || n < 1) return yield* new Misconfigured({ message: `--${pool}-concurrency must be at least 1 (got ${n})` })
        }
        for (const [flag, ms] of [["job-lock-ms", options.jobLockMs], ["stalled-check-ms", options.stalledCheckMs], ["stale-run-ms", options.staleRunMs], ["close-timeout-ms", options.closeTimeoutMs]] as const) {
          if (!Number.isInteger(ms) || ms < 1) return yield* new Misconfigured({ message: `--${flag} must be a positive number of milliseconds (got ${ms})` })
        }
        const key = yield* masterKey
        const cassette = Option.getOrUndefined(options.cassette)
        const cloud = yield* Effect.promise(loadDeployment)
        const workerProcess = yield* Effect.promise(loadWorker)
        yield* cloud.checkMasterKey(key).pipe(Effect.mapError((e) => new Misconfigured({ message: e.message })))
        const announce = Layer.effectDiscard(
          Console.log(
            [
              `relavium server worker: taking jobs (orchestrator ${pools.orchestrator}, node ${pools.node}, system ${pools.system} at once; pid ${process.pid})`,
              `  Postgres: ${cloud.shownUrl("postgres", d.databaseUrl)}`,
              ...describeServices(cloud, d),
              `  models:   ${cassette === undefined ? "the providers' APIs" : `replayed from the cassette ${cassette}`}`,
              `  tools:    the daemon '${options.daemon}', through a gateway (NATS)`,
              `  keys:     ${describeKeys(cloud, key)}`
            ].join("\n")
          )
        )
        return yield* Layer.launch(
          announce.pipe(
            Layer.provide(
              workerProcess.layerWorkerProcess({
                ...d,
                queue: {
                  concurrency: pools,
                  lockDuration: `${options.jobLockMs} millis`,
                  stalledInterval: `${options.stalledCheckMs} millis`,
                  closeTimeout: `${options.closeTimeoutMs} millis`
                },
                masterKey: key,
                cassette,
                tokenDelayMs: options.tokenDelayMs,
                daemon: options.daemon,
                sweep: {
                  staleAfter: `${options.staleRunMs} millis`,
                  sweepEvery: `${Math.max(1, Math.min(15_000, Math.floor(options.staleRunMs / 2)))} millis`
                }
              })
            )
          )
        )
      })
    )

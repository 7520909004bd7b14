/**
 * `relavium server api` and `relavium server worker`: the processes of the
 * distributed deployment, meeting only through Postgres, Redis and NATS. Their
 * layers are chosen in runtime/CloudApi.ts and runtime/CloudWorker.ts; this module turns flags
 * (or, for an absent flag, the environment) into its options. The Postgres,
 * Redis and NATS clients load only when one of these commands runs.
 *
 * A process that cannot reach one of the three prints which one (URL, password
 * masked) on one line and exits 1; a missing setting exits 2; SIGTERM or
 * SIGINT stops it cleanly with exit 0 (ExitCodes.ts `serverProcessErrors`).
 */
import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Console, Effect, Layer, Option, Redacted } from "effect"
import { endingOf, ExitCode, type ServerProcessError, serverProcessErrors } from "../ExitCodes.js"
import { Misconfigured } from "../Problem.js"
import type * as Deployment from "../runtime/Deployment.js"
import * as Settings from "../runtime/Settings.js"
import { cassetteOption, secretFlag, textFlag, tokenDelayOption } from "./Flags.js"
import { gateway } from "./ServerGateway.js"

const loadApi = () => import("../runtime/CloudApi.js")
const loadWorker = () => import("../runtime/CloudWorker.js")
const loadDeployment = () => import("../runtime/Deployment.js")

/** The connection settings every server process takes. */
const connectionOptions = {
  databaseUrl: secretFlag("database-url", Settings.databaseUrl, "Postgres: postgres://user[:password]@host:port/database"),
  redisUrl: secretFlag("redis-url", Settings.redisUrl, "Redis (the BullMQ job queues): redis://[user:password@]host:port[/db]"),
  natsUrl: secretFlag("nats-url", Settings.natsUrl, "NATS (live run events): nats://host:port, several comma-separated"),
  queuePrefix: textFlag("queue-prefix", Settings.queuePrefix, "relavium", "the Redis key prefix of this deployment's queues"),
  subjectPrefix: textFlag("subject-prefix", Settings.subjectPrefix, "relavium", "the NATS subject prefix of this deployment's events"),
  hub: Options.choice("hub", Settings.hubKinds).pipe(
    Options.withFallbackConfig(Settings.hub.config),
    Options.withDefault("nats" as const),
    Options.withDescription(
      `what carries live run events: nats, or redis (Redis Streams on --redis-url, under --queue-prefix) (else ${Settings.hub.name}; default nats)`
    )
  )
}

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

/** `RELAVIUM_MASTER_KEY`, when set (never a flag: argv is visible to every user of the machine). */
const masterKey = Settings.masterKey

/** What a process says about its keys at start. */
const describeKeys = (cloud: typeof Deployment, key: Option.Option<Redacted.Redacted<string>>) =>
  Option.match(key, {
    onNone: () => "from this process's environment (RELAVIUM_<PROVIDER>_API_KEY); set RELAVIUM_MASTER_KEY to store keys through the API",
    onSome: (k) => `AES-256-GCM encrypted in Postgres (master key ${cloud.masterKeyId(k)})`
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
const serve = <R>(name: string, program: Effect.Effect<void, ServerProcessError, R>) =>
  program.pipe(
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

const api = Command.make(
  "api",
  {
    ...connectionOptions,
    host: Options.text("host").pipe(
      Options.withDefault("127.0.0.1"),
      Options.withDescription("the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 behind a load balancer)")
    ),
    port: Options.integer("port").pipe(Options.withDefault(7431), Options.withDescription("the port to listen on (0: any free port; the URL is printed)")),
    token: secretFlag("token", Settings.token, "the bearer token every request must carry (Authorization: Bearer <token>)"),
    tlsCert: Options.file("tls-cert", { exists: "yes" }).pipe(Options.optional, Options.withDescription("serve HTTPS with this PEM certificate (with --tls-key)")),
    tlsKey: Options.file("tls-key", { exists: "yes" }).pipe(Options.optional, Options.withDescription("the PEM private key of --tls-cert"))
  },
  (options) =>
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
).pipe(
  Command.withDescription(
    "A stateless API replica of the distributed mode: the HTTP API and live events (SSE); it enqueues runs for workers and migrates Postgres at start"
  )
)

// ---------------------------------------------------------------------------
// relavium server worker
// ---------------------------------------------------------------------------

const concurrency = (pool: string, fallback: number) =>
  Options.integer(`${pool}-concurrency`).pipe(
    Options.withDefault(fallback),
    Options.withDescription(`how many ${pool} jobs this worker runs at once (default ${fallback})`)
  )

const millisOption = (flag: string, fallback: number, description: string) =>
  Options.integer(flag).pipe(Options.withDefault(fallback), Options.withDescription(`${description} (default ${fallback})`))

const worker = Command.make(
  "worker",
  {
    ...connectionOptions,
    orchestratorConcurrency: concurrency("orchestrator", 8),
    nodeConcurrency: concurrency("node", 64),
    systemConcurrency: concurrency("system", 4),
    jobLockMs: millisOption(
      "job-lock-ms",
      30_000,
      "how long a job stays with a worker that stopped renewing its lock (it died) before another worker may take it over"
    ),
    stalledCheckMs: millisOption("stalled-check-ms", 30_000, "how often this worker looks for jobs whose worker died"),
    staleRunMs: millisOption(
      "stale-run-ms",
      30_000,
      "a running run that has written nothing for this long has its jobs offered again, in case a worker died between saving a step and queueing its jobs (looked for every half of this, at most 15 s)"
    ),
    closeTimeoutMs: millisOption("close-timeout-ms", 10_000, "on SIGTERM, how long running jobs may take to finish before they are left to other workers"),
    cassette: cassetteOption,
    tokenDelayMs: tokenDelayOption,
    daemon: textFlag("daemon", Settings.daemonName, "default", "the tools daemon (its --name) that agents' tool calls go to, through a gateway over NATS")
  },
  (options) =>
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
).pipe(
  Command.withDescription(
    "A worker of the distributed mode: executes orchestrator, node and system jobs from Redis, on Postgres and NATS; run as many as the load needs"
  )
)

export const server = Command.make("server").pipe(
  Command.withDescription("The distributed mode's processes (api and worker replicas on Postgres, Redis and NATS; the gateway of remote tools daemons)"),
  Command.withSubcommands([api, worker, gateway])
)

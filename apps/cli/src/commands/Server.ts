/**
 * `relavium server api` and `relavium server worker`: the processes of the
 * distributed deployment, meeting only through Postgres, Redis and NATS. Their
 * layers are chosen in runtime/CloudApi.ts and runtime/CloudWorker.ts; this module has their flags and
 * handlers/Server.ts turns them (or, for an absent flag, the environment) into options. The Postgres,
 * Redis and NATS clients load only when one of these commands runs.
 *
 * A process that cannot reach one of the three prints which one (URL, password
 * masked) on one line and exits 1; a missing setting exits 2; SIGTERM or
 * SIGINT stops it cleanly with exit 0 (ExitCodes.ts `serverProcessErrors`).
 */
import { Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import * as Settings from "../runtime/Settings.js"
import { cassetteOption, secretFlag, textFlag, tokenDelayOption } from "./Flags.js"
import { gateway } from "./ServerGateway.js"
import { inference } from "./ServerInference.js"

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

const apiConfig = {
  ...connectionOptions,
  host: Options.text("host").pipe(
    Options.withDefault("127.0.0.1"),
    Options.withDescription("the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 behind a load balancer)")
  ),
  port: Options.integer("port").pipe(Options.withDefault(7431), Options.withDescription("the port to listen on (0: any free port; the URL is printed)")),
  token: secretFlag(
    "token",
    Settings.token,
    "a bearer token (Authorization: Bearer <token>) whose caller is the owner of the org local; tokens issued to orgs are accepted beside it"
  ),
  tlsCert: Options.file("tls-cert", { exists: "yes" }).pipe(Options.optional, Options.withDescription("serve HTTPS with this PEM certificate (with --tls-key)")),
  tlsKey: Options.file("tls-key", { exists: "yes" }).pipe(Options.optional, Options.withDescription("the PEM private key of --tls-cert"))
}

const api = Command.make("api", apiConfig, lazy(() => import("../handlers/Server.js"), (m) => m.api)).pipe(
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

const workerConfig = {
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
}

const worker = Command.make("worker", workerConfig, lazy(() => import("../handlers/Server.js"), (m) => m.worker)).pipe(
  Command.withDescription(
    "A worker of the distributed mode: executes orchestrator, node and system jobs from Redis, on Postgres and NATS; run as many as the load needs"
  )
)

export const server = Command.make("server").pipe(
  Command.withDescription("The distributed mode's processes (api and worker replicas on Postgres, Redis and NATS; the gateway of remote tools daemons; the managed inference gateway)"),
  Command.withSubcommands([api, worker, gateway, inference])
)

/** What each command's handler gets (handlers/Server.ts). */
export interface ServerArgs {
  readonly api: Command.Command.ParseConfig<typeof apiConfig>
  readonly worker: Command.Command.ParseConfig<typeof workerConfig>
}

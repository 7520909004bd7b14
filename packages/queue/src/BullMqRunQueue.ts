/**
 * `RunQueue` on BullMQ (Redis): one BullMQ queue per pool (orchestrator, node,
 * system), each consumed by a BullMQ worker with its own concurrency, so many
 * worker processes share the load and a job whose process died is taken over
 * through BullMQ's stalled-job check.
 *
 * Dedupe follows the memory layer: a job id waits at most once, and may be
 * offered again as soon as a worker takes it. BullMQ's own `jobId` cannot give
 * that (an add is ignored while a job of that id still exists, active or
 * completed), so every BullMQ job gets a fresh id and `jobId(job)` is used as
 * the deduplication id with `keepLastIfActive`: an offer while a job of that id
 * waits (or is delayed) is dropped; an offer while one is active is kept and
 * enqueued the moment the active one finishes; never lost.
 */
import { Queue, Worker, type Job as BullJob, type JobsOptions } from "bullmq"
import { Redis, type RedisOptions } from "ioredis"
import { Cause, Duration, Effect, Either, Exit, FiberSet, Layer, MetricLabel, Schema } from "effect"
import { forJobOrg, Job, jobId, type Pool, poolOf, queueActive, QueueError, RunQueue, withOrg } from "@relavium/ports"

export interface BullMqOptions {
  /** `redis://[user:password@]host:port[/db]`; the password never appears in an error. */
  readonly connection: string
  /** Namespaces every Redis key of these queues (BullMQ's `prefix`), e.g. per deployment. */
  readonly prefix?: string | undefined
  /** BullMQ worker concurrency per pool, in this process. */
  readonly concurrency?: Readonly<Partial<Record<Pool, number>>> | undefined
  /** How long to wait for Redis before failing (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * How long a worker holds a job without renewing its lock before the job counts as stalled
   * (default 30 s; the lock is renewed at half of it while the job runs).
   */
  readonly lockDuration?: Duration.DurationInput | undefined
  /** How often workers look for stalled jobs to take over (default 30 s). */
  readonly stalledInterval?: Duration.DurationInput | undefined
  /** How many times a job may stall (its worker died) before BullMQ fails it (default 10). */
  readonly maxStalledCount?: number | undefined
  /**
   * On close, how long to let active jobs finish before leaving them to be taken over by
   * another worker (default 10 s).
   */
  readonly closeTimeout?: Duration.DurationInput | undefined
}

const pools: ReadonlyArray<Pool> = ["orchestrator", "node", "system"]

const defaultConcurrency: Record<Pool, number> = { orchestrator: 8, node: 64, system: 4 }

/** Finished jobs kept for inspection; Redis memory stays bounded. */
const removeOnComplete = { count: 1000, age: 3600 }
const removeOnFail = { count: 5000, age: 7 * 24 * 3600 }

/** A URL without its password, for messages. */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString().replace(/\/$/, "")
  } catch {
    return url.replace(/:[^:@/]*@/, ":***@")
  }
}

const describeError = (cause: unknown): string => {
  if (cause instanceof AggregateError && cause.errors.length > 0) return cause.errors.map(describeError).join("; ")
  if (cause instanceof Error) return cause.message || cause.name
  return String(cause)
}

const encodeJob = Schema.encodeSync(Job)
const decodeJob = Schema.decodeUnknownEither(Job)

/**
 * Opens a client and proves Redis answers, failing within `timeout` with a message that names
 * Redis and its URL (never hanging on ioredis's reconnect loop).
 */
const probe = (url: string, timeout: Duration.Duration) => {
  const unreachable = (reason: string, cause?: unknown) =>
    new QueueError({
      message: `cannot reach Redis at ${redactUrl(url)}: ${reason}; is Redis running? \`bash scripts/services.sh\` starts it`,
      cause
    })
  // ioredis rejects `connect` with "Connection is closed."; the socket's own error says why.
  let lastError: unknown
  return Effect.acquireUseRelease(
    Effect.sync(() =>
      new Redis(url, {
        lazyConnect: true,
        connectTimeout: Duration.toMillis(timeout),
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: () => null
      }).on("error", (error) => {
        lastError = error
      })
    ),
    (client) =>
      Effect.tryPromise({
        try: () => client.connect().then(() => client.ping()),
        catch: (cause) => unreachable(describeError(lastError ?? cause), lastError ?? cause)
      }).pipe(Effect.timeoutFail({ duration: timeout, onTimeout: () => unreachable(`no answer within ${Duration.format(timeout)}`) })),
    // A client that never connected has ended already; `disconnect` on it would hold the process
    // open for two seconds (ioredis's socket-close timer).
    (client) => Effect.sync(() => (client.status === "end" ? undefined : client.disconnect()))
  )
}

/** `RunQueue` on BullMQ; fails with a `QueueError` naming Redis when it cannot be reached. */
export const layerBullMq = (options: BullMqOptions): Layer.Layer<RunQueue, QueueError> =>
  Layer.scoped(
    RunQueue,
    Effect.gen(function* () {
      const url = options.connection
      const prefix = options.prefix ?? "relavium"
      const concurrency = { ...defaultConcurrency, ...options.concurrency }
      const connectTimeout = Duration.decode(options.connectTimeout ?? "5 seconds")
      const lockDuration = Duration.toMillis(options.lockDuration ?? "30 seconds")
      const stalledInterval = Duration.toMillis(options.stalledInterval ?? "30 seconds")
      const closeTimeout = Duration.decode(options.closeTimeout ?? "10 seconds")
      yield* probe(url, connectTimeout)

      const clientOptions: RedisOptions = {
        connectTimeout: Duration.toMillis(connectTimeout),
        // BullMQ requires this for the blocking connections of workers; for producers, a
        // command waits across a reconnect instead of failing a step that would succeed.
        maxRetriesPerRequest: null
      }
      const producer = yield* Effect.acquireRelease(
        Effect.sync(() => new Redis(url, clientOptions)),
        (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
      )
      // A producer error (e.g. Redis restarting) is reported by the failing call; keep the
      // client's own 'error' events from becoming unhandled.
      producer.on("error", () => {})

      const queues = {} as Record<Pool, Queue>
      for (const pool of pools) {
        queues[pool] = yield* Effect.acquireRelease(
          Effect.sync(
            () =>
              new Queue(pool, {
                connection: producer,
                prefix,
                defaultJobOptions: { removeOnComplete, removeOnFail, attempts: 1 }
              })
          ),
          (queue) => Effect.promise(() => queue.close().catch(() => undefined))
        )
        queues[pool].on("error", () => {})
      }

      const toBulk = (job: Job, delayMs: number | undefined) => {
        const opts: JobsOptions = {
          deduplication: { id: jobId(job).replaceAll(":", "/"), keepLastIfActive: true }
        }
        if (delayMs !== undefined && delayMs > 0) opts.delay = Math.ceil(delayMs)
        return { name: job._tag, data: encodeJob(job), opts }
      }

      const offer: RunQueue["Type"]["offer"] = (offered, offerOptions) => {
        if (offered.length === 0) return Effect.void
        return Effect.flatMap(withOrg(offered), (jobs) => offerStamped(jobs, offerOptions))
      }

      const offerStamped: RunQueue["Type"]["offer"] = (jobs, offerOptions) => {
        const byPool = new Map<Pool, Array<ReturnType<typeof toBulk>>>()
        for (const job of jobs) {
          const pool = poolOf(job)
          let list = byPool.get(pool)
          if (list === undefined) byPool.set(pool, (list = []))
          list.push(toBulk(job, offerOptions?.delayMs))
        }
        return Effect.forEach(
          byPool,
          ([pool, bulk]) =>
            Effect.tryPromise({
              try: (): Promise<unknown> =>
                bulk.length === 1 ? queues[pool].add(bulk[0]!.name, bulk[0]!.data, bulk[0]!.opts) : queues[pool].addBulk(bulk),
              catch: (cause) =>
                new QueueError({
                  message: `cannot enqueue ${bulk.length} ${pool} job(s) on Redis at ${redactUrl(url)}: ${describeError(cause)}`,
                  cause
                })
            }),
          { discard: true, concurrency: "unbounded" }
        )
      }

      const consume: RunQueue["Type"]["consume"] = (handler) =>
        Effect.gen(function* () {
          // Handler fibers live in this set: closing the scope interrupts any still running
          // after the workers have had `closeTimeout` to finish them.
          const run = yield* FiberSet.makeRuntime<never, void, never>()

          const inflight: Record<Pool, number> = { orchestrator: 0, node: 0, system: 0 }

          const process = (pool: Pool, job: BullJob): Promise<void> => {
            const decoded = decodeJob(job.data)
            if (Either.isLeft(decoded)) {
              // A malformed job is dropped (completed), never retried and never fatal.
              run(Effect.logWarning(`dropping malformed job ${job.id} (${job.name}) from queue ${job.queueName}`, decoded.left.message))
              return Promise.resolve()
            }
            return new Promise<void>((resolve) => {
              inflight[pool]++
              queueActive.unsafeUpdate(inflight[pool], [MetricLabel.make("pool", pool)])
              // The handler acts for the job's org: its store statements see only that org's rows.
              const fiber = run(forJobOrg(handler)(decoded.right))
              fiber.addObserver((exit) => {
                inflight[pool]--
                queueActive.unsafeUpdate(inflight[pool], [MetricLabel.make("pool", pool)])
                // An interrupted handler means this worker is going away: leave the promise
                // pending so the job is neither completed nor failed; its lock lapses and another
                // worker takes it over as stalled.
                if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) return
                if (Exit.isFailure(exit)) {
                  run(Effect.logError(`job ${job.name} ${job.id} failed`, exit.cause))
                }
                resolve()
              })
            })
          }

          for (const pool of pools) {
            yield* Effect.acquireRelease(
              Effect.sync(() => {
                const client = new Redis(url, clientOptions)
                client.on("error", () => {})
                const worker = new Worker(pool, (job) => process(pool, job), {
                  connection: client,
                  prefix,
                  concurrency: concurrency[pool],
                  lockDuration,
                  stalledInterval,
                  maxStalledCount: options.maxStalledCount ?? 10,
                  removeOnComplete,
                  removeOnFail,
                  // Jobs are short; poll often so a delayed job or a takeover is seen promptly.
                  drainDelay: 1
                })
                worker.on("error", (error) => {
                  run(Effect.logWarning(`BullMQ ${pool} worker on Redis at ${redactUrl(url)}: ${describeError(error)}`))
                })
                return { worker, client }
              }),
              ({ client, worker }) =>
                Effect.gen(function* () {
                  // Take no new job; let the active ones finish for up to `closeTimeout`, then
                  // close. Jobs still running after that are abandoned to the stalled check of
                  // another worker (their handler fibers are interrupted with this scope).
                  yield* Effect.promise(() => worker.pause(true).catch(() => undefined))
                  // Finalizers are uninterruptible, so wait by deadline rather than by `timeout`.
                  const deadline = Date.now() + Duration.toMillis(closeTimeout)
                  while (inflight[pool] > 0 && Date.now() < deadline) yield* Effect.sleep("10 millis")
                  const idle = inflight[pool] === 0
                  yield* Effect.promise(() => worker.close(!idle).catch(() => undefined)).pipe(
                    Effect.interruptible,
                    Effect.timeout(closeTimeout),
                    Effect.ignore
                  )
                  client.disconnect()
                })
            )
          }
        })

      return RunQueue.of({ offer, consume })
    })
  )

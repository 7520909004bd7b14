/**
 * Hands orchestrator, node and system jobs to workers. Locally the workers are
 * fibers of this process; in the cloud they are BullMQ workers in many
 * processes. Job ids are deterministic: offering a job while one of its id
 * waits is a no-op, and a job never runs beside another of its id (an offer
 * while it runs is held until that run ends).
 */
import { Context, Data, Effect, FiberSet, Layer, Metric, Option, Queue, Schema } from "effect"
import type { Scope } from "effect"
import { currentOrgId, forOrg, LOCAL_ORG } from "./Tenancy.js"
import { jobTraceparent, withRemoteParent } from "./Tracing.js"

/**
 * The org a job acts for. Left out where a job is made (the engine never names it): the queue
 * stamps the offering fiber's `CurrentOrg` on every job it stores, and a payload written before
 * jobs carried an org decodes as `local`.
 */
const orgId = Schema.optionalToOptional(Schema.String, Schema.String, {
  decode: (org) => Option.orElse(org, () => Option.some(LOCAL_ORG)),
  encode: (org) => org
})

/**
 * The W3C `traceparent` of the run's root span (docs/observability.md): stamped by the queue on
 * offer when tracing is on, the parent of the job's spans where it runs. Never anything else.
 */
const traceparent = Schema.optional(Schema.String)

export const Job = Schema.Union(
  /** Run the orchestrator step for a run: start ready nodes, skip dead ones, settle the run. */
  Schema.TaggedStruct("Advance", { runId: Schema.String, orgId, traceparent }),
  /** Execute one attempt of one node. */
  Schema.TaggedStruct("ExecuteNode", { runId: Schema.String, nodeId: Schema.String, attempt: Schema.Int, orgId, traceparent }),
  /** A human gate's timeout elapsed. */
  Schema.TaggedStruct("GateTimeout", { runId: Schema.String, gateId: Schema.String, orgId, traceparent }),
  /** The run's `timeout_ms` elapsed. */
  Schema.TaggedStruct("RunDeadline", { runId: Schema.String, orgId, traceparent }),
  /**
   * Run a chat's turn (see `ChatTurnJobs`): ids only, never a message's text or a secret. `turn`
   * is the seq of the event that started it; `claimedBy` the process that claimed the chat's turn
   * and hands it to the worker.
   */
  Schema.TaggedStruct("ChatTurn", { chatId: Schema.String, turn: Schema.Int, claimedBy: Schema.String, orgId, traceparent })
)
export type Job = typeof Job.Type

/** The org a job acts for (`local` for a job that names none). */
export const orgOf = (job: Job): string => job.orgId ?? LOCAL_ORG

/**
 * The jobs as a queue stores them: each names an org, the offering fiber's `CurrentOrg` when it
 * named none, and (tracing on) the `traceparent` of the run the fiber works for.
 */
export const withOrg = (jobs: ReadonlyArray<Job>): Effect.Effect<ReadonlyArray<Job>> =>
  Effect.zipWith(currentOrgId, jobTraceparent, (current, trace) =>
    jobs.map((job) => {
      const org = job.orgId === undefined ? { ...job, orgId: current } : job
      return trace === undefined || org.traceparent !== undefined ? org : { ...org, traceparent: trace }
    })
  )

/**
 * A consumer's handler run for the org of its job (every store statement of it acts for that org)
 * and under the span its `traceparent` names.
 */
export const forJobOrg =
  (handler: (job: Job) => Effect.Effect<void>) =>
  (job: Job): Effect.Effect<void> =>
    forOrg(orgOf(job))(withRemoteParent(job.traceparent)(handler(job)))

export type Pool = "orchestrator" | "node" | "system"

/** Jobs waiting in a pool of this process's in-memory queue (docs/observability.md), tagged `pool`. */
export const queueDepth = Metric.gauge("relavium.queue.depth", { description: "jobs waiting, by pool" })

/** Jobs a pool of this process is running, tagged `pool` (BullMQ: the waiting ones are in Redis). */
export const queueActive = Metric.gauge("relavium.queue.active", { description: "jobs running in this process, by pool" })

/** Sets a pool's gauge. */
export const setPoolGauge = (gauge: typeof queueDepth, pool: Pool, value: number): Effect.Effect<void> =>
  Metric.set(Metric.tagged(gauge, "pool", pool), Math.max(0, value))

export const poolOf = (job: Job): Pool =>
  job._tag === "ExecuteNode" || job._tag === "ChatTurn" ? "node" : job._tag === "Advance" ? "orchestrator" : "system"

export const jobId = (job: Job): string => {
  switch (job._tag) {
    case "Advance":
      return `advance:${job.runId}`
    case "ExecuteNode":
      return `node:${job.runId}:${job.nodeId}:${job.attempt}`
    case "GateTimeout":
      return `gate-timeout:${job.runId}:${job.gateId}`
    case "RunDeadline":
      return `deadline:${job.runId}`
    case "ChatTurn":
      return `chat-turn:${job.chatId}:${job.turn}`
  }
}

/** A chat turn job. */
export type ChatTurnJob = Extract<Job, { readonly _tag: "ChatTurn" }>

/**
 * Runs chat turn jobs on a worker (the chat service provides it; the engine's worker hands each
 * `ChatTurn` job to it). A worker without it logs such a job as failed: give every worker of a
 * deployment that serves chats the chat service.
 */
export class ChatTurnJobs extends Context.Tag("@relavium/ports/ChatTurnJobs")<
  ChatTurnJobs,
  { readonly run: (job: ChatTurnJob) => Effect.Effect<void> }
>() {}

export class QueueError extends Data.TaggedError("QueueError")<{ readonly message: string; readonly cause?: unknown }> {}

export interface OfferOptions {
  readonly delayMs?: number | undefined
}

export class RunQueue extends Context.Tag("@relavium/ports/RunQueue")<
  RunQueue,
  {
    readonly offer: (jobs: ReadonlyArray<Job>, options?: OfferOptions) => Effect.Effect<void, QueueError>
    /** Runs `handler` for each job, on each pool's workers, until the scope closes. */
    readonly consume: (handler: (job: Job) => Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
  }
>() {
  /** In-process queues, one per pool, with the given worker counts. */
  static readonly layerMemory = (
    concurrency: Readonly<Record<Pool, number>> = { orchestrator: 4, node: 64, system: 2 }
  ): Layer.Layer<RunQueue> =>
    Layer.scoped(
      RunQueue,
      Effect.gen(function* () {
        const queues = {
          orchestrator: yield* Queue.unbounded<Job>(),
          node: yield* Queue.unbounded<Job>(),
          system: yield* Queue.unbounded<Job>()
        } satisfies Record<Pool, Queue.Queue<Job>>
        // A job id waits (or is delayed) at most once, and never runs beside itself: an offer while
        // it waits is dropped; an offer while it runs is held, and offered once its run ends (the
        // latest of several such offers) — as BullMQ deduplication with `keepLastIfActive` does.
        const waiting = new Set<string>()
        const running = new Set<string>()
        const heldUntilDone = new Map<string, { readonly job: Job; readonly delayMs: number | undefined }>()
        const timers = yield* FiberSet.make()

        const admit = (jobs: ReadonlyArray<Job>, delayMs: number | undefined): Effect.Effect<void> =>
          Effect.suspend(() => {
            const fresh = jobs.filter((job) => {
              const id = jobId(job)
              if (waiting.has(id)) return false
              if (running.has(id)) {
                heldUntilDone.set(id, { job, delayMs })
                return false
              }
              waiting.add(id)
              return true
            })
            if (fresh.length === 0) return Effect.void
            const enqueue = Effect.forEach(
              fresh,
              (job) =>
                Effect.zipRight(
                  Queue.offer(queues[poolOf(job)], job),
                  Effect.flatMap(Queue.size(queues[poolOf(job)]), (size) => setPoolGauge(queueDepth, poolOf(job), size))
                ),
              { discard: true }
            )
            return delayMs !== undefined && delayMs > 0
              ? FiberSet.run(timers, Effect.sleep(delayMs).pipe(Effect.zipRight(enqueue))).pipe(Effect.asVoid)
              : enqueue
          })

        const finished = (id: string) =>
          Effect.suspend(() => {
            running.delete(id)
            const held = heldUntilDone.get(id)
            if (held === undefined) return Effect.void
            heldUntilDone.delete(id)
            return admit([held.job], held.delayMs)
          })

        const work = (handler: (job: Job) => Effect.Effect<void>) => (job: Job) => {
          const id = jobId(job)
          waiting.delete(id)
          running.add(id)
          return handler(job).pipe(Effect.ensuring(finished(id)))
        }

        return RunQueue.of({
          offer: (jobs, options) => Effect.flatMap(withOrg(jobs), (stamped) => admit(stamped, options?.delayMs)),
          consume: (handler) =>
            Effect.forEach(
              ["orchestrator", "node", "system"] as const,
              (pool) =>
                Effect.forkScoped(
                  Effect.forEach(
                    Array.from({ length: concurrency[pool] }),
                    () =>
                      Queue.take(queues[pool]).pipe(
                        Effect.tap(() => Effect.flatMap(Queue.size(queues[pool]), (size) => setPoolGauge(queueDepth, pool, size))),
                        Effect.flatMap(work(forJobOrg(handler))),
                        Effect.forever
                      ),
                    { concurrency: "unbounded", discard: true }
                  )
                ),
              { discard: true }
            )
        })
      })
    )
}

/**
 * The worker: takes run jobs from the RunQueue and executes them — an
 * orchestrator step, a node, a gate's timeout, a run's deadline — retrying a
 * job whose store or queue failed for a moment. A periodic sweep offers again
 * the jobs of runs whose jobs were lost.
 */
import { Cause, Clock, Duration, Effect, Schedule } from "effect"
import { ChatTurnJobs, forOrg, type Job, type RecoverableRun, RunQueue, RunStore, Tracing, UpdateHub } from "@relavium/ports"
import { type EngineError, isoAt, storeError } from "./EngineError.js"
import { gateDecision } from "./Gates.js"
import { makeNodeRunner, type NodeServices } from "./NodeRunner.js"
import { isTransient, jobRetry, offerRetry } from "./RetryPolicy.js"
import { RunCache } from "./RunCache.js"
import { makeRunLoop, offerSpan } from "./RunLoop.js"
import { SpanName } from "./Telemetry.js"
import { completedOutputs, isTerminalState } from "./RunState.js"

export interface WorkerOptions {
  /**
   * How often this worker looks for runs whose jobs were lost — a process killed (SIGKILL) after
   * committing a step and before offering its jobs — and offers them again (default 15 s; 0: never,
   * as in the local mode, where `resume` recovers a run instead).
   */
  readonly sweepEvery?: Duration.DurationInput | undefined
  /** A running run that has written no event for this long is looked at by the sweep (default 30 s). */
  readonly staleAfter?: Duration.DurationInput | undefined
}

export const makeWorker = (options: WorkerOptions = {}) => Effect.gen(function* () {
  const runs = yield* RunCache
  const queue = yield* RunQueue
  const hub = yield* UpdateHub
  const store = yield* RunStore
  const services = yield* Effect.context<NodeServices>()
  const chatTurns = yield* Effect.serviceOption(ChatTurnJobs)

  const offer = (jobs: ReadonlyArray<Job>, delayMs?: number) =>
    queue.offer(jobs, { delayMs }).pipe(Effect.retry(offerRetry), Effect.orDie, offerSpan(jobs.map((job) => job._tag), delayMs))

  const loop = makeRunLoop(runs, offer)
  const { advanceCoalesced } = loop
  const { executeNode } = makeNodeRunner({ runs, hub, services, offer, loop, workerScope: yield* Effect.scope })

  const gateTimeout = (runId: string, gateId: string) =>
    Effect.gen(function* () {
      const { state } = yield* runs.load(runId)
      const gate = state.pendingGates.get(gateId)
      if (gate === undefined || isTerminalState(state)) return
      // A job that came early (a clock running behind the one that set the expiry) waits for the rest.
      const leftMs = gate.expiresAt === undefined ? 0 : Date.parse(gate.expiresAt) - (yield* Clock.currentTimeMillis)
      if (leftMs > 5) {
        yield* offer([{ _tag: "GateTimeout", runId, gateId }], leftMs)
        return
      }
      yield* gateDecision(runs, queue, runId, gateId, {
        decision: gate.timeoutAction === "approve" ? "approved" : "rejected",
        decidedBy: "timeout"
      })
    })

  const deadline = (runId: string) =>
    Effect.gen(function* () {
      const { state } = yield* runs.load(runId)
      const timeoutMs = state.plan.spec.timeout_ms
      if (isTerminalState(state) || timeoutMs === undefined) return
      const nowMs = yield* Clock.currentTimeMillis
      const elapsedMs = nowMs - state.startedAtMs
      if (elapsedMs < timeoutMs) {
        yield* offer([{ _tag: "RunDeadline", runId }], timeoutMs - elapsedMs)
        return
      }
      yield* runs
        .commit(runId, [
          { type: "run:timeout", runId, timestamp: isoAt(nowMs), elapsedMs, timeoutMs },
          {
            type: "run:failed",
            runId,
            timestamp: isoAt(nowMs),
            error: { code: "run_timeout", message: `the run took longer than its timeout_ms of ${timeoutMs} ms`, retryable: false },
            partialOutputs: completedOutputs(state)
          }
        ])
        .pipe(Effect.catchTag("RunClosed", () => Effect.succeed([])), Effect.mapError(storeError))
    })

  const handle = (job: Job): Effect.Effect<void> => {
    // A chat's turn is the chat service's job: it keeps its own log, claim and errors.
    if (job._tag === "ChatTurn") {
      return chatTurns._tag === "Some"
        ? chatTurns.value.run(job)
        : Effect.logError(`job ChatTurn for chat ${job.chatId}: this worker runs no chats (it has no chat service)`)
    }
    const work =
      job._tag === "Advance"
        ? advanceCoalesced(job.runId)
        : job._tag === "ExecuteNode"
          ? executeNode(job.runId, job.nodeId, job.attempt)
          : job._tag === "GateTimeout"
            ? gateTimeout(job.runId, job.gateId)
            : deadline(job.runId)
    // A node's job is the node's span (NodeRunner.ts); the others are a span each.
    const traced =
      job._tag === "ExecuteNode"
        ? work
        : Effect.withSpan(work, SpanName.job(job._tag), {
            kind: "consumer",
            attributes: { "relavium.run_id": job.runId, ...(job._tag === "GateTimeout" ? { "relavium.gate_id": job.gateId } : {}) }
          })
    const sandboxed = Effect.sandbox(traced)
    return sandboxed.pipe(
      // A store or queue that failed for a moment (a dropped connection, a restart) fails the step,
      // not the run: it runs again after a pause, reading the run back from the store. Checkpoints
      // keep it safe: a node found completed is not run again. The retry (its schedule's state) is
      // built only after a failure: the first attempt, which nearly always succeeds, runs bare, and
      // its failure is handed to the schedule as the first input, as `Effect.retry` would.
      Effect.catchAll((first) => {
        let replayed = false
        const attempt = Effect.suspend(() => {
          if (replayed) return sandboxed
          replayed = true
          return Effect.fail(first)
        })
        return Effect.retry(attempt, {
          while: isTransient,
          schedule: jobRetry.pipe(
            Schedule.tapInput((cause: Cause.Cause<EngineError>) =>
              Effect.logWarning(`job ${job._tag} for run ${job.runId} failed; retrying: ${Cause.squash(cause)}`)
            )
          )
        })
      }),
      Effect.unsandbox,
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError(`job ${job._tag} for run ${job.runId} failed`, cause)
      )
    )
  }

  yield* queue.consume(handle)

  /**
   * Offers again the jobs a stale running run needs: an orchestrator step, and each running node's
   * job at its current attempt (after what is left of a retry's backoff). The queue drops an offer
   * whose job is already waiting, and one whose job is running elsewhere finds the node settled and
   * only moves the run on: a sweep never runs a node twice, at worst it wakes a run that was fine.
   */
  const sweep = Effect.gen(function* () {
    const staleMs = Duration.toMillis(Duration.decode(options.staleAfter ?? "30 seconds"))
    const records = yield* store.runsToRecover()
    const nowMs = yield* Clock.currentTimeMillis
    for (const record of records) {
      if (record.status !== "running" || nowMs - Date.parse(record.updatedAt) < staleMs) continue
      // The store lists the runs of every org; each is looked at, and its jobs offered, for its own.
      const look = sweepRun(record, staleMs, nowMs)
      yield* record.orgId === undefined ? look : forOrg(record.orgId)(look)
    }
  }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("the sweep for runs with lost jobs failed; it runs again later", cause)))

  const sweepRun = (record: RecoverableRun, staleMs: number, nowMs: number) =>
    Effect.gen(function* () {
      const { state } = yield* runs.load(record.runId)
      if (isTerminalState(state)) return
      const running = [...state.nodes].filter(([, node]) => node.status === "running")
      const events = running.length > 0 ? yield* store.events(record.runId).pipe(Effect.mapError(storeError)) : []
      yield* offer([{ _tag: "Advance", runId: record.runId }])
      for (const [nodeId, node] of running) {
        const retrying = [...events].reverse().find((e) => e.type === "node:retrying" && e.nodeId === nodeId && e.attemptNumber === node.attempt)
        const dueMs = retrying?.type === "node:retrying" ? Date.parse(retrying.timestamp) + retrying.delayMs - nowMs : 0
        yield* offer([{ _tag: "ExecuteNode", runId: record.runId, nodeId, attempt: node.attempt }], dueMs > 0 ? dueMs : undefined)
      }
      yield* Effect.logInfo(`run ${record.runId} had written nothing for ${Math.round(staleMs / 1000)} s: its jobs were offered again`)
    }).pipe(
      // The jobs offered again carry this span's traceparent: the rest of the run is a trace under it.
      Tracing.asRunTrace,
      Effect.withSpan(SpanName.runSweep, { attributes: { "relavium.run_id": record.runId } })
    )

  const sweepMs = Duration.toMillis(Duration.decode(options.sweepEvery ?? "15 seconds"))
  if (sweepMs > 0) yield* sweep.pipe(Effect.delay(Duration.millis(sweepMs)), Effect.forever, Effect.forkScoped)
})

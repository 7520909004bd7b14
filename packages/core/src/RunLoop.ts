/**
 * The orchestrator step as the worker runs it: fold the run, ask the pure
 * `Orchestrator.step` what to skip, start or settle, and commit that together
 * with the jobs of the nodes it starts. `advanceCoalesced` runs at most one
 * step per run at a time in this process.
 */
import { Effect, Either } from "effect"
import type { RunEvent as RE } from "@relavium/domain"
import type { Job } from "@relavium/ports"
import { type EngineError, now, storeError } from "./EngineError.js"
import * as Orchestrator from "./Orchestrator.js"
import type { Runs } from "./RunCache.js"
import { isTerminalState, type RunState } from "./RunState.js"
import { SpanName } from "./Telemetry.js"

/** The span of one hop through the queue: which jobs were offered (their types), and after how long. */
export const offerSpan =
  (tags: ReadonlyArray<string>, delayMs?: number) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withSpan(effect, SpanName.queueOffer, {
      kind: "producer",
      attributes: { "relavium.jobs": [...tags], "relavium.job_count": tags.length, ...(delayMs === undefined ? {} : { "relavium.delay_ms": delayMs }) }
    })

/** Offers jobs to the queue (after `delayMs`); a queue that keeps failing is a defect the job retry sees. */
export type Offer = (jobs: ReadonlyArray<Job>, delayMs?: number) => Effect.Effect<void>

/**
 * Commits `drafts` (only while the log still ends at `expected`, when given) and then runs `then`
 * (offering the jobs the commit calls for), uninterruptibly: a stop or a queue failure between the
 * two would leave the run waiting for a job that never comes.
 */
export const commitThen = <E>(
  runs: Runs,
  runId: string,
  drafts: ReadonlyArray<RE.RunEventDraft>,
  expected: number | undefined,
  then: Effect.Effect<void, E>
) => runs.commit(runId, drafts, expected).pipe(Effect.tap(() => then), Effect.either, Effect.uninterruptible)

/** The jobs of the nodes a step starts. */
export const startJobs = (runId: string, step: Orchestrator.Step): ReadonlyArray<Job> =>
  step.start.map((nodeId) => ({ _tag: "ExecuteNode" as const, runId, nodeId, attempt: 1 }))

/**
 * The events of an orchestrator step: its skips, its starts and the run's settlement. `completing`
 * is a node whose `node:completed` (with `tokensUsed`) goes in the same commit, before these.
 */
export const stepDrafts = (
  state: RunState,
  step: Orchestrator.Step,
  timestamp: string,
  completing?: { readonly tokensUsed: { readonly input: number; readonly output: number } }
): Array<RE.RunEventDraft> => {
  const { runId } = state
  const drafts: Array<RE.RunEventDraft> = []
  for (const { nodeId, reason } of step.skip) drafts.push({ type: "node:skipped", runId, timestamp, nodeId, reason })
  for (const nodeId of step.start) {
    drafts.push({ type: "node:started", runId, timestamp, nodeId, nodeType: state.plan.nodes.get(nodeId)!.type, attemptNumber: 1 })
  }
  const settle = step.settle
  if (settle?._tag === "Completed") {
    drafts.push({
      type: "run:completed",
      runId,
      timestamp,
      outputs: settle.outputs,
      totalTokensUsed: {
        input: state.inputTokens + (completing?.tokensUsed.input ?? 0),
        output: state.outputTokens + (completing?.tokensUsed.output ?? 0)
      },
      totalCostMicrocents: state.costMicrocents,
      durationMs: Math.max(0, Date.parse(timestamp) - state.startedAtMs)
    })
  } else if (settle?._tag === "Failed") {
    drafts.push({ type: "run:failed", runId, timestamp, error: settle.error, partialOutputs: settle.partialOutputs })
  } else if (settle?._tag === "Paused") {
    drafts.push({ type: "run:paused", runId, timestamp, pendingGateCount: settle.gateIds.length, gateIds: settle.gateIds })
  }
  return drafts
}

export const makeRunLoop = (runs: Runs, offer: Offer) => {
  const advance = (runId: string): Effect.Effect<void, EngineError> =>
    Effect.gen(function* () {
      for (let tries = 0; tries < 100; tries++) {
        const { state } = yield* (tries === 0 ? runs.current(runId) : runs.load(runId))
        if (isTerminalState(state)) return
        const step = Orchestrator.step(state)
        const drafts = stepDrafts(state, step, yield* now)
        // Nothing to do on the cached view may only mean another process's events are missing.
        if (drafts.length === 0 && tries === 0) continue
        if (drafts.length === 0) return
        // The nodes' start and their jobs go together: a worker stopping in between would leave
        // nodes marked running that no job runs.
        const jobs = startJobs(runId, step)
        const result = yield* commitThen(runs, runId, drafts, state.lastSequenceNumber, jobs.length > 0 ? offer(jobs) : Effect.void)
        if (Either.isLeft(result)) {
          if (result.left._tag === "SequenceConflict") continue
          if (result.left._tag === "RunClosed") return
          return yield* storeError(result.left)
        }
        if (step.settle !== undefined || step.start.length > 0) return
      }
    })

  /**
   * Runs the orchestrator step, at most one at a time per run in this process: a request that
   * arrives while a step runs makes that step run once more instead of racing it into a
   * SequenceConflict. A request left over by a failed step goes to the queue.
   */
  const rerunRequested = new Map<string, boolean>()
  const advanceCoalesced = (runId: string): Effect.Effect<void, EngineError> =>
    Effect.suspend(() => {
      if (rerunRequested.has(runId)) {
        rerunRequested.set(runId, true)
        return Effect.void
      }
      rerunRequested.set(runId, false)
      const loop: Effect.Effect<void, EngineError> = Effect.flatMap(advance(runId), () =>
        Effect.suspend(() => {
          if (rerunRequested.get(runId) !== true) return Effect.void
          rerunRequested.set(runId, false)
          return loop
        })
      )
      return Effect.ensuring(
        loop,
        Effect.suspend(() => {
          const again = rerunRequested.get(runId) === true
          rerunRequested.delete(runId)
          return again ? offer([{ _tag: "Advance", runId }]) : Effect.void
        })
      )
    })

  return { advance, advanceCoalesced }
}

export type RunLoop = ReturnType<typeof makeRunLoop>

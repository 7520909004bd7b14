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
import { isTerminalState } from "./RunState.js"

/** Offers jobs to the queue (after `delayMs`); a queue that keeps failing is a defect the job retry sees. */
export type Offer = (jobs: ReadonlyArray<Job>, delayMs?: number) => Effect.Effect<void>

export const makeRunLoop = (runs: Runs, offer: Offer) => {
  const advance = (runId: string): Effect.Effect<void, EngineError> =>
    Effect.gen(function* () {
      for (let tries = 0; tries < 100; tries++) {
        const { state } = yield* (tries === 0 ? runs.current(runId) : runs.load(runId))
        if (isTerminalState(state)) return
        const step = Orchestrator.step(state)
        const timestamp = yield* now
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
            totalTokensUsed: { input: state.inputTokens, output: state.outputTokens },
            totalCostMicrocents: state.costMicrocents,
            durationMs: Math.max(0, Date.parse(timestamp) - state.startedAtMs)
          })
        } else if (settle?._tag === "Failed") {
          drafts.push({ type: "run:failed", runId, timestamp, error: settle.error, partialOutputs: settle.partialOutputs })
        } else if (settle?._tag === "Paused") {
          drafts.push({ type: "run:paused", runId, timestamp, pendingGateCount: settle.gateIds.length, gateIds: settle.gateIds })
        }
        // Nothing to do on the cached view may only mean another process's events are missing.
        if (drafts.length === 0 && tries === 0) continue
        if (drafts.length === 0) return
        // The nodes' start and their jobs go together: a worker stopping in between would leave
        // nodes marked running that no job runs.
        const result = yield* runs.commit(runId, drafts, state.lastSequenceNumber).pipe(
          Effect.tap(() =>
            step.start.length > 0
              ? offer(step.start.map((nodeId) => ({ _tag: "ExecuteNode" as const, runId, nodeId, attempt: 1 })))
              : Effect.void
          ),
          Effect.either,
          Effect.uninterruptible
        )
        if (Either.isLeft(result)) {
          if (result.left._tag === "SequenceConflict") continue
          if (result.left._tag === "RunClosed") return
          return yield* storeError(result.left)
        }
        if (settle !== undefined || step.start.length > 0) return
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

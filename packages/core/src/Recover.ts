/**
 * Recovering a run whose process died: record what it left unfinished (a tool
 * call without a result, a node attempt that never settled), run those nodes
 * again as new attempts, and re-arm the run's gate timeouts and deadline.
 */
import { Effect, Either } from "effect"
import type { RunEvent as RE } from "@relavium/domain"
import type { Job, RunQueue, RunStore } from "@relavium/ports"
import { type EngineError, now, storeError } from "./EngineError.js"
import type { Runs } from "./RunCache.js"
import { isTerminalState } from "./RunState.js"

export const makeRecover = (runs: Runs, store: RunStore["Type"], queue: RunQueue["Type"]) =>
  (runId: string): Effect.Effect<void, EngineError> =>
  Effect.gen(function* () {
    const { state } = yield* runs.load(runId)
    if (isTerminalState(state)) return
    const jobs: Array<Job> = [{ _tag: "Advance", runId }]
    const running = [...state.nodes].filter(([, node]) => node.status === "running")
    if (running.length > 0) {
      // The process running these nodes stopped. Record what it left unfinished, then run them again.
      const drafts = interruptionDrafts(runId, yield* store.events(runId).pipe(Effect.mapError(storeError)), running)
      const committed = yield* runs.commit(runId, drafts, state.lastSequenceNumber).pipe(Effect.either)
      if (Either.isLeft(committed)) {
        // Someone else wrote to the run meanwhile (another process is running it): leave it to them.
        if (committed.left._tag === "SequenceConflict" || committed.left._tag === "RunClosed") return
        return yield* storeError(committed.left)
      }
      for (const [nodeId, node] of running) jobs.push({ _tag: "ExecuteNode", runId, nodeId, attempt: node.attempt + 1 })
    }
    yield* queue.offer(jobs).pipe(Effect.mapError(storeError))
    for (const gate of state.pendingGates.values()) {
      if (gate.expiresAt !== undefined) {
        yield* queue
          .offer([{ _tag: "GateTimeout", runId, gateId: gate.gateId }], {
            delayMs: Math.max(0, Date.parse(gate.expiresAt) - Date.now())
          })
          .pipe(Effect.mapError(storeError))
      }
    }
    const timeoutMs = state.plan.spec.timeout_ms
    if (timeoutMs !== undefined) {
      yield* queue
        .offer([{ _tag: "RunDeadline", runId }], { delayMs: Math.max(0, state.startedAtMs + timeoutMs - Date.now()) })
        .pipe(Effect.mapError(storeError))
    }
  })

/**
 * What a dead process left unfinished: each tool call without a result gets an
 * "interrupted" result, and each running node an interrupted attempt, so the
 * log says what happened and the node runs again as a new attempt.
 */
const interruptionDrafts = (
  runId: string,
  events: ReadonlyArray<RE.RunEvent>,
  running: ReadonlyArray<readonly [string, { readonly attempt: number }]>
): Array<RE.RunEventDraft> => {
  const timestamp = now()
  const drafts: Array<RE.RunEventDraft> = []
  for (const [nodeId, node] of running) {
    const open = new Set<string>()
    for (const event of events) {
      if (event.type === "node:started" && event.nodeId === nodeId) open.clear()
      if (event.type === "agent:tool_call" && event.nodeId === nodeId) open.add(event.toolId)
      if (event.type === "agent:tool_result" && event.nodeId === nodeId) open.delete(event.toolId)
    }
    for (const toolId of open) {
      drafts.push({
        type: "agent:tool_result",
        runId,
        timestamp,
        nodeId,
        toolId,
        success: false,
        errorCode: "tool_failed",
        outputSummary: "interrupted: the process running this tool call stopped before it finished"
      })
    }
    drafts.push({
      type: "node:retrying",
      runId,
      timestamp,
      nodeId,
      attemptNumber: node.attempt + 1,
      error: { code: "internal", message: "interrupted: the process running this node stopped; running it again", retryable: true },
      delayMs: 0,
      interrupted: true
    })
  }
  return drafts
}

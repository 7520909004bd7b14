/**
 * Recovering a run whose process died: record what it left unfinished (a tool
 * call without a result, a node attempt that never settled), run those nodes
 * again as new attempts, and re-arm the run's gate timeouts and deadline.
 *
 * A poison run — one whose node brings the process down on every resume — is
 * not resumed forever: each recovery of a running node is written to the log
 * (`node:retrying` with `interrupted`), and a node found interrupted again after
 * `maxCrashResumes` resumes without progress (a fresh start or a completed
 * agent turn) fails the run with `poison_run`. See docs/recovery.md.
 */
import { Clock, Effect, Either } from "effect"
import type { RunEvent as RE } from "@relavium/domain"
import type { Job, RunQueue, RunStore } from "@relavium/ports"
import { type EngineError, isoAt, storeError } from "./EngineError.js"
import type { Runs } from "./RunCache.js"
import { completedOutputs, isTerminalState, type NodeState } from "./RunState.js"

/** How many times a node interrupted without progress is resumed; the next interruption fails the run. */
export const maxCrashResumes = 3

/** What `recover` did with a run. */
export type RecoverOutcome =
  /** The run had ended: nothing to do. */
  | { readonly _tag: "Ended" }
  /** Another process wrote to the run meanwhile (it is running it): left to that process. */
  | { readonly _tag: "Busy" }
  /** Its jobs were offered again; `rerun` names the nodes that run again as a new attempt. */
  | { readonly _tag: "Resumed"; readonly rerun: ReadonlyArray<string> }
  /** A node was interrupted once more after `maxCrashResumes` resumes: the run was failed. */
  | { readonly _tag: "Poisoned"; readonly nodeId: string; readonly message: string }

/** The message of the `poison_run` error that ends a run whose node keeps stopping the process. */
export const poisonMessage = (nodeId: string, interruptions: number) =>
  `interrupted ${interruptions} times while running node '${nodeId}': the process stopped (killed or crashed) each time ` +
  `before the node made progress, and after ${maxCrashResumes} resumes the run is not resumed again. ` +
  `Find what stops the process during this node (a tool call, a command, memory), fix it, then start the run again.`

export const makeRecover = (runs: Runs, store: RunStore["Type"], queue: RunQueue["Type"]) =>
  (runId: string): Effect.Effect<RecoverOutcome, EngineError> =>
    Effect.gen(function* () {
      const { state } = yield* runs.load(runId)
      if (isTerminalState(state)) return { _tag: "Ended" } as const
      const nowMs = yield* Clock.currentTimeMillis
      const jobs: Array<Job> = [{ _tag: "Advance", runId }]
      const running = [...state.nodes].filter(([, node]) => node.status === "running")
      const poisoned = running.find(([, node]) => (node.interruptions ?? 0) >= maxCrashResumes)
      if (running.length > 0) {
        // The process running these nodes stopped. Record what it left unfinished, then run them
        // again — or, for a node that keeps stopping the process, end the run.
        const events = yield* store.events(runId).pipe(Effect.mapError(storeError))
        const drafts =
          poisoned === undefined
            ? interruptionDrafts(runId, isoAt(nowMs), events, running)
            : poisonDrafts(runId, isoAt(nowMs), events, running, poisoned, completedOutputs(state))
        const committed = yield* runs.commit(runId, drafts, state.lastSequenceNumber).pipe(Effect.either)
        if (Either.isLeft(committed)) {
          if (committed.left._tag === "SequenceConflict" || committed.left._tag === "RunClosed") return { _tag: "Busy" } as const
          return yield* storeError(committed.left)
        }
        if (poisoned !== undefined) {
          const [nodeId, node] = poisoned
          return { _tag: "Poisoned", nodeId, message: poisonMessage(nodeId, (node.interruptions ?? 0) + 1) } as const
        }
        for (const [nodeId, node] of running) jobs.push({ _tag: "ExecuteNode", runId, nodeId, attempt: node.attempt + 1 })
      }
      yield* queue.offer(jobs).pipe(Effect.mapError(storeError))
      for (const gate of state.pendingGates.values()) {
        if (gate.expiresAt !== undefined) {
          yield* queue
            .offer([{ _tag: "GateTimeout", runId, gateId: gate.gateId }], {
              delayMs: Math.max(0, Date.parse(gate.expiresAt) - nowMs)
            })
            .pipe(Effect.mapError(storeError))
        }
      }
      const timeoutMs = state.plan.spec.timeout_ms
      if (timeoutMs !== undefined) {
        yield* queue
          .offer([{ _tag: "RunDeadline", runId }], { delayMs: Math.max(0, state.startedAtMs + timeoutMs - nowMs) })
          .pipe(Effect.mapError(storeError))
      }
      return { _tag: "Resumed", rerun: running.map(([nodeId]) => nodeId) } as const
    })

type Running = ReadonlyArray<readonly [string, NodeState]>

/** Each tool call of the running nodes without a result gets an "interrupted" result. */
const openToolCallDrafts = (runId: string, events: ReadonlyArray<RE.RunEvent>, running: Running, timestamp: string) => {
  const drafts: Array<RE.RunEventDraft> = []
  for (const [nodeId] of running) {
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
  }
  return drafts
}

/**
 * What a dead process left unfinished: each tool call without a result gets an
 * "interrupted" result, and each running node an interrupted attempt, so the
 * log says what happened and the node runs again as a new attempt.
 */
const interruptionDrafts = (
  runId: string,
  timestamp: string,
  events: ReadonlyArray<RE.RunEvent>,
  running: Running
): Array<RE.RunEventDraft> => {
  const drafts = openToolCallDrafts(runId, events, running, timestamp)
  for (const [nodeId, node] of running) {
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

/** The end of a poison run: open tool calls closed, the node failed, then the run, with the same `poison_run` error. */
const poisonDrafts = (
  runId: string,
  timestamp: string,
  events: ReadonlyArray<RE.RunEvent>,
  running: Running,
  [nodeId, node]: readonly [string, NodeState],
  partialOutputs: Readonly<Record<string, unknown>>
): Array<RE.RunEventDraft> => {
  const error = { code: "poison_run" as const, message: poisonMessage(nodeId, (node.interruptions ?? 0) + 1), retryable: false }
  return [
    ...openToolCallDrafts(runId, events, running, timestamp),
    { type: "node:failed", runId, timestamp, nodeId, error, attemptNumber: node.attempt },
    { type: "run:failed", runId, timestamp, error: { ...error, nodeId }, partialOutputs }
  ]
}

/**
 * The workflow engine: `WorkflowEngine` starts, resumes and cancels runs by
 * writing events and offering jobs; `EngineWorker` takes the jobs and executes
 * them. Locally both run in one process; in the cloud the api holds only the
 * engine and workers hold only the worker. Neither keeps state that is not in
 * the event log: the run cache is a memo of the fold, rebuilt on a miss.
 */
import { FileSystem, Path } from "@effect/platform"
import { Cause, Context, Data, Duration, Effect, Either, Exit, Fiber, FiberId, Layer, Option, Schedule, Scope, Stream } from "effect"
import { Inputs, type Plan, RunError, RunEvent as RE, type Workflow, WorkflowYaml } from "@relavium/domain"
import { DaemonRouter } from "@relavium/ports"
import { EventLog } from "@relavium/ports"
import { ExpressionSandbox } from "@relavium/ports"
import { interpolate } from "./Interpolate.js"
import { LlmProvider } from "@relavium/ports"
import { ModelPricing } from "@relavium/ports"
import { type NodeContext, outputsFor } from "./NodeContext.js"
import { runNode } from "./Nodes.js"
import * as Orchestrator from "./Orchestrator.js"
import { type Job, RunQueue } from "@relavium/ports"
import { applyEvents, completedOutputs, initialState, isTerminalState, nodeState, type RunState } from "./RunState.js"
import { RunStore, type StoreError } from "@relavium/ports"
import { UpdateHub } from "@relavium/ports"
import { WorkflowStore } from "@relavium/ports"

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

export class EngineError extends Data.TaggedError("EngineError")<{
  readonly reason: "not_found" | "invalid_input" | "invalid_workflow" | "conflict" | "store"
  readonly message: string
  readonly cause?: unknown
}> {}

export interface GateResolution {
  readonly decision: RE.GateDecision
  readonly decidedBy: string
  readonly payload?: unknown
  readonly comment?: string | undefined
}

export interface StartOptions {
  /** Values arrive as strings (CLI `--input k=v`) and are coerced to the declared types. */
  readonly coerceStrings?: boolean | undefined
  readonly runId?: string | undefined
}

export interface RunHandle {
  readonly runId: string
  /** Every event of the run from the first, live, ending with its terminal event. */
  readonly events: Stream.Stream<RE.RunEvent, EngineError>
}

export class WorkflowEngine extends Context.Tag("@relavium/core/WorkflowEngine")<
  WorkflowEngine,
  {
    readonly start: (
      workflowId: string,
      input: Readonly<Record<string, unknown>>,
      options?: StartOptions
    ) => Effect.Effect<RunHandle, EngineError>
    /** Decides a pending gate. Deciding a gate that is already decided does nothing. */
    readonly resume: (runId: string, gateId: string | undefined, resolution: GateResolution) => Effect.Effect<void, EngineError>
    readonly cancel: (runId: string, reason?: string) => Effect.Effect<void, EngineError>
    readonly events: (runId: string, afterSequenceNumber?: number) => Stream.Stream<RE.RunEvent, EngineError>
    /** Continues a run whose process died: re-runs the nodes that were running, re-arms timers. */
    readonly recover: (runId: string) => Effect.Effect<void, EngineError>
  }
>() {}

export interface EngineOptions {
  readonly executionMode: RE.ExecutionMode
}

// ---------------------------------------------------------------------------
// The run cache: compiled plans and folded state, per process
// ---------------------------------------------------------------------------

interface RunEntry {
  readonly state: RunState
  /** Input values as given, secrets included; only the starting process has them. */
  inputs: Readonly<Record<string, unknown>>
  ctx: Readonly<Record<string, unknown>>
  /** False once an event of another writer may be missing: the next read goes to the store. */
  synced: boolean
}

const storeError = (cause: { readonly _tag: string; readonly message?: string }) =>
  new EngineError({ reason: "store", message: cause.message ?? cause._tag, cause })

const now = () => new Date().toISOString()

const makeRuns = Effect.gen(function* () {
  const store = yield* RunStore
  const workflows = yield* WorkflowStore
  const log = yield* EventLog
  const hub = yield* UpdateHub
  const fs = yield* FileSystem.FileSystem
  const plans = new Map<string, Plan.WorkflowPlan>()
  const entries = new Map<string, RunEntry>()
  /** Callbacks to run when this process sees a run's terminal event; see `watchEnd`. */
  const endWatchers = new Map<string, Set<() => void>>()

  const signalEnd = (runId: string) => {
    const watchers = endWatchers.get(runId)
    if (watchers !== undefined) {
      endWatchers.delete(runId)
      for (const onEnd of watchers) onEnd()
    }
  }

  /**
   * Calls `onEnd` once when a terminal event of the run is committed or read by this process, or
   * reported through `signalEnd`. `first` says that nothing watched the run before, so the caller
   * should also watch the hub for terminal events that other processes write.
   */
  const watchEnd = (runId: string, onEnd: () => void) => {
    let watchers = endWatchers.get(runId)
    const first = watchers === undefined
    if (watchers === undefined) endWatchers.set(runId, (watchers = new Set()))
    watchers.add(onEnd)
    const set = watchers
    return { first, stop: () => void set.delete(onEnd) }
  }

  const plan = (workflowId: string) =>
    Effect.gen(function* () {
      const cached = plans.get(workflowId)
      if (cached) return cached
      const stored = yield* workflows.get(workflowId).pipe(Effect.mapError(storeError))
      if (Option.isNone(stored)) {
        return yield* new EngineError({ reason: "not_found", message: `no workflow with id ${workflowId}` })
      }
      const compiled = WorkflowYaml.parseWorkflow(stored.value.source, stored.value.file)
      if (Either.isLeft(compiled)) {
        return yield* new EngineError({ reason: "invalid_workflow", message: compiled.left.message, cause: compiled.left })
      }
      plans.set(workflowId, compiled.right)
      return compiled.right
    })

  const resolveContext = (spec: Workflow.WorkflowSpec, inputs: Readonly<Record<string, unknown>>) =>
    Effect.gen(function* () {
      const ctx: Record<string, unknown> = {}
      for (const entry of spec.context ?? []) {
        ctx[entry.key] = yield* interpolate(entry.value, { inputs, ctx, outputs: {} }).pipe(
          Effect.mapError((e) => RunError.nodeFailure("validation", `context '${entry.key}': ${e.message}`))
        )
      }
      return ctx
    }).pipe(Effect.provideService(FileSystem.FileSystem, fs))

  const load = (runId: string): Effect.Effect<RunEntry, EngineError> =>
    Effect.gen(function* () {
      const cached = entries.get(runId)
      if (cached) {
        const fresh = yield* store.events(runId, cached.state.lastSequenceNumber).pipe(Effect.mapError(storeError))
        applyEvents(cached.state, fresh)
        cached.synced = true
        if (isTerminalState(cached.state)) {
          entries.delete(runId)
          signalEnd(runId)
        }
        return cached
      }
      const record = yield* store.get(runId).pipe(Effect.mapError(storeError))
      if (Option.isNone(record)) {
        return yield* new EngineError({ reason: "not_found", message: `no run with id ${runId}` })
      }
      const compiled = yield* plan(record.value.workflowId)
      const state = initialState(runId, compiled)
      applyEvents(state, yield* store.events(runId).pipe(Effect.mapError(storeError)))
      const ctx = yield* resolveContext(compiled.spec, state.inputs).pipe(
        Effect.orElseSucceed(() => ({}) as Record<string, unknown>)
      )
      const entry: RunEntry = { state, inputs: state.inputs, ctx, synced: true }
      if (!isTerminalState(state)) entries.set(runId, entry)
      return entry
    })

  /**
   * The cached state without a store read, while every event this process
   * committed applied in order. It may miss other processes' events: callers
   * that act on it either commit with `expectedLastSequenceNumber` or check
   * what they need and `load` when it is not there.
   */
  const current = (runId: string): Effect.Effect<RunEntry, EngineError> =>
    Effect.suspend(() => {
      const cached = entries.get(runId)
      return cached !== undefined && cached.synced ? Effect.succeed(cached) : load(runId)
    })

  /**
   * After a commit failed with a store error: the events it wrote, when it did write them (the
   * connection dropped after the commit), else the error. Either way the cached run is marked
   * stale, so the next read goes to the store and a retried step never acts on a lost write.
   */
  const landed = (runId: string, drafts: ReadonlyArray<RE.RunEventDraft>, expected: number | undefined, error: StoreError) =>
    Effect.gen(function* () {
      const entry = entries.get(runId)
      if (entry) entry.synced = false
      const stored = yield* store.events(runId, expected ?? entry?.state.lastSequenceNumber ?? -1).pipe(
        Effect.retry({ times: 4, schedule: Schedule.exponential("100 millis") })
      )
      // Drafts after a terminal one are never written.
      const end = drafts.findIndex(RE.isTerminal)
      const written = end === -1 ? drafts : drafts.slice(0, end + 1)
      const same = (event: RE.RunEvent | undefined, draft: RE.RunEventDraft) =>
        event !== undefined &&
        event.type === draft.type &&
        event.timestamp === draft.timestamp &&
        (event as { readonly nodeId?: string }).nodeId === (draft as { readonly nodeId?: string }).nodeId
      // With an expected sequence number a landed commit starts right after it; without, search.
      const starts = expected !== undefined ? [0] : stored.map((_, i) => i)
      const at = starts.find((i) => written.every((draft, k) => same(stored[i + k], draft)))
      if (at === undefined) return yield* error
      const events = stored.slice(at, at + written.length)
      yield* hub.publish(events)
      return events
    }).pipe(Effect.catchTag("StoreError", () => Effect.fail(error)))

  const commit = (runId: string, drafts: ReadonlyArray<RE.RunEventDraft>, expected?: number) =>
    log.commit(runId, drafts, { expectedLastSequenceNumber: expected }).pipe(
      Effect.catchTag("StoreError", (error) => landed(runId, drafts, expected, error)),
      Effect.tap((events) =>
        Effect.sync(() => {
          const entry = entries.get(runId)
          // Another writer's events came between: the next read goes to the store.
          if (entry && !applyEvents(entry.state, events)) entry.synced = false
          if (entry && isTerminalState(entry.state)) entries.delete(runId)
          if (events.some(RE.isTerminal)) signalEnd(runId)
        })
      )
    )

  return {
    plan,
    load,
    current,
    commit,
    resolveContext,
    watchEnd,
    signalEnd,
    remember: (runId: string, entry: RunEntry) => entries.set(runId, entry)
  }
})

type Runs = Effect.Effect.Success<typeof makeRuns>

class RunCache extends Context.Tag("@relavium/core/Engine/RunCache")<RunCache, Runs>() {
  static readonly layer = Layer.effect(RunCache, makeRuns)
}

// ---------------------------------------------------------------------------
// Decisions shared by the engine and the worker
// ---------------------------------------------------------------------------

const gateDecision = (runs: Runs, queue: RunQueue["Type"], runId: string, gateId: string | undefined, resolution: GateResolution) =>
  Effect.gen(function* () {
    for (let tries = 0; tries < 50; tries++) {
      const { state } = yield* runs.load(runId)
      const gates = [...state.pendingGates.values()]
      const id =
        gateId ??
        (gates.length === 1
          ? gates[0]!.gateId
          : yield* new EngineError({
                reason: gates.length === 0 ? "not_found" : "conflict",
                message:
                  gates.length === 0
                    ? `run ${runId} has no pending gate`
                    : `run ${runId} has ${gates.length} pending gates; name one (${gates.map((g) => g.gateId).join(", ")})`
              }))
      if (state.resolvedGateIds.has(id)) return
      if (isTerminalState(state)) {
        return yield* new EngineError({ reason: "conflict", message: `run ${runId} has already ended (${state.status})` })
      }
      const gate = state.pendingGates.get(id)
      if (gate === undefined) {
        return yield* new EngineError({ reason: "not_found", message: `run ${runId} has no gate ${id}` })
      }
      if (resolution.decision === "input_provided" && gate.gateType !== "input") {
        return yield* new EngineError({ reason: "invalid_input", message: `gate ${id} is a ${gate.gateType} gate; approve or reject it` })
      }
      const resumed: RE.RunEventDraft = {
        type: "human_gate:resumed",
        runId,
        timestamp: now(),
        nodeId: gate.nodeId,
        gateId: id,
        decision: resolution.decision,
        decidedBy: resolution.decidedBy,
        payload: resolution.payload,
        comment: resolution.comment
      }
      const approved = resolution.decision !== "rejected"
      const drafts: Array<RE.RunEventDraft> = [resumed]
      let next: Job = { _tag: "Advance", runId }
      if (gate.gateType === "budget") {
        if (approved) next = { _tag: "ExecuteNode", runId, nodeId: gate.nodeId, attempt: nodeState(state, gate.nodeId).attempt }
        else
          drafts.push({
            type: "node:failed",
            runId,
            timestamp: now(),
            nodeId: gate.nodeId,
            error: { code: "budget_exceeded", message: "the budget gate was rejected", retryable: false }
          })
      } else if (resolution.decidedBy === "timeout" && !approved) {
        drafts.push({
          type: "node:failed",
          runId,
          timestamp: now(),
          nodeId: gate.nodeId,
          error: { code: "run_timeout", message: `gate '${gate.nodeId}' timed out and its timeout_action is reject`, retryable: false }
        })
      } else {
        drafts.push({
          type: "node:completed",
          runId,
          timestamp: now(),
          nodeId: gate.nodeId,
          output: resolution.payload ?? { decision: resolution.decision },
          tokensUsed: { input: 0, output: 0 },
          durationMs: 0
        })
      }
      // The decision and the job that acts on it go together: a stop or a queue failure in between
      // would leave the run waiting for a job that never comes.
      const result = yield* runs.commit(runId, drafts, state.lastSequenceNumber).pipe(
        Effect.tap(() => queue.offer([next]).pipe(Effect.retry(offerRetry))),
        Effect.either,
        Effect.uninterruptible
      )
      if (Either.isLeft(result)) {
        if (result.left._tag === "SequenceConflict") continue
        if (result.left._tag === "RunClosed") return
        return yield* storeError(result.left)
      }
      return
    }
    return yield* new EngineError({ reason: "conflict", message: `run ${runId} is too busy to take the decision; retry` })
  })

// ---------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------

const makeEngine = (options: EngineOptions) =>
  Effect.gen(function* () {
    const runs = yield* RunCache
    const store = yield* RunStore
    const log = yield* EventLog
    const queue = yield* RunQueue

    const events = (runId: string, after?: number) =>
      log.follow(runId, after).pipe(Stream.mapError(storeError))

    const start = (workflowId: string, input: Readonly<Record<string, unknown>>, startOptions?: StartOptions) =>
      Effect.gen(function* () {
        const compiled = yield* runs.plan(workflowId)
        const spec = compiled.spec
        const inputs = Inputs.resolveInputs(spec.inputs, input, { coerceStrings: startOptions?.coerceStrings ?? false })
        if (Either.isLeft(inputs)) {
          return yield* new EngineError({ reason: "invalid_input", message: inputs.left.message, cause: inputs.left })
        }
        const runId = startOptions?.runId ?? crypto.randomUUID()
        const startedAt = now()
        yield* store.create({ runId, workflowId, workflowName: spec.id, createdAt: startedAt }).pipe(Effect.mapError(storeError))
        const masked = Inputs.maskSecrets(spec.inputs, inputs.right)
        const ctx = yield* runs.resolveContext(spec, inputs.right).pipe(Effect.either)
        const drafts: Array<RE.RunEventDraft> = [
          { type: "run:started", runId, timestamp: startedAt, workflowId, inputs: masked, executionMode: options.executionMode }
        ]
        if (Either.isLeft(ctx)) {
          drafts.push({
            type: "run:failed",
            runId,
            timestamp: now(),
            error: { code: "validation", message: ctx.left.message, retryable: false },
            partialOutputs: {}
          })
        }
        // The run's first events and its first jobs go together: a stop in between would leave a
        // started run that nothing advances.
        yield* Effect.uninterruptible(
          Effect.gen(function* () {
            yield* runs.commit(runId, drafts).pipe(Effect.mapError(storeError))
            if (Either.isRight(ctx)) {
              const state = initialState(runId, compiled)
              runs.remember(runId, { state, inputs: inputs.right, ctx: ctx.right, synced: false })
              yield* queue.offer([{ _tag: "Advance", runId }]).pipe(Effect.retry(offerRetry), Effect.mapError(storeError))
              if (spec.timeout_ms !== undefined) {
                yield* queue
                  .offer([{ _tag: "RunDeadline", runId }], { delayMs: spec.timeout_ms })
                  .pipe(Effect.retry(offerRetry), Effect.mapError(storeError))
              }
              yield* runs.load(runId)
            }
          })
        )
        return { runId, events: events(runId) } satisfies RunHandle
      })

    const cancel = (runId: string, reason?: string) =>
      Effect.gen(function* () {
        const { state } = yield* runs.load(runId)
        if (isTerminalState(state)) return
        yield* runs.commit(runId, [{ type: "run:cancelled", runId, timestamp: now(), reason }]).pipe(
          Effect.catchTag("RunClosed", () => Effect.succeed([])),
          Effect.mapError(storeError)
        )
      })

    const recover = (runId: string) =>
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

    return WorkflowEngine.of({
      start,
      resume: (runId, gateId, resolution) => gateDecision(runs, queue, runId, gateId, resolution),
      cancel,
      events,
      recover
    })
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

// ---------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------

const retryOnDefault: ReadonlyArray<string> = ["provider_rate_limit", "provider_unavailable", "tool_failed", "sandbox_error"]

/** An offer that failed (Redis restarting) is tried again in place, for about 3 s: the commit before it has landed. */
const offerRetry = { times: 5, schedule: Schedule.exponential("100 millis") }

/** How a job whose store or queue failed runs again: from 100 ms, doubling to at most 5 s apart, for up to 2 minutes. */
const jobRetry = Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")), Schedule.upTo("2 minutes"))

/**
 * A failure worth running the job again for: the store failing (not a run that is gone) or the
 * queue failing (a QueueError defect).
 */
const isTransient = (cause: Cause.Cause<EngineError>): boolean =>
  !Cause.isInterrupted(cause) &&
  (Option.exists(
    Cause.failureOption(cause),
    (e) => e.reason === "store" && (e.cause as { readonly _tag?: unknown } | undefined)?._tag !== "RunNotFound"
  ) ||
    Option.exists(Cause.dieOption(cause), (d) => (d as { readonly _tag?: unknown } | null)?._tag === "QueueError"))

const MAX_BACKOFF_MS = 24 * 60 * 60 * 1000

export const retryDelay = (policy: Workflow.RetryPolicy, attempt: number): number => {
  const base = policy.backoff_ms ?? 1000
  const delay = policy.backoff === "linear" ? base * attempt : base * 2 ** (attempt - 1)
  return Math.min(delay, MAX_BACKOFF_MS)
}

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

const makeWorker = (options: WorkerOptions = {}) => Effect.gen(function* () {
  const runs = yield* RunCache
  const queue = yield* RunQueue
  const hub = yield* UpdateHub
  const store = yield* RunStore
  const services = yield* Effect.context<
    ExpressionSandbox | LlmProvider | ModelPricing | DaemonRouter | FileSystem.FileSystem | Path.Path | RunQueue
  >()

  const offer = (jobs: ReadonlyArray<Job>, delayMs?: number) =>
    queue.offer(jobs, { delayMs }).pipe(Effect.retry(offerRetry), Effect.orDie)

  const advance = (runId: string): Effect.Effect<void, EngineError> =>
    Effect.gen(function* () {
      for (let tries = 0; tries < 100; tries++) {
        const { state } = yield* (tries === 0 ? runs.current(runId) : runs.load(runId))
        if (isTerminalState(state)) return
        const step = Orchestrator.step(state)
        const timestamp = now()
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

  const workerScope = yield* Effect.scope

  /**
   * One hub subscription per run and process (not per node) watches for the terminal events that
   * other processes commit; it ends with the run.
   */
  const watchHub = (runId: string) =>
    Effect.gen(function* () {
      // Subscribe before returning, so no terminal event published after this point is missed.
      const scope = yield* Scope.make()
      const live = yield* hub.subscribe(runId).pipe(Scope.extend(scope))
      const watcher = yield* live.pipe(
        Stream.filter(RE.isTerminal),
        Stream.runHead,
        Effect.zipRight(Effect.sync(() => runs.signalEnd(runId))),
        Effect.ensuring(Scope.close(scope, Exit.void)),
        Effect.forkIn(workerScope)
      )
      runs.watchEnd(runId, () => watcher.unsafeInterruptAsFork(FiberId.none))
    })

  /**
   * Runs `effect` in a child fiber that is interrupted when the run reaches a terminal event (cancel,
   * timeout, a sibling's failure); `None` when that happened.
   */
  const untilRunEnds = <A, E, R>(runId: string, effect: Effect.Effect<A, E, R>): Effect.Effect<Option.Option<A>, E, R> =>
    Effect.gen(function* () {
      let ended = false
      let fiber: Fiber.RuntimeFiber<A, E> | undefined
      const watch = runs.watchEnd(runId, () => {
        ended = true
        fiber?.unsafeInterruptAsFork(FiberId.none)
      })
      if (watch.first) yield* watchHub(runId)
      fiber = yield* Effect.fork(effect)
      if (ended) fiber.unsafeInterruptAsFork(FiberId.none)
      const exit = yield* Fiber.await(fiber).pipe(Effect.ensuring(Effect.sync(watch.stop)))
      if (Exit.isFailure(exit) && ended && Cause.isInterruptedOnly(exit.cause)) return Option.none<A>()
      return yield* Effect.map(exit, Option.some)
    })

  const executeNode = (runId: string, nodeId: string, attempt: number): Effect.Effect<void, EngineError> =>
    Effect.gen(function* () {
      // The cache has this node running at this attempt only after folding everything before its
      // start (its inputs included); otherwise read the store before deciding the job is stale.
      const cached = yield* runs.current(runId)
      const cachedNode = nodeState(cached.state, nodeId)
      const entry =
        cachedNode.status === "running" && cachedNode.attempt === attempt ? cached : yield* runs.load(runId)
      const { state } = entry
      const current = nodeState(state, nodeId)
      if (isTerminalState(state)) return
      if (current.status !== "running" || current.attempt !== attempt) {
        // The node has moved on: this job came again (retried, or taken over from a worker that
        // died) after its commit landed, and the orchestrator step that follows may not have run.
        yield* advanceCoalesced(runId)
        return
      }
      const node = state.plan.nodes.get(nodeId)!
      const startedMs = Date.now()
      if (attempt > 1) {
        yield* runs
          .commit(runId, [{ type: "node:started", runId, timestamp: now(), nodeId, nodeType: node.type, attemptNumber: attempt }])
          .pipe(Effect.catchAll(() => Effect.interrupt))
      }
      const context: NodeContext = {
        runId,
        node,
        attempt,
        plan: state.plan,
        state,
        inputs: entry.inputs,
        ctx: entry.ctx,
        timestamp: now,
        emit: (drafts) =>
          runs.commit(runId, drafts).pipe(
            Effect.asVoid,
            Effect.catchAll((e) => (e._tag === "RunClosed" ? Effect.interrupt : Effect.die(e)))
          )
      }
      const exit = yield* untilRunEnds(runId, runNode(context).pipe(Effect.provide(services))).pipe(Effect.exit)
      if (Exit.isSuccess(exit) && Option.isNone(exit.value)) return
      if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) return
      const outcome = Exit.isSuccess(exit)
        ? Either.right(Option.getOrThrow(exit.value))
        : Either.left(
            Option.match(Cause.failureOption(exit.cause), {
              onNone: () => RunError.nodeFailure("internal", `node '${nodeId}' crashed: ${Cause.pretty(exit.cause)}`),
              onSome: (failure) => failure
            })
          )
      const timestamp = now()
      const drafts: Array<RE.RunEventDraft> = []
      let next: ReadonlyArray<Job> = [{ _tag: "Advance", runId }]
      let delayMs: number | undefined
      if (Either.isRight(outcome)) {
        const result = outcome.right
        if (result._tag === "Suspended") {
          yield* offer(next)
          return
        }
        const selected = result.selected ?? (yield* edgeSelection(context, result.output))
        const fresh = yield* runs.current(runId)
        drafts.push({
          type: "node:completed",
          runId,
          timestamp,
          nodeId,
          output: result.output,
          tokensUsed: result.tokensUsed ?? { input: 0, output: 0 },
          durationMs: Date.now() - startedMs,
          selected,
          cumulativeCostMicrocents: fresh.state.costMicrocents,
          attemptNumber: attempt
        })
      } else {
        const failure = outcome.left
        const policy = node.type === "agent" ? (node.retry ?? state.plan.agents.get(node.agent_ref)?.retry) : "retry" in node ? node.retry : undefined
        const error = { code: failure.code, message: failure.message, retryable: failure.retryable }
        const attemptsThisProcessLife = attempt - (current.attemptsBeforeCrash ?? 0)
        if (
          policy !== undefined &&
          failure.retryable &&
          attemptsThisProcessLife < policy.max &&
          (policy.retry_on ?? retryOnDefault).includes(failure.code)
        ) {
          delayMs = retryDelay(policy, attemptsThisProcessLife)
          drafts.push({ type: "node:retrying", runId, timestamp, nodeId, attemptNumber: attempt + 1, error, delayMs })
          next = [{ _tag: "ExecuteNode", runId, nodeId, attempt: attempt + 1 }]
        } else {
          drafts.push({ type: "node:failed", runId, timestamp, nodeId, error, attemptNumber: attempt })
        }
      }
      // Settle the node only while this attempt is still its running one: a job can be taken over
      // while its first worker still runs it (a lock that lapsed under load), and both would
      // otherwise commit. The loser of that race leaves the node as the winner settled it.
      let expected = (yield* runs.current(runId)).state.lastSequenceNumber
      for (let tries = 0; ; tries++) {
        const committed = yield* runs.commit(runId, drafts, expected).pipe(Effect.either)
        if (Either.isRight(committed)) break
        if (committed.left._tag === "RunClosed") return
        if (committed.left._tag !== "SequenceConflict" || tries >= 100) return yield* storeError(committed.left)
        const { state: latest } = yield* runs.load(runId)
        const mine = nodeState(latest, nodeId)
        if (isTerminalState(latest)) return
        if (mine.status !== "running" || mine.attempt !== attempt) {
          // The winner may have stopped right after its commit: make sure the run moves on.
          yield* advanceCoalesced(runId)
          return
        }
        expected = latest.lastSequenceNumber
        const settled = drafts[0]
        if (settled?.type === "node:completed") drafts[0] = { ...settled, cumulativeCostMicrocents: latest.costMicrocents }
      }
      // The orchestrator step follows in this fiber rather than as a queued job: one queue hop less per node.
      if (delayMs === undefined && next.length === 1 && next[0]!._tag === "Advance") yield* advanceCoalesced(runId)
      else yield* offer(next, delayMs)
    })

  const noSelection: Effect.Effect<ReadonlyArray<string> | undefined> = Effect.sync(() => undefined)

  /** For a node with conditioned out-edges: the targets whose condition holds. */
  const edgeSelection = (context: NodeContext, output: unknown): Effect.Effect<ReadonlyArray<string> | undefined> => {
    const out = (context.plan.outgoing.get(context.node.id) ?? []).filter((e) => e.kind === "flow")
    if (!out.some((e) => e.condition !== undefined)) return noSelection
    return Effect.gen(function* () {
      const sandbox = yield* ExpressionSandbox
      // The plan notes what the node's edge conditions read (dynamic reads mean every output).
      const outputs = outputsFor(context, { [context.node.id]: output })
      const selected: Array<string> = []
      for (const edge of out) {
        if (edge.condition === undefined) selected.push(edge.to)
        else {
          const holds = yield* sandbox.evaluate(edge.condition, { inputs: context.inputs, ctx: context.ctx, outputs })
          if (holds === true) selected.push(edge.to)
        }
      }
      return [...new Set(selected)]
    }).pipe(
      Effect.provide(services),
      Effect.orElseSucceed((): ReadonlyArray<string> | undefined => undefined)
    )
  }

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

  const gateTimeout = (runId: string, gateId: string) =>
    Effect.gen(function* () {
      const { state } = yield* runs.load(runId)
      const gate = state.pendingGates.get(gateId)
      if (gate === undefined || isTerminalState(state)) return
      if (gate.expiresAt !== undefined && Date.parse(gate.expiresAt) > Date.now() + 5) {
        yield* offer([{ _tag: "GateTimeout", runId, gateId }], Date.parse(gate.expiresAt) - Date.now())
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
      const elapsedMs = Date.now() - state.startedAtMs
      if (elapsedMs < timeoutMs) {
        yield* offer([{ _tag: "RunDeadline", runId }], timeoutMs - elapsedMs)
        return
      }
      yield* runs
        .commit(runId, [
          { type: "run:timeout", runId, timestamp: now(), elapsedMs, timeoutMs },
          {
            type: "run:failed",
            runId,
            timestamp: now(),
            error: { code: "run_timeout", message: `the run took longer than its timeout_ms of ${timeoutMs} ms`, retryable: false },
            partialOutputs: completedOutputs(state)
          }
        ])
        .pipe(Effect.catchTag("RunClosed", () => Effect.succeed([])), Effect.mapError(storeError))
    })

  const handle = (job: Job): Effect.Effect<void> => {
    const work =
      job._tag === "Advance"
        ? advanceCoalesced(job.runId)
        : job._tag === "ExecuteNode"
          ? executeNode(job.runId, job.nodeId, job.attempt)
          : job._tag === "GateTimeout"
            ? gateTimeout(job.runId, job.gateId)
            : deadline(job.runId)
    return work.pipe(
      // A store or queue that failed for a moment (a dropped connection, a restart) fails the step,
      // not the run: it runs again after a pause, reading the run back from the store. Checkpoints
      // keep it safe: a node found completed is not run again.
      Effect.sandbox,
      Effect.retry({
        while: isTransient,
        schedule: jobRetry.pipe(
          Schedule.tapInput((cause: Cause.Cause<EngineError>) =>
            Effect.logWarning(`job ${job._tag} for run ${job.runId} failed; retrying: ${Cause.squash(cause)}`)
          )
        )
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
    for (const record of records) {
      if (record.status !== "running" || Date.now() - Date.parse(record.updatedAt) < staleMs) continue
      const { state } = yield* runs.load(record.runId)
      if (isTerminalState(state)) continue
      const running = [...state.nodes].filter(([, node]) => node.status === "running")
      const events = running.length > 0 ? yield* store.events(record.runId).pipe(Effect.mapError(storeError)) : []
      yield* offer([{ _tag: "Advance", runId: record.runId }])
      for (const [nodeId, node] of running) {
        const retrying = [...events].reverse().find((e) => e.type === "node:retrying" && e.nodeId === nodeId && e.attemptNumber === node.attempt)
        const dueMs = retrying?.type === "node:retrying" ? Date.parse(retrying.timestamp) + retrying.delayMs - Date.now() : 0
        yield* offer([{ _tag: "ExecuteNode", runId: record.runId, nodeId, attempt: node.attempt }], dueMs > 0 ? dueMs : undefined)
      }
      yield* Effect.logInfo(`run ${record.runId} had written nothing for ${Math.round(staleMs / 1000)} s: its jobs were offered again`)
    }
  }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("the sweep for runs with lost jobs failed; it runs again later", cause)))

  const sweepMs = Duration.toMillis(Duration.decode(options.sweepEvery ?? "15 seconds"))
  if (sweepMs > 0) yield* sweep.pipe(Effect.delay(Duration.millis(sweepMs)), Effect.forever, Effect.forkScoped)
})

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

const cacheLayer = RunCache.layer.pipe(Layer.provide(EventLog.layer))

/** Starts, resumes and cancels runs; needs workers (EngineWorker.layer) somewhere to execute them. */
export const layerEngine = (options: EngineOptions) =>
  Layer.effect(WorkflowEngine, makeEngine(options)).pipe(Layer.provideMerge(cacheLayer), Layer.provideMerge(EventLog.layer))

/** Executes run jobs from the RunQueue for as long as the layer lives. */
export const layerWorker = Layer.scopedDiscard(makeWorker()).pipe(Layer.provide(cacheLayer))

/** The same, with the sweep for lost jobs tuned (tests shorten it). */
export const layerWorkerWith = (options: WorkerOptions) => Layer.scopedDiscard(makeWorker(options)).pipe(Layer.provide(cacheLayer))

/** The engine and its workers in one process: the local mode. */
export const layerLocal = (options: EngineOptions) => {
  const cache = cacheLayer
  return Layer.mergeAll(Layer.effect(WorkflowEngine, makeEngine(options)), Layer.scopedDiscard(makeWorker({ sweepEvery: 0 }))).pipe(
    Layer.provideMerge(cache),
    Layer.provideMerge(EventLog.layer)
  )
}

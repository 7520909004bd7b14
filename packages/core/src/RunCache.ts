/**
 * The run cache: compiled plans and folded run state, per process. It is a
 * memo of the event log, rebuilt from the store on a miss; every commit of the
 * engine and its workers goes through it so the cached fold stays in step.
 *
 * Plans and runs are cached per org: the key is the fiber's `CurrentOrg` and the id, so a
 * process that served one org's run or workflow never answers another org's request for the
 * same id from memory (a workflow id is the author's, so two orgs may well share one; a run id
 * is random, but a caller may name another org's). A miss reads the store, under that org.
 */
import { FileSystem } from "@effect/platform"
import { Context, Effect, Either, Layer, Metric, Option, Schedule } from "effect"
import { type Plan, RunError, RunEvent as RE, type Workflow, WorkflowYaml } from "@relavium/domain"
import { CurrentOrg, EventLog, RunStore, type StoreError, UpdateHub, WorkflowStore } from "@relavium/ports"
import { EngineError, storeError } from "./EngineError.js"
import { interpolate } from "./Interpolate.js"
import { applyEvents, initialState, isTerminalState, type RunState } from "./RunState.js"
import { runsFinished, SpanName } from "./Telemetry.js"

export interface RunEntry {
  readonly state: RunState
  /** Input values as given, secrets included; only the starting process has them. */
  inputs: Readonly<Record<string, unknown>>
  ctx: Readonly<Record<string, unknown>>
  /** False once an event of another writer may be missing: the next read goes to the store. */
  synced: boolean
}

export const makeRuns = Effect.gen(function* () {
  const store = yield* RunStore
  const workflows = yield* WorkflowStore
  const log = yield* EventLog
  const hub = yield* UpdateHub
  const fs = yield* FileSystem.FileSystem
  /** Keyed by `keyOf(workflowId)`. */
  const plans = new Map<string, Plan.WorkflowPlan>()
  /** Keyed by `keyOf(runId)`. */
  const entries = new Map<string, RunEntry>()
  /** The cache key of `id` for the fiber's org. */
  const keyOf = (id: string) => Effect.map(CurrentOrg, ({ orgId }) => `${orgId}\u0000${id}`)
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
      const key = yield* keyOf(workflowId)
      const cached = plans.get(key)
      if (cached) return cached
      const stored = yield* workflows.get(workflowId).pipe(Effect.mapError(storeError))
      if (Option.isNone(stored)) {
        return yield* new EngineError({ reason: "not_found", message: `no workflow with id ${workflowId}` })
      }
      const compiled = WorkflowYaml.parseWorkflow(stored.value.source, stored.value.file)
      if (Either.isLeft(compiled)) {
        return yield* new EngineError({ reason: "invalid_workflow", message: compiled.left.message, cause: compiled.left })
      }
      plans.set(key, compiled.right)
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
      const key = yield* keyOf(runId)
      const cached = entries.get(key)
      if (cached) {
        const fresh = yield* store.events(runId, cached.state.lastSequenceNumber).pipe(Effect.mapError(storeError))
        applyEvents(cached.state, fresh)
        cached.synced = true
        if (isTerminalState(cached.state)) {
          entries.delete(key)
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
      if (!isTerminalState(state)) entries.set(key, entry)
      return entry
    })

  /**
   * The cached state without a store read, while every event this process
   * committed applied in order. It may miss other processes' events: callers
   * that act on it either commit with `expectedLastSequenceNumber` or check
   * what they need and `load` when it is not there.
   */
  const current = (runId: string): Effect.Effect<RunEntry, EngineError> =>
    Effect.flatMap(keyOf(runId), (key) => {
      const cached = entries.get(key)
      return cached !== undefined && cached.synced ? Effect.succeed(cached) : load(runId)
    })

  /**
   * After a commit failed with a store error: the events it wrote, when it did write them (the
   * connection dropped after the commit), else the error. Either way the cached run is marked
   * stale, so the next read goes to the store and a retried step never acts on a lost write.
   */
  const landed = (runId: string, drafts: ReadonlyArray<RE.RunEventDraft>, expected: number | undefined, error: StoreError) =>
    Effect.gen(function* () {
      const entry = entries.get(yield* keyOf(runId))
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
        Effect.map(keyOf(runId), (key) => {
          const entry = entries.get(key)
          // Another writer's events came between: the next read goes to the store.
          if (entry && !applyEvents(entry.state, events)) entry.synced = false
          if (entry && isTerminalState(entry.state)) entries.delete(key)
          if (events.some(RE.isTerminal)) signalEnd(runId)
        })
      ),
      Effect.tap((events) => countFinished(events)),
      Effect.withSpan(SpanName.storeCommit, {
        attributes: { "relavium.run_id": runId, "relavium.event_types": drafts.map((d) => d.type), "relavium.event_count": drafts.length }
      })
    )

  /** A run's end, counted by its status where it is committed (once: a run ends in one commit). */
  const countFinished = (events: ReadonlyArray<RE.RunEvent>) =>
    Effect.forEach(
      events,
      (event) =>
        event.type === "run:completed" || event.type === "run:failed" || event.type === "run:cancelled"
          ? Metric.increment(Metric.tagged(runsFinished, "status", event.type.slice(4)))
          : Effect.void,
      { discard: true }
    )

  return {
    plan,
    load,
    current,
    commit,
    resolveContext,
    watchEnd,
    signalEnd,
    /** Caches a run just started, for the fiber's org. */
    remember: (runId: string, entry: RunEntry) => Effect.map(keyOf(runId), (key) => void entries.set(key, entry))
  }
})


export type Runs = Effect.Effect.Success<typeof makeRuns>

export class RunCache extends Context.Tag("@relavium/core/Engine/RunCache")<RunCache, Runs>() {
  static readonly layer = Layer.effect(RunCache, makeRuns)
}

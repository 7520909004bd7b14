/**
 * The workflow engine: `WorkflowEngine` starts, resumes and cancels runs by
 * writing events and offering jobs; the worker (Worker.ts) takes the jobs and
 * executes them. Locally both run in one process; in the cloud the api holds
 * only the engine and workers hold only the worker. Neither keeps state that
 * is not in the event log: the run cache (RunCache.ts) is a memo of the fold,
 * rebuilt on a miss.
 */
import { Context, Effect, Either, Layer, Metric, Option, Stream } from "effect"
import { Inputs, type Plan, type RunEvent as RE } from "@relavium/domain"
import { CurrentOrg, EventLog, ExpressionSandbox, RunQueue, RunStore, Tracing } from "@relavium/ports"
import { planExpressions } from "./ExpressionFastPath.js"
import { EngineError, now, storeError } from "./EngineError.js"
import { type ForkOptions, type Lineage, makeFork, type RetryOptions, reusedDrafts } from "./Fork.js"
import { gateDecision, type GateResolution } from "./Gates.js"
import { makeRecover, type RecoverOutcome } from "./Recover.js"
import { offerRetry } from "./RetryPolicy.js"
import { offerSpan } from "./RunLoop.js"
import { RunCache } from "./RunCache.js"
import { initialState, isTerminalState } from "./RunState.js"
import { makeWorker, type WorkerOptions } from "./Worker.js"
import { runsStarted, SpanName } from "./Telemetry.js"

export { EngineError } from "./EngineError.js"
export type { GateResolution } from "./Gates.js"
export type { ForkOptions, RetryOptions } from "./Fork.js"
export { maxCrashResumes, poisonMessage, type RecoverOutcome } from "./Recover.js"
export { retryDelay } from "./RetryPolicy.js"
export type { WorkerOptions } from "./Worker.js"

export interface StartOptions {
  /** Values arrive as strings (CLI `--input k=v`) and are coerced to the declared types. */
  readonly coerceStrings?: boolean | undefined
  readonly runId?: string | undefined
  /** Recorded on `run:started`: the webhook or schedule that started the run. */
  readonly trigger?: RE.RunTrigger | undefined
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
    /**
     * Continues a run whose process died: re-runs the nodes that were running, re-arms timers.
     * A node interrupted again after `maxCrashResumes` resumes fails the run (`poison_run`).
     */
    readonly recover: (runId: string) => Effect.Effect<RecoverOutcome, EngineError>
    /**
     * Starts a new run of an ended run's workflow that reuses the outputs of the nodes not
     * downstream of `from` and runs `from` and what follows (docs/time-travel.md).
     */
    readonly fork: (runId: string, options: ForkOptions) => Effect.Effect<RunHandle, EngineError>
    /** Continues a failed or cancelled run as a new run: its completed nodes reused, the rest run. */
    readonly retry: (runId: string, options?: RetryOptions) => Effect.Effect<RunHandle, EngineError>
  }
>() {}

export interface EngineOptions {
  readonly executionMode: RE.ExecutionMode
}

// ---------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------

/** A plan's expressions, listed once per compiled plan (the sandbox's warm-up hint). */
const expressionsOfPlan = new WeakMap<Plan.WorkflowPlan, ReadonlyArray<string>>()
const expressionsOf = (plan: Plan.WorkflowPlan): ReadonlyArray<string> => {
  let sources = expressionsOfPlan.get(plan)
  if (sources === undefined) {
    sources = planExpressions(plan)
    expressionsOfPlan.set(plan, sources)
  }
  return sources
}

/**
 * The root span of a run's trace: a run is a trace of its own, linked to the span (an HTTP
 * request's) that started it.
 */
const runSpan = <A, E, R>(workflowId: string, effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.zip(Effect.option(Effect.currentSpan), CurrentOrg), ([caller, org]) =>
    Effect.withSpan(effect, SpanName.run, {
      root: true,
      links: Option.isSome(caller) ? [{ _tag: "SpanLink", span: caller.value, attributes: {} }] : [],
      attributes: { "relavium.workflow_id": workflowId, "relavium.org_id": org.orgId }
    })
  )

const makeEngine = (options: EngineOptions) =>
  Effect.gen(function* () {
    // Optional: the api of the distributed mode evaluates nothing.
    const sandbox = yield* Effect.serviceOption(ExpressionSandbox)
    const runs = yield* RunCache
    const store = yield* RunStore
    const log = yield* EventLog
    const queue = yield* RunQueue

    const events = (runId: string, after?: number) =>
      log.follow(runId, after).pipe(Stream.mapError(storeError))

    const start = (workflowId: string, input: Readonly<Record<string, unknown>>, startOptions?: StartOptions, lineage?: Lineage) =>
      Effect.gen(function* () {
        const compiled = yield* runs.plan(workflowId)
        // A sandbox that starts slowly (QuickJS workers) starts now, while the run is being written.
        if (sandbox._tag === "Some" && sandbox.value.prepare !== undefined) {
          const sources = expressionsOf(compiled)
          if (sources.length > 0) yield* sandbox.value.prepare(sources)
        }
        const spec = compiled.spec
        const inputs = Inputs.resolveInputs(spec.inputs, input, { coerceStrings: startOptions?.coerceStrings ?? false })
        if (Either.isLeft(inputs)) {
          return yield* new EngineError({ reason: "invalid_input", message: inputs.left.message, cause: inputs.left })
        }
        const runId = startOptions?.runId ?? crypto.randomUUID()
        yield* Effect.annotateCurrentSpan("relavium.run_id", runId)
        const startedAt = yield* now
        yield* store.create({ runId, workflowId, workflowName: spec.id, createdAt: startedAt }).pipe(Effect.mapError(storeError))
        const masked = Inputs.maskSecrets(spec.inputs, inputs.right)
        const ctx = yield* runs.resolveContext(spec, inputs.right).pipe(Effect.either)
        const drafts: Array<RE.RunEventDraft> = [
          {
            type: "run:started",
            runId,
            timestamp: startedAt,
            workflowId,
            inputs: masked,
            executionMode: options.executionMode,
            ...(startOptions?.trigger === undefined ? {} : { trigger: startOptions.trigger }),
            ...(lineage === undefined ? {} : { forkedFrom: lineage.forkedFrom })
          },
          ...(lineage === undefined ? [] : reusedDrafts(runId, startedAt, lineage))
        ]
        if (Either.isLeft(ctx)) {
          drafts.push({
            type: "run:failed",
            runId,
            timestamp: startedAt,
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
              yield* runs.remember(runId, { state, inputs: inputs.right, ctx: ctx.right, synced: false })
              yield* queue.offer([{ _tag: "Advance", runId }]).pipe(Effect.retry(offerRetry), Effect.mapError(storeError), offerSpan(["Advance"]))
              if (spec.timeout_ms !== undefined) {
                yield* queue
                  .offer([{ _tag: "RunDeadline", runId }], { delayMs: spec.timeout_ms })
                  .pipe(Effect.retry(offerRetry), Effect.mapError(storeError), offerSpan(["RunDeadline"], spec.timeout_ms))
              }
              yield* runs.load(runId)
            }
          })
        )
        yield* Metric.increment(Metric.tagged(runsStarted, "execution_mode", options.executionMode))
        return { runId, events: events(runId) } satisfies RunHandle
      }).pipe(
        // Jobs of the run carry the root span's traceparent: every process adds to the run's trace.
        Tracing.asRunTrace,
        (started) => runSpan(workflowId, started)
      )

    const cancel = (runId: string, reason?: string) =>
      Effect.gen(function* () {
        const { state } = yield* runs.load(runId)
        if (isTerminalState(state)) return
        yield* runs.commit(runId, [{ type: "run:cancelled", runId, timestamp: yield* now, reason }]).pipe(
          Effect.catchTag("RunClosed", () => Effect.succeed([])),
          Effect.mapError(storeError)
        )
      })

    const recover = makeRecover(runs, store, queue)
    const { fork, retry } = makeFork(runs, start)

    return WorkflowEngine.of({
      start: (workflowId, input, startOptions) => start(workflowId, input, startOptions),
      fork,
      retry,
      // A decision or a recovery from outside the run's jobs (a request, `relavium resume`) is a
      // span whose traceparent the jobs it offers carry: the rest of the run is one trace under it.
      resume: (runId, gateId, resolution) =>
        gateDecision(runs, queue, runId, gateId, resolution).pipe(
          Tracing.asRunTrace,
          Effect.withSpan(SpanName.gateDecision, { attributes: { "relavium.run_id": runId, ...(gateId === undefined ? {} : { "relavium.gate_id": gateId }) } })
        ),
      cancel,
      events,
      recover: (runId) => recover(runId).pipe(Tracing.asRunTrace, Effect.withSpan(SpanName.runRecover, { attributes: { "relavium.run_id": runId } }))
    })
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

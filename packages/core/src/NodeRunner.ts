/**
 * Running one node job: check the job is still the node's current attempt,
 * run the node (interrupted when the run ends meanwhile), then settle it —
 * completed, retrying under its policy, or failed — in one commit that only
 * lands while this attempt is still the running one.
 */
import type { FileSystem, Path } from "@effect/platform"
import { Cause, Context, Effect, Either, Exit, Fiber, FiberId, Metric, Option, Scope, Stream } from "effect"
import { RunError, RunEvent as RE } from "@relavium/domain"
import { type DaemonRouter, ExpressionSandbox, type Job, type LlmProvider, type ModelPricing, type RunQueue, type UpdateHub } from "@relavium/ports"
import { type EngineError, isoAt, storeError } from "./EngineError.js"
import { type NodeContext, outputsFor } from "./NodeContext.js"
import { runNode } from "./Nodes.js"
import { retryDelay, retryOnDefault } from "./RetryPolicy.js"
import type { Runs } from "./RunCache.js"
import * as Orchestrator from "./Orchestrator.js"
import { commitThen, type Offer, type RunLoop, startJobs, stepDrafts } from "./RunLoop.js"
import { isTerminalState, nodeState } from "./RunState.js"
import { nodeDuration, SpanName } from "./Telemetry.js"

/** What node handlers may use: the services the worker's layer was built with. */
export type NodeServices = ExpressionSandbox | LlmProvider | ModelPricing | DaemonRouter | FileSystem.FileSystem | Path.Path | RunQueue

export interface NodeRunnerDeps {
  readonly runs: Runs
  readonly hub: UpdateHub["Type"]
  readonly services: Context.Context<NodeServices>
  readonly offer: Offer
  readonly loop: RunLoop
  /** The worker's scope: hub watchers live in it, not in the job that started them. */
  readonly workerScope: Scope.Scope
}

export const makeNodeRunner = ({ hub, loop, offer, runs, services, workerScope }: NodeRunnerDeps) => {
  const { advanceCoalesced } = loop

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

  /** One attempt of a node, as the span `node` (docs/observability.md). */
  const executeNode = (runId: string, nodeId: string, attempt: number): Effect.Effect<void, EngineError> =>
    Effect.withSpan(executeAttempt(runId, nodeId, attempt), SpanName.node, {
      kind: "consumer",
      attributes: { "relavium.run_id": runId, "relavium.node_id": nodeId, "relavium.attempt": attempt }
    })

  const executeAttempt = (runId: string, nodeId: string, attempt: number): Effect.Effect<void, EngineError> =>
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
      yield* Effect.annotateCurrentSpan("relavium.node_type", node.type)
      const clock = yield* Effect.clock
      const startedMs = clock.unsafeCurrentTimeMillis()
      if (attempt > 1) {
        yield* runs
          .commit(runId, [{ type: "node:started", runId, timestamp: isoAt(startedMs), nodeId, nodeType: node.type, attemptNumber: attempt }])
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
        timestamp: () => isoAt(clock.unsafeCurrentTimeMillis()),
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
      const endedMs = clock.unsafeCurrentTimeMillis()
      const timestamp = isoAt(endedMs)
      let settled: RE.RunEventDraft
      let completing: Orchestrator.Completing | undefined
      let next: ReadonlyArray<Job> = [{ _tag: "Advance", runId }]
      let delayMs: number | undefined
      if (Either.isRight(outcome)) {
        const result = outcome.right
        if (result._tag === "Suspended") {
          yield* offer(next)
          return
        }
        const selected = result.selected ?? (yield* edgeSelection(context, result.output))
        settled = {
          type: "node:completed",
          runId,
          timestamp,
          nodeId,
          output: result.output,
          tokensUsed: result.tokensUsed ?? { input: 0, output: 0 },
          durationMs: endedMs - startedMs,
          selected,
          cumulativeCostMicrocents: 0,
          attemptNumber: attempt
        }
        completing = { nodeId, output: result.output, selected }
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
          settled = { type: "node:retrying", runId, timestamp, nodeId, attemptNumber: attempt + 1, error, delayMs }
          next = [{ _tag: "ExecuteNode", runId, nodeId, attempt: attempt + 1 }]
        } else {
          settled = { type: "node:failed", runId, timestamp, nodeId, error, attemptNumber: attempt }
        }
      }
      const status = settled.type.slice("node:".length)
      yield* Effect.annotateCurrentSpan("relavium.node_status", status)
      yield* Metric.update(nodeDuration.pipe(Metric.tagged("node_type", node.type), Metric.tagged("status", status)), endedMs - startedMs)
      // Settle the node only while this attempt is still its running one: a job can be taken over
      // while its first worker still runs it (a lock that lapsed under load), and both would
      // otherwise commit. The loser of that race leaves the node as the winner settled it.
      // A completion goes in one commit with the orchestrator step it makes possible (the next
      // nodes' starts, or the run's end), and the started nodes' jobs are offered right after it.
      // The same job may have run twice in this process (its lock lapsed and it was taken again):
      // the cached run then already has the other run's settlement, and committing after it would
      // settle the node twice.
      let latest = (yield* runs.current(runId)).state
      if (isTerminalState(latest)) return
      const atSettle = nodeState(latest, nodeId)
      if (atSettle.status !== "running" || atSettle.attempt !== attempt) {
        yield* advanceCoalesced(runId)
        return
      }
      for (let tries = 0; ; tries++) {
        let drafts: Array<RE.RunEventDraft> = [settled]
        let then: Effect.Effect<void> = Effect.void
        let step: Orchestrator.Step | undefined
        if (settled.type === "node:completed" && completing !== undefined) {
          settled = { ...settled, cumulativeCostMicrocents: latest.costMicrocents }
          step = Orchestrator.step(latest, completing)
          drafts = [settled, ...stepDrafts(latest, step, timestamp, settled)]
          const jobs = startJobs(runId, step)
          if (jobs.length > 0) then = offer(jobs)
        }
        const committed = yield* commitThen(runs, runId, drafts, latest.lastSequenceNumber, then)
        if (Either.isRight(committed)) {
          if (step === undefined) break
          // A step that only skipped nodes may leave more to decide.
          if (step.start.length === 0 && step.settle === undefined && step.skip.length > 0) yield* advanceCoalesced(runId)
          return
        }
        if (committed.left._tag === "RunClosed") return
        if (committed.left._tag !== "SequenceConflict" || tries >= 100) return yield* storeError(committed.left)
        latest = (yield* runs.load(runId)).state
        const mine = nodeState(latest, nodeId)
        if (isTerminalState(latest)) return
        if (mine.status !== "running" || mine.attempt !== attempt) {
          // The winner may have stopped right after its commit: make sure the run moves on.
          yield* advanceCoalesced(runId)
          return
        }
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

  return { executeNode }
}

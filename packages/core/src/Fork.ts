/**
 * Time travel: `fork` starts a new run of an ended run's workflow (the same stored version) from one
 * of its nodes, and `retry` continues a failed or cancelled run as a new run. The new run's log
 * begins with `run:started` (with `forkedFrom`) and a `node:completed` (with `reusedFrom`) for each
 * node whose recorded output it reuses; the orchestrator then runs what is left, exactly as for any
 * run: the reused nodes are completed in the fold, so they never run (nor call a model) again.
 *
 * What is reused is decided here, purely from the original run's folded state and its plan:
 * - fork from N: every node completed in the original run except N and what depends on N;
 * - retry: every node completed in the original run.
 * See docs/time-travel.md.
 */
import { Effect, Either } from "effect"
import { Inputs, type Plan, type RunEvent as RE, type Workflow } from "@relavium/domain"
import { EngineError } from "./EngineError.js"
import type { Runs } from "./RunCache.js"
import { isTerminalState, type RunState } from "./RunState.js"

export interface ForkOptions {
  /** The node the new run runs again, with everything downstream of it. */
  readonly from: string
  /** Inputs that replace the original run's; the original's secret inputs must be given again. */
  readonly inputs?: Readonly<Record<string, unknown>> | undefined
  /** Values arrive as strings (CLI `--input k=v`) and are coerced to the declared types. */
  readonly coerceStrings?: boolean | undefined
  readonly runId?: string | undefined
}

export interface RetryOptions {
  /** Only the values of the run's secret inputs, which were never stored. */
  readonly inputs?: Readonly<Record<string, unknown>> | undefined
  readonly coerceStrings?: boolean | undefined
  readonly runId?: string | undefined
}

/** A node whose recorded output a new run takes over. */
export interface ReusedNode {
  readonly nodeId: string
  readonly output: unknown
  readonly selected?: ReadonlyArray<string> | undefined
}

/** What a forked or retried run starts with, besides its inputs. */
export interface Lineage {
  readonly forkedFrom: RE.RunLineage
  readonly reuse: ReadonlyArray<ReusedNode>
}

const closure = (seeds: Iterable<string>, next: (id: string) => Iterable<string>): Set<string> => {
  const seen = new Set<string>()
  const work = [...seeds]
  while (work.length > 0) {
    const id = work.pop()!
    if (seen.has(id)) continue
    seen.add(id)
    for (const n of next(id)) if (!seen.has(n)) work.push(n)
  }
  return seen
}

const targets = (plan: Plan.WorkflowPlan) => (id: string) => (plan.outgoing.get(id) ?? []).map((e) => e.to)
const sources = (plan: Plan.WorkflowPlan) => (id: string) => (plan.incoming.get(id) ?? []).map((e) => e.from)

/**
 * The nodes whose result may depend on `from`: `from`, every node reachable from it (flow and data
 * edges), and a node that reads every output (`run.outputs` read dynamically) unless it is upstream
 * of `from` — with their descendants.
 */
export const downstreamOf = (plan: Plan.WorkflowPlan, from: string): ReadonlySet<string> => {
  const upstream = closure(sources(plan)(from), sources(plan))
  const readsAll = plan.order.filter((id) => plan.outputRefs.get(id) === "all" && !upstream.has(id))
  return closure([from, ...readsAll], targets(plan))
}

/** The nodes completed in `state` and not in `rerun`, in the plan's order, with their recorded outputs. */
export const reusedNodes = (state: RunState, rerun: ReadonlySet<string>): ReadonlyArray<ReusedNode> =>
  state.plan.order.flatMap((nodeId) => {
    const node = state.nodes.get(nodeId)
    if (node === undefined || node.status !== "completed" || rerun.has(nodeId)) return []
    return [{ nodeId, output: node.output, selected: node.selected }]
  })

/** The `node:completed` events of the reused nodes, right after the new run's `run:started`. */
export const reusedDrafts = (runId: string, timestamp: string, lineage: Lineage): Array<RE.RunEventDraft> =>
  lineage.reuse.map((node) => ({
    type: "node:completed" as const,
    runId,
    timestamp,
    nodeId: node.nodeId,
    output: node.output,
    tokensUsed: { input: 0, output: 0 },
    durationMs: 0,
    ...(node.selected === undefined ? {} : { selected: node.selected }),
    reusedFrom: lineage.forkedFrom.runId
  }))

const invalidInput = (issues: ReadonlyArray<Inputs.InputIssue>) => {
  const cause = new Inputs.InputsError({ issues })
  return new EngineError({ reason: "invalid_input", message: cause.message, cause })
}

const secretNames = (declared: ReadonlyArray<Workflow.WorkflowInput> | undefined) =>
  new Set((declared ?? []).filter((i) => i.type === "secret").map((i) => i.name))

/**
 * The new run's inputs as given to `start`: the original run's (as stored, secrets left out) with
 * `overrides` over them. A secret the original run had was stored masked, so it must be in
 * `overrides`: the masked value is never passed on as if it were the secret.
 */
export const forkInputs = (
  declared: ReadonlyArray<Workflow.WorkflowInput> | undefined,
  original: Readonly<Record<string, unknown>>,
  overrides: Readonly<Record<string, unknown>>
): Either.Either<Record<string, unknown>, EngineError> => {
  const secrets = secretNames(declared)
  const inputs: Record<string, unknown> = {}
  const missing: Array<Inputs.InputIssue> = []
  for (const [name, value] of Object.entries(original)) {
    if (!secrets.has(name)) inputs[name] = value
    else if (!Object.hasOwn(overrides, name)) {
      missing.push({ input: name, message: `is a secret input, whose value was not stored: give it again (--input ${name}=…)` })
    }
  }
  if (missing.length > 0) return Either.left(invalidInput(missing))
  return Either.right({ ...inputs, ...overrides })
}

const notEnded = (runId: string, status: string, what: string) =>
  new EngineError({ reason: "conflict", message: `run ${runId} is ${status}: only an ended run can be ${what} (cancel it first)` })

/** The engine's `start`, with the lineage of the new run. */
type StartWith<H> = (
  workflowId: string,
  input: Readonly<Record<string, unknown>>,
  options: { readonly coerceStrings?: boolean | undefined; readonly runId?: string | undefined },
  lineage: Lineage
) => Effect.Effect<H, EngineError>

export const makeFork = <H>(runs: Runs, start: StartWith<H>) => {
  const fork = (runId: string, options: ForkOptions): Effect.Effect<H, EngineError> =>
    Effect.gen(function* () {
      const { state } = yield* runs.load(runId)
      if (!isTerminalState(state)) return yield* notEnded(runId, state.status, "forked")
      const { plan } = state
      if (!plan.nodes.has(options.from)) {
        return yield* new EngineError({
          reason: "invalid_input",
          message: `from: workflow '${plan.spec.id}' has no node '${options.from}' (nodes: ${plan.order.join(", ")})`
        })
      }
      const inputs = yield* forkInputs(plan.spec.inputs, state.inputs, options.inputs ?? {})
      const reuse = reusedNodes(state, downstreamOf(plan, options.from))
      return yield* start(state.workflowId, inputs, { coerceStrings: options.coerceStrings, runId: options.runId }, {
        forkedFrom: { runId, nodeId: options.from, kind: "fork" },
        reuse
      })
    })

  const retry = (runId: string, options: RetryOptions = {}): Effect.Effect<H, EngineError> =>
    Effect.gen(function* () {
      const { state } = yield* runs.load(runId)
      if (!isTerminalState(state)) return yield* notEnded(runId, state.status, "retried")
      if (state.status === "completed") {
        return yield* new EngineError({
          reason: "conflict",
          message: `run ${runId} completed: there is nothing to retry (to run part of it again, fork it from a node)`
        })
      }
      const { plan } = state
      const secrets = secretNames(plan.spec.inputs)
      const notSecret = Object.keys(options.inputs ?? {}).filter((name) => !secrets.has(name))
      if (notSecret.length > 0) {
        return yield* invalidInput(
          notSecret.map((input) => ({
            input,
            message: "a retry runs with the failed run's inputs and takes only its secret inputs again; to change an input, fork the run from a node"
          }))
        )
      }
      const inputs = yield* forkInputs(plan.spec.inputs, state.inputs, options.inputs ?? {})
      return yield* start(state.workflowId, inputs, { coerceStrings: options.coerceStrings, runId: options.runId }, {
        forkedFrom: { runId, kind: "retry" },
        reuse: reusedNodes(state, new Set())
      })
    })

  return { fork, retry }
}

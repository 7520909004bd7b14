/**
 * Runs one scenario on the engine it is given: stores the workflow, starts a run with the
 * scenario's inputs, follows its events, decides its human gates as the scenario says, and
 * checks the expectations against what the run did. The layers (stores, model, tools) are the
 * caller's choice; the CLI gives every scenario fresh in-memory ones.
 */
import { Effect, Option, Stream } from "effect"
import { RunEvent as RE } from "@relavium/domain"
import { ExpressionSandbox, WorkflowStore } from "@relavium/ports"
import { WorkflowEngine } from "../Engine.js"
import type { GateResolution } from "../Gates.js"
import { check, type Mismatch, type NodeTrace, type Outcome } from "./Expect.js"
import type { GateDecision, RunStatus, Scenario } from "./ScenarioFile.js"

export interface ScenarioRun {
  readonly scenario: Scenario
  readonly workflow: { readonly id: string; readonly text: string; readonly file: string }
  /** Why a model call found no answer, if one did (from the scenario's model). */
  readonly ranOut: Effect.Effect<Option.Option<string>>
}

export interface ScenarioResult {
  readonly outcome: Outcome
  readonly mismatches: ReadonlyArray<Mismatch>
  /** Every event of the run, in order. */
  readonly events: ReadonlyArray<RE.RunEvent>
}

const resolution = (decision: GateDecision): GateResolution => {
  const decidedBy = "scenario"
  if (decision === "approve") return { decision: "approved", decidedBy }
  if (decision === "reject") return { decision: "rejected", decidedBy }
  const { comment } = decision
  if (decision.decision === "answer") return { decision: "input_provided", decidedBy, payload: decision.answer ?? null, comment }
  return { decision: decision.decision === "approve" ? "approved" : "rejected", decidedBy, comment }
}

/** The key a scenario decides a gate by: the node id (`NODE:budget` for a budget gate). */
const gateKey = (runId: string, gateId: string): string => (gateId.startsWith(`${runId}:`) ? gateId.slice(runId.length + 1) : gateId)

/** What the run did, folded from its events. */
export const outcomeOf = (runId: string, events: ReadonlyArray<RE.RunEvent>, inputs: Readonly<Record<string, unknown>>): Outcome => {
  let status: RunStatus = "waiting"
  let error: Outcome["error"]
  let outputs: Readonly<Record<string, unknown>> = {}
  let cost = 0
  const nodes: Array<NodeTrace> = []
  const nodeOutputs: Record<string, unknown> = {}
  for (const event of events) {
    switch (event.type) {
      case "node:completed":
        nodes.push({ id: event.nodeId, status: "completed", output: event.output })
        nodeOutputs[event.nodeId] = event.output
        if (event.cumulativeCostMicrocents !== undefined) cost = Math.max(cost, event.cumulativeCostMicrocents)
        break
      case "node:failed":
        nodes.push({ id: event.nodeId, status: "failed" })
        break
      case "node:skipped":
        nodes.push({ id: event.nodeId, status: "skipped" })
        break
      case "cost:updated":
        cost = Math.max(cost, event.cumulativeCostMicrocents)
        break
      case "run:completed":
        status = "completed"
        outputs = event.outputs
        cost = Math.max(cost, event.totalCostMicrocents)
        break
      case "run:failed":
        if (status !== "timeout") status = "failed"
        error = { code: event.error.code, message: event.error.message, nodeId: event.error.nodeId }
        outputs = event.partialOutputs
        break
      case "run:timeout":
        status = "timeout"
        break
      case "run:cancelled":
        status = "cancelled"
        error = { code: "cancelled", message: event.reason ?? "cancelled" }
        break
      default:
        break
    }
  }
  return { runId, status, error, outputs, nodeOutputs, nodes, costMicrocents: cost, inputs }
}

/** Runs the scenario to its end (or to a gate it does not decide) and checks it. */
export const runScenario = (run: ScenarioRun) =>
  Effect.gen(function* () {
    const workflows = yield* WorkflowStore
    const engine = yield* WorkflowEngine
    const sandbox = yield* ExpressionSandbox
    const { scenario } = run
    const inputs = scenario.inputs ?? {}
    const stored = yield* workflows.put({ name: run.workflow.id, source: run.workflow.text, file: run.workflow.file }).pipe(Effect.orDie)
    const started = yield* engine.start(stored.workflowId, inputs).pipe(Effect.either)
    if (started._tag === "Left") {
      const outcome: Outcome = {
        runId: "",
        status: "failed",
        error: { code: started.left.reason, message: started.left.message },
        outputs: {},
        nodeOutputs: {},
        nodes: [],
        costMicrocents: 0,
        inputs
      }
      const mismatch: Mismatch = { path: "inputs", message: `the run did not start: ${started.left.message}` }
      return { outcome, mismatches: [mismatch], events: [] } satisfies ScenarioResult
    }
    const runId = started.right.runId
    const events: Array<RE.RunEvent> = []
    const decided = new Set<string>()
    for (;;) {
      const after = events.at(-1)?.sequenceNumber
      yield* engine.events(runId, after).pipe(
        Stream.takeUntil((e) => RE.isTerminal(e) || e.type === "run:paused"),
        Stream.runForEach((event) => Effect.sync(() => void events.push(event))),
        Effect.orDie
      )
      const last = events.at(-1)
      if (last?.type !== "run:paused") break
      const pending = last.gateIds.filter((id) => !decided.has(id))
      const undecided = pending.filter((id) => scenario.gates?.[gateKey(runId, id)] === undefined)
      if (pending.length === 0 || undecided.length > 0) break
      for (const gateId of pending) {
        decided.add(gateId)
        yield* engine.resume(runId, gateId, resolution(scenario.gates![gateKey(runId, gateId)]!)).pipe(Effect.orDie)
      }
    }
    const folded = outcomeOf(runId, events, (events[0]?.type === "run:started" ? events[0].inputs : inputs))
    const ranOut = yield* run.ranOut
    const outcome: Outcome = Option.isSome(ranOut) && folded.error !== undefined
      ? { ...folded, error: { ...folded.error, message: ranOut.value } }
      : folded
    const mismatches = yield* check(scenario.expect, outcome, (source, scope) => sandbox.evaluate(source, scope))
    // A model call nothing answered is the reason to show first, whatever else it caused.
    const all = Option.isSome(ranOut) ? [{ path: "model", message: ranOut.value }, ...mismatches] : mismatches
    return { outcome, mismatches: all, events } satisfies ScenarioResult
  })

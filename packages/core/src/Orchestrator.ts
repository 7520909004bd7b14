/**
 * The orchestrator: a pure step from (workflow plan, run state) to decisions.
 * It holds no state and performs no effects, so any process holding a run's
 * log can take the next step, locally or on any worker.
 */
import type { Plan, RunEvent as RE, RunError } from "@relavium/domain"
import { completedOutputs, isSettled, isTerminalState, nodeState, pauseKey, type RunState } from "./RunState.js"

export type Settlement =
  | { readonly _tag: "Completed"; readonly outputs: Record<string, unknown> }
  | { readonly _tag: "Failed"; readonly error: RunError.RunErrorInfo; readonly partialOutputs: Record<string, unknown> }
  | { readonly _tag: "Paused"; readonly gateIds: ReadonlyArray<string> }

export interface Step {
  readonly skip: ReadonlyArray<{ readonly nodeId: string; readonly reason: RE.SkipReason }>
  readonly start: ReadonlyArray<string>
  readonly settle: Settlement | undefined
}

const noStep: Step = { skip: [], start: [], settle: undefined }

const orderIndexes = new WeakMap<Plan.WorkflowPlan, ReadonlyMap<string, number>>()
const orderIndex = (plan: Plan.WorkflowPlan): ReadonlyMap<string, number> => {
  let index = orderIndexes.get(plan)
  if (index === undefined) {
    index = new Map(plan.order.map((id, i) => [id, i]))
    orderIndexes.set(plan, index)
  }
  return index
}

type NodeView = (id: string) => {
  readonly status: string
  readonly selected?: ReadonlyArray<string> | undefined
  readonly output?: unknown
}

/**
 * A node whose `node:completed` goes in the same commit as the step: the step is taken on the
 * state as it will be once that event is applied, without applying it.
 */
export interface Completing {
  readonly nodeId: string
  readonly output: unknown
  readonly selected?: ReadonlyArray<string> | undefined
}

/**
 * A node with flow in-edges runs when at least one of them is live: its source
 * completed and, if the source chose targets (a condition, or conditioned
 * edges), chose this node. Otherwise it is skipped.
 */
const decide = (
  state: RunState,
  nodeId: string,
  view: NodeView
): { readonly run: true } | { readonly run: false; readonly reason: RE.SkipReason } => {
  const flowIn = (state.plan.incoming.get(nodeId) ?? []).filter((e) => e.kind === "flow")
  const live = (e: Plan.PlanEdge) => {
    const source = view(e.from)
    return source.status === "completed" && (source.selected === undefined || source.selected.includes(e.to))
  }
  if (flowIn.length === 0 || flowIn.some(live)) return { run: true }
  const routedAway = flowIn.some((e) => {
    const source = view(e.from)
    return source.status === "completed" && source.selected !== undefined
  })
  return { run: false, reason: routedAway ? "branch_not_taken" : "upstream_unreachable" }
}

export const step = (state: RunState, completing?: Completing): Step => {
  if (isTerminalState(state)) return noStep
  const { plan } = state
  const done = completing === undefined ? undefined : { status: "completed", selected: completing.selected, output: completing.output }
  const doneBefore = completing === undefined ? undefined : nodeState(state, completing.nodeId).status

  if (state.failure !== undefined) {
    // A failure ends the run: nothing new starts, every node that never started is skipped.
    const skip = plan.order
      .filter((id) => nodeState(state, id).status === "pending")
      .map((nodeId) => ({ nodeId, reason: "upstream_unreachable" as const }))
    return {
      skip,
      start: [],
      settle: { _tag: "Failed", error: state.failure.error, partialOutputs: completedOutputs(state, completing) }
    }
  }

  // Walk the frontier; a skip may settle more nodes, which join the walk.
  const order = orderIndex(plan)
  const byOrder = (a: string, b: string) => order.get(a)! - order.get(b)!
  const unsettled = new Map<string, number>()
  const skipped = new Map<string, RE.SkipReason>()
  const ready: Array<string> = []
  const work = [...state.frontier]
  const view: NodeView = (id) =>
    skipped.has(id) ? { status: "skipped" } : id === completing?.nodeId ? done! : nodeState(state, id)
  // The completing node settles: its targets may join the frontier.
  if (completing !== undefined && !isSettled(doneBefore!)) {
    for (const target of new Set((plan.outgoing.get(completing.nodeId) ?? []).map((e) => e.to))) {
      const left = (state.unsettled.get(target) ?? 0) - 1
      unsettled.set(target, left)
      if (left === 0 && nodeState(state, target).status === "pending") work.push(target)
    }
  }
  work.sort(byOrder)
  while (work.length > 0) {
    const nodeId = work.shift()!
    const decision = decide(state, nodeId, view)
    if (decision.run) {
      ready.push(nodeId)
      continue
    }
    skipped.set(nodeId, decision.reason)
    for (const target of new Set((plan.outgoing.get(nodeId) ?? []).map((e) => e.to))) {
      const left = (unsettled.get(target) ?? state.unsettled.get(target) ?? 0) - 1
      unsettled.set(target, left)
      if (left === 0 && nodeState(state, target).status === "pending") {
        work.push(target)
        work.sort(byOrder)
      }
    }
  }

  const skip = [...skipped].map(([nodeId, reason]) => ({ nodeId, reason })).sort((a, b) => byOrder(a.nodeId, b.nodeId))
  const runningCount = state.runningCount - (doneBefore === "running" ? 1 : 0)
  const capacity = plan.spec.max_parallel === undefined ? Number.POSITIVE_INFINITY : plan.spec.max_parallel - runningCount
  const start = ready.sort(byOrder).slice(0, Math.max(0, capacity))

  let settle: Settlement | undefined
  if (start.length === 0 && runningCount === 0) {
    const settledAfter = state.settledCount + skip.length + (doneBefore !== undefined && !isSettled(doneBefore) ? 1 : 0)
    if (settledAfter === plan.order.length) {
      const outputs: Record<string, unknown> = {}
      for (const id of plan.order) {
        const node = plan.nodes.get(id)!
        const s = view(id)
        if (node.type === "output" && s.status === "completed") outputs[id] = s.output
      }
      settle = { _tag: "Completed", outputs }
    } else if (state.pendingGates.size > 0 && ready.length === 0) {
      const gateIds = [...state.pendingGates.keys()].sort()
      if (state.pausedKey !== pauseKey(gateIds)) settle = { _tag: "Paused", gateIds }
    }
  }
  return { skip, start, settle }
}

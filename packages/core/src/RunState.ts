/**
 * A run's state, derived only by folding its event log. There is no other
 * checkpoint: any process that reads the log rebuilds exactly this state.
 *
 * The fold also keeps, per node, how many of its dependencies are still
 * unsettled, and the frontier of nodes whose dependencies have all settled,
 * so each orchestrator step looks only at nodes that may have become ready.
 */
import type { Plan, Run, RunEvent as RE, RunError } from "@relavium/domain"
import { type RunStatus, statusAfter, TerminalStatuses } from "@relavium/ports"

export type NodeStatus = "pending" | "running" | "waiting" | "completed" | "failed" | "skipped"

export interface NodeState {
  status: NodeStatus
  attempt: number
  /** Attempts made before the last crash; they do not count against the retry policy. */
  attemptsBeforeCrash?: number | undefined
  /**
   * Times the node was interrupted (its process stopped while it ran) since it last made
   * progress — started afresh or completed an agent turn. Recovery fails the run past a bound.
   */
  interruptions?: number | undefined
  output?: unknown
  selected?: ReadonlyArray<string> | undefined
  /** An agent node's completed turns, in order: where it continues when it runs again. */
  turns?: ReadonlyArray<RE.RunEventOf<"agent:turn_completed">> | undefined
}

/** A gate of this run waiting for a decision: `Run.PendingGate` without what the run already knows. */
export type PendingGate = Pick<Run.PendingGate, "gateId" | "nodeId" | "gateType" | "message" | "expiresAt" | "timeoutAction"> & {
  /** When the gate opened (its `human_gate:paused`): the start of its `gate.wait` span. */
  readonly openedAt?: string | undefined
}

export interface RunState {
  readonly runId: string
  readonly plan: Plan.WorkflowPlan
  workflowId: string
  status: RunStatus
  startedAtMs: number
  inputs: Readonly<Record<string, unknown>>
  lastSequenceNumber: number
  readonly nodes: Map<string, NodeState>
  /** Unsettled dependency count per node (unique upstream nodes). */
  readonly unsettled: Map<string, number>
  /** Pending nodes whose dependencies have all settled. */
  readonly frontier: Set<string>
  readonly pendingGates: Map<string, PendingGate>
  readonly resolvedGateIds: Set<string>
  settledCount: number
  runningCount: number
  inputTokens: number
  outputTokens: number
  costMicrocents: number
  budgetWarned: boolean
  budgetApproved: boolean
  /** The first node failure, which ends the run. */
  failure: { readonly nodeId: string; readonly error: RunError.RunErrorInfo } | undefined
  /** The gate set the last `run:paused` reported, so a pause is announced once. */
  pausedKey: string | undefined
}

const uniqueSources = (plan: Plan.WorkflowPlan, nodeId: string): ReadonlySet<string> =>
  new Set((plan.incoming.get(nodeId) ?? []).map((e) => e.from))

const uniqueTargets = (plan: Plan.WorkflowPlan, nodeId: string): ReadonlySet<string> =>
  new Set((plan.outgoing.get(nodeId) ?? []).map((e) => e.to))

export const initialState = (runId: string, plan: Plan.WorkflowPlan): RunState => {
  const unsettled = new Map<string, number>()
  const frontier = new Set<string>()
  for (const id of plan.order) {
    const count = uniqueSources(plan, id).size
    unsettled.set(id, count)
    if (count === 0) frontier.add(id)
  }
  return {
    runId,
    plan,
    workflowId: "",
    status: "running",
    startedAtMs: 0,
    inputs: {},
    lastSequenceNumber: -1,
    nodes: new Map(),
    unsettled,
    frontier,
    pendingGates: new Map(),
    resolvedGateIds: new Set(),
    settledCount: 0,
    runningCount: 0,
    inputTokens: 0,
    outputTokens: 0,
    costMicrocents: 0,
    budgetWarned: false,
    budgetApproved: false,
    failure: undefined,
    pausedKey: undefined
  }
}

export const nodeState = (state: RunState, nodeId: string): NodeState =>
  state.nodes.get(nodeId) ?? { status: "pending", attempt: 0 }

export const isSettled = (status: NodeStatus): boolean => status === "completed" || status === "failed" || status === "skipped"
const isActive = (status: NodeStatus) => status === "running"

const setNode = (state: RunState, nodeId: string, next: NodeState) => {
  const previous = nodeState(state, nodeId).status
  state.nodes.set(nodeId, next)
  if (isActive(previous) && !isActive(next.status)) state.runningCount -= 1
  if (!isActive(previous) && isActive(next.status)) state.runningCount += 1
  if (next.status !== "pending") state.frontier.delete(nodeId)
  if (!isSettled(previous) && isSettled(next.status)) {
    state.settledCount += 1
    for (const target of uniqueTargets(state.plan, nodeId)) {
      const left = (state.unsettled.get(target) ?? 0) - 1
      state.unsettled.set(target, left)
      if (left === 0 && nodeState(state, target).status === "pending") state.frontier.add(target)
    }
  }
}

/**
 * Applies events in order. Returns false when an event does not follow the last
 * one applied (a gap): the caller must re-read the log from the store.
 */
export const applyEvents = (state: RunState, events: ReadonlyArray<RE.RunEvent>): boolean => {
  for (const event of events) {
    if (event.sequenceNumber <= state.lastSequenceNumber) continue
    if (event.sequenceNumber !== state.lastSequenceNumber + 1) return false
    applyEvent(state, event)
    state.lastSequenceNumber = event.sequenceNumber
    state.status = statusAfter(state.status, event)
  }
  return true
}

const applyEvent = (state: RunState, event: RE.RunEvent): void => {
  switch (event.type) {
    case "run:started":
      state.workflowId = event.workflowId
      state.inputs = event.inputs
      state.startedAtMs = Date.parse(event.timestamp)
      return
    case "node:started": {
      const previous = nodeState(state, event.nodeId)
      const attempt = event.attemptNumber ?? 1
      setNode(state, event.nodeId, {
        ...previous,
        status: "running",
        attempt,
        interruptions: attempt === 1 ? undefined : previous.interruptions
      })
      return
    }
    case "node:retrying": {
      const previous = nodeState(state, event.nodeId)
      setNode(state, event.nodeId, {
        ...previous,
        attempt: event.attemptNumber,
        attemptsBeforeCrash: event.interrupted ? event.attemptNumber - 1 : previous.attemptsBeforeCrash,
        interruptions: event.interrupted ? (previous.interruptions ?? 0) + 1 : previous.interruptions
      })
      return
    }
    case "node:completed":
      state.inputTokens += event.tokensUsed.input
      state.outputTokens += event.tokensUsed.output
      setNode(state, event.nodeId, {
        ...nodeState(state, event.nodeId),
        status: "completed",
        output: event.output,
        selected: event.selected
      })
      return
    case "node:failed":
      setNode(state, event.nodeId, { ...nodeState(state, event.nodeId), status: "failed" })
      state.failure ??= { nodeId: event.nodeId, error: { ...event.error, nodeId: event.nodeId } }
      return
    case "node:skipped":
      setNode(state, event.nodeId, { ...nodeState(state, event.nodeId), status: "skipped" })
      return
    case "human_gate:paused":
      state.pendingGates.set(event.gateId, {
        gateId: event.gateId,
        nodeId: event.nodeId,
        gateType: event.gateType,
        message: event.message,
        expiresAt: event.expiresAt,
        timeoutAction: event.timeoutAction,
        openedAt: event.timestamp
      })
      setNode(state, event.nodeId, { ...nodeState(state, event.nodeId), status: "waiting" })
      return
    case "human_gate:resumed": {
      const gateId = event.gateId ?? [...state.pendingGates.values()].find((g) => g.nodeId === event.nodeId)?.gateId
      const gate = gateId === undefined ? undefined : state.pendingGates.get(gateId)
      if (gateId !== undefined) {
        state.pendingGates.delete(gateId)
        state.resolvedGateIds.add(gateId)
      }
      state.pausedKey = undefined
      // A budget gate resumes the agent node that asked; a node gate completes in the same commit.
      if (gate?.gateType === "budget" && event.decision === "approved") {
        state.budgetApproved = true
        setNode(state, event.nodeId, { ...nodeState(state, event.nodeId), status: "running" })
      }
      return
    }
    case "run:paused":
      state.pausedKey = pauseKey(event.gateIds)
      return
    case "agent:turn_completed": {
      const previous = nodeState(state, event.nodeId)
      state.nodes.set(event.nodeId, { ...previous, turns: [...(previous.turns ?? []), event], interruptions: undefined })
      return
    }
    case "cost:updated":
      state.costMicrocents = event.cumulativeCostMicrocents
      return
    case "budget:warning":
      state.budgetWarned = true
      return
    default:
      return
  }
}

export const pauseKey = (gateIds: ReadonlyArray<string>): string => [...gateIds].sort().join("\u0000")

export const isTerminalState = (state: RunState): boolean => TerminalStatuses.has(state.status)

/** Outputs of every completed node, keyed by node id (with `completing`'s, completed in the same commit). */
export const completedOutputs = (
  state: RunState,
  completing?: { readonly nodeId: string; readonly output: unknown }
): Record<string, unknown> => {
  const outputs: Record<string, unknown> = {}
  const ids = [...state.nodes.keys()]
  if (completing !== undefined && !state.nodes.has(completing.nodeId)) ids.push(completing.nodeId)
  for (const id of ids.sort()) {
    if (id === completing?.nodeId) outputs[id] = completing.output
    else {
      const node = state.nodes.get(id)!
      if (node.status === "completed") outputs[id] = node.output
    }
  }
  return outputs
}

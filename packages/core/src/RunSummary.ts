/**
 * A run as people look at it (`relavium runs show`, the API's run resource):
 * folded from its events alone, with no workflow needed.
 */
import type { Run, RunEvent as RE, RunError } from "@relavium/domain"
import { type RunStatus, statusAfter } from "@relavium/ports"

export interface NodeSummary {
  readonly nodeId: string
  readonly nodeType: string
  readonly status: "running" | "waiting" | "completed" | "failed" | "skipped"
  readonly attempt: number
  readonly durationMs?: number | undefined
  readonly error?: RunError.RunErrorInfo | undefined
  readonly skipReason?: string | undefined
  /** The run whose recorded output this node reused (a forked or retried run): it did not run. */
  readonly reusedFrom?: string | undefined
}

/** A pending gate as the run summary shows it (`Run.PendingGate`, without the timeout action). */
export type GateSummary = Omit<Run.PendingGate, "timeoutAction">

export interface RunSummary {
  readonly runId: string
  readonly workflowId: string
  readonly status: RunStatus
  readonly startedAt: string | undefined
  readonly endedAt: string | undefined
  readonly inputs: Readonly<Record<string, unknown>>
  readonly nodes: ReadonlyArray<NodeSummary>
  readonly pendingGates: ReadonlyArray<GateSummary>
  readonly outputs: Readonly<Record<string, unknown>> | undefined
  readonly error: RunError.RunErrorInfo | undefined
  readonly tokens: { readonly input: number; readonly output: number }
  readonly costMicrocents: number
  readonly lastSequenceNumber: number
  /** The run this one was forked from or retries. */
  readonly forkedFrom?: RE.RunLineage | undefined
}

export const summarize = (runId: string, events: ReadonlyArray<RE.RunEvent>): RunSummary => {
  let status: RunStatus = "running"
  let workflowId = ""
  let startedAt: string | undefined
  let endedAt: string | undefined
  let inputs: Readonly<Record<string, unknown>> = {}
  let forkedFrom: RE.RunLineage | undefined
  let outputs: Readonly<Record<string, unknown>> | undefined
  let error: RunError.RunErrorInfo | undefined
  let costMicrocents = 0
  const tokens = { input: 0, output: 0 }
  const nodes = new Map<string, NodeSummary>()
  const gates = new Map<string, GateSummary>()
  const update = (nodeId: string, patch: Partial<NodeSummary>) => {
    const current = nodes.get(nodeId) ?? { nodeId, nodeType: "", status: "running" as const, attempt: 1 }
    nodes.set(nodeId, { ...current, ...patch })
  }
  for (const event of events) {
    status = statusAfter(status, event)
    switch (event.type) {
      case "run:started":
        workflowId = event.workflowId
        startedAt = event.timestamp
        inputs = event.inputs
        forkedFrom = event.forkedFrom
        break
      case "node:started":
        update(event.nodeId, { nodeType: event.nodeType, status: "running", attempt: event.attemptNumber ?? 1 })
        break
      case "node:completed":
        update(event.nodeId, {
          status: "completed",
          durationMs: event.durationMs,
          ...(event.reusedFrom === undefined ? {} : { reusedFrom: event.reusedFrom })
        })
        tokens.input += event.tokensUsed.input
        tokens.output += event.tokensUsed.output
        break
      case "node:failed":
        update(event.nodeId, { status: "failed", error: event.error })
        break
      case "node:skipped":
        update(event.nodeId, { status: "skipped", skipReason: event.reason })
        break
      case "human_gate:paused":
        update(event.nodeId, { status: "waiting" })
        gates.set(event.gateId, {
          runId,
          gateId: event.gateId,
          nodeId: event.nodeId,
          gateType: event.gateType,
          message: event.message,
          assignee: event.assignee,
          expiresAt: event.expiresAt,
          pausedAt: event.timestamp
        })
        break
      case "human_gate:resumed":
        if (event.gateId !== undefined) gates.delete(event.gateId)
        else for (const [id, gate] of gates) if (gate.nodeId === event.nodeId) gates.delete(id)
        break
      case "cost:updated":
        costMicrocents = event.cumulativeCostMicrocents
        break
      case "run:completed":
        outputs = event.outputs
        endedAt = event.timestamp
        break
      case "run:failed":
        error = event.error
        outputs = event.partialOutputs
        endedAt = event.timestamp
        break
      case "run:cancelled":
        endedAt = event.timestamp
        break
      default:
        break
    }
  }
  const ended = status === "completed" || status === "failed" || status === "cancelled"
  return {
    runId,
    workflowId,
    status,
    startedAt,
    endedAt,
    inputs,
    nodes: [...nodes.values()],
    pendingGates: ended ? [] : [...gates.values()],
    outputs,
    error,
    tokens,
    costMicrocents,
    lastSequenceNumber: events.at(-1)?.sequenceNumber ?? -1,
    ...(forkedFrom === undefined ? {} : { forkedFrom })
  }
}

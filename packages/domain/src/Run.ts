/**
 * The wire shapes of a run as stored and served, declared once: its status,
 * its record, and a gate waiting for a decision. The ports (`RunStore`), the
 * engine and the HTTP API use these.
 */
import { Schema } from "effect"

export const RunStatus = Schema.Literal("running", "waiting", "completed", "failed", "cancelled")
export type RunStatus = typeof RunStatus.Type

/** The statuses of a run that has ended. */
export const TerminalStatus = Schema.Literal("completed", "failed", "cancelled")
export type TerminalStatus = typeof TerminalStatus.Type

export const RunRecord = Schema.Struct({
  runId: Schema.String,
  workflowId: Schema.String,
  workflowName: Schema.String,
  status: RunStatus,
  createdAt: Schema.String,
  updatedAt: Schema.String,
  lastSequenceNumber: Schema.Number
})
export type RunRecord = typeof RunRecord.Type

export const GateType = Schema.Literal("approval", "input", "review", "budget")
export type GateType = typeof GateType.Type

/** A gate that waits for a decision, in a run that has not ended. */
export const PendingGate = Schema.Struct({
  runId: Schema.String,
  gateId: Schema.String,
  nodeId: Schema.String,
  gateType: GateType,
  message: Schema.String,
  assignee: Schema.optional(Schema.String),
  expiresAt: Schema.optional(Schema.String),
  timeoutAction: Schema.optional(Schema.Literal("approve", "reject")),
  /** The timestamp of the `human_gate:paused` event. */
  pausedAt: Schema.String
})
export type PendingGate = typeof PendingGate.Type

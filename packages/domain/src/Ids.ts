/**
 * Identifiers shared by every surface. Ids are branded strings so that a node id
 * can never be passed where a run id is expected.
 */
import { Schema } from "effect"

export const KebabPattern = /^[a-z0-9]+(?:-[a-z0-9]+)*$/

export const KebabId = Schema.String.pipe(
  Schema.pattern(KebabPattern, {
    message: () => "must be kebab-case (lowercase letters and digits separated by single dashes)"
  })
)

export const RunId = Schema.String.pipe(Schema.minLength(1), Schema.brand("RunId"))
export type RunId = typeof RunId.Type

export const NodeId = Schema.String.pipe(Schema.minLength(1), Schema.brand("NodeId"))
export type NodeId = typeof NodeId.Type

export const GateId = Schema.String.pipe(Schema.minLength(1), Schema.brand("GateId"))
export type GateId = typeof GateId.Type

export const WorkflowId = Schema.String.pipe(Schema.minLength(1), Schema.brand("WorkflowId"))
export type WorkflowId = typeof WorkflowId.Type

/** The gate id of a human_gate node in a run is derived, so a retried gate keeps its id. */
export const gateIdFor = (runId: string, nodeId: string): GateId => `${runId}:${nodeId}` as GateId

/**
 * The error shape carried by run events, and its closed set of codes.
 */
import { Schema } from "effect"

export const ErrorCode = Schema.Literal(
  "validation",
  "content_filter",
  "provider_auth",
  "provider_rate_limit",
  "provider_unavailable",
  "tool_denied",
  "tool_failed",
  "tool_unavailable",
  "budget_exceeded",
  "run_timeout",
  "turn_limit",
  "cancelled",
  "sandbox_error",
  "poison_run",
  "internal"
)
export type ErrorCode = typeof ErrorCode.Type

export const RunErrorInfo = Schema.Struct({
  code: ErrorCode,
  message: Schema.String,
  retryable: Schema.Boolean,
  nodeId: Schema.optional(Schema.String),
  correlationId: Schema.optional(Schema.String)
})
export type RunErrorInfo = typeof RunErrorInfo.Type

/** A node failed in a way the run event log records. Raised by node handlers inside the engine. */
export class NodeFailure extends Schema.TaggedError<NodeFailure>()("NodeFailure", {
  code: ErrorCode,
  message: Schema.String,
  retryable: Schema.Boolean
}) {}

export const nodeFailure = (code: ErrorCode, message: string, retryable = false) =>
  new NodeFailure({ code, message, retryable })

/**
 * The wire shapes of a tool call, declared once: what an agent asks a tools
 * daemon to run, what comes back, and the typed error. The engine, the
 * daemon's RPC protocol, the NATS router and the ports use these. The call's
 * tool *policy* (allowlists) belongs to the daemon, which decodes it; a
 * carrier adds it with `toolCallWith(policySchema)`.
 */
import { Schema } from "effect"

/** Why a tool call did not run: unknown tool, refused by policy or confinement, or failed in the host. */
export const ToolErrorCode = Schema.Literal("tool_denied", "tool_failed", "tool_unavailable")
export type ToolErrorCode = typeof ToolErrorCode.Type

/** A tool call that did not produce a result; crosses RPC and NATS as is. */
export class ToolError extends Schema.TaggedError<ToolError>()("ToolError", {
  code: ToolErrorCode,
  message: Schema.String
}) {}

/** The fields of every tool call, whatever carries it. */
export const ToolCallFields = {
  runId: Schema.String,
  nodeId: Schema.String,
  callId: Schema.String,
  name: Schema.String,
  args: Schema.Unknown
}

/** A tool call without a policy. */
export const ToolCall = Schema.Struct(ToolCallFields)
export type ToolCall = typeof ToolCall.Type

/**
 * The workflow's tool policy as it travels with a tool call (RPC, NATS): the allowlists of
 * `workflow.tools`, already validated with the workflow (`Workflow.ToolPolicy` checks the command
 * patterns); the daemon enforces it (docs/command-policy.md). An empty or absent list denies the tool.
 */
const Allowlist = Schema.optional(Schema.Union(Schema.Array(Schema.String), Schema.Undefined))
export const ToolPolicy = Schema.Struct({
  allowedCommands: Allowlist,
  allowedCommandGlobs: Allowlist,
  allowedDomains: Allowlist
})
export type ToolPolicy = typeof ToolPolicy.Type

/** A tool call carrying the workflow's tool policy, decoded by `policy`. */
export const toolCallWith = <P extends Schema.Schema.Any>(policy: P) =>
  Schema.Struct({ ...ToolCallFields, policy: Schema.optional(Schema.Union(policy, Schema.Undefined)) })

/** What the model sees of a finished call (already bounded by the daemon), and whether the tool reported a failure. */
export const ToolResult = Schema.Struct({
  output: Schema.String,
  isError: Schema.optional(Schema.Union(Schema.Boolean, Schema.Undefined))
})
export type ToolResult = typeof ToolResult.Type

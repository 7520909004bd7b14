/**
 * The wire shapes of a tool call and its streamed result, shared by the
 * in-process daemon and the RPC protocol. The call itself is `Tool.ToolCall`
 * of @relavium/domain, carrying this daemon's `ToolPolicy`.
 */
import { Schema } from "effect"
import { Tool } from "@relavium/domain"
import { ToolPolicy } from "./ToolPolicy.js"

/** `DaemonRouter.ToolCall`, as a Schema so the RPC boundary decodes it. */
export const ToolCallSchema = Tool.toolCallWith(ToolPolicy)
export type ToolCallSchema = typeof ToolCallSchema.Type

/** Output as a command prints it: forwarded while the call runs. */
export class OutputChunk extends Schema.TaggedClass<OutputChunk>()("Output", {
  stream: Schema.Literal("stdout", "stderr"),
  text: Schema.String
}) {}

/** The end of a call: what the model sees (already bounded) and whether the tool reported a failure. */
export class ResultChunk extends Schema.TaggedClass<ResultChunk>()("Result", {
  output: Schema.String,
  isError: Schema.Boolean
}) {}

export const ExecuteChunk = Schema.Union(OutputChunk, ResultChunk)
export type ExecuteChunk = typeof ExecuteChunk.Type

export const PingInfo = Schema.Struct({
  daemon: Schema.Literal("relavium"),
  version: Schema.String,
  uptimeMs: Schema.Number,
  /** Whether the tools have started (MCP servers connected); a standalone daemon starts at once. */
  started: Schema.Boolean
})
export type PingInfo = typeof PingInfo.Type

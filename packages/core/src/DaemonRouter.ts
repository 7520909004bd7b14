/**
 * Routes an agent's tool calls to the daemon that owns the workspace:
 * in-process locally, over RPC or NATS in the cloud.
 */
import type { Effect } from "effect"
import { Context, Schema } from "effect"
import type { Llm } from "@relavium/domain"

export class ToolError extends Schema.TaggedError<ToolError>()("ToolError", {
  code: Schema.Literal("tool_denied", "tool_failed", "tool_unavailable"),
  message: Schema.String
}) {}

export interface ToolCall {
  readonly runId: string
  readonly nodeId: string
  readonly callId: string
  readonly name: string
  readonly args: unknown
  /** Workflow tool policy (allowlists); narrowed per node. */
  readonly policy?: {
    readonly allowedCommands?: ReadonlyArray<string> | undefined
    readonly allowedCommandGlobs?: ReadonlyArray<string> | undefined
    readonly allowedDomains?: ReadonlyArray<string> | undefined
  } | undefined
}

export interface ToolResult {
  /** What the model sees; already bounded by the daemon. */
  readonly output: string
  readonly isError?: boolean | undefined
}

export class DaemonRouter extends Context.Tag("@relavium/core/DaemonRouter")<
  DaemonRouter,
  {
    readonly tools: (names: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Llm.ToolDef>, ToolError>
    readonly execute: (call: ToolCall) => Effect.Effect<ToolResult, ToolError>
  }
>() {}

/**
 * Routes an agent's tool calls to the daemon that owns the workspace:
 * in-process locally, over RPC or NATS in the cloud.
 */
import { Context, Effect, Layer, Schema } from "effect"
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

/** A tool implemented in this process. */
export interface InProcessTool {
  readonly definition: Llm.ToolDef
  readonly run: (call: ToolCall) => Effect.Effect<ToolResult, ToolError>
}

export class DaemonRouter extends Context.Tag("@relavium/ports/DaemonRouter")<
  DaemonRouter,
  {
    readonly tools: (names: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Llm.ToolDef>, ToolError>
    readonly execute: (call: ToolCall) => Effect.Effect<ToolResult, ToolError>
  }
>() {
  /** A router over tools implemented in this process (none by default: every call is tool_unavailable). */
  static readonly layerInProcess = (tools: ReadonlyArray<InProcessTool> = []): Layer.Layer<DaemonRouter> =>
    Layer.succeed(
      DaemonRouter,
      DaemonRouter.of({
        tools: (names) =>
          Effect.forEach(names, (name) => {
            const tool = tools.find((t) => t.definition.name === name)
            return tool
              ? Effect.succeed(tool.definition)
              : Effect.fail(new ToolError({ code: "tool_unavailable", message: `no tool named '${name}' is available here` }))
          }),
        execute: (call) => {
          const tool = tools.find((t) => t.definition.name === call.name)
          // Every router answers `isError` as a boolean, as the daemon and the wire layers do.
          return tool
            ? Effect.map(tool.run(call), (result) => ({ output: result.output, isError: result.isError ?? false }))
            : Effect.fail(new ToolError({ code: "tool_unavailable", message: `no tool named '${call.name}' is available here` }))
        }
      })
    )
}

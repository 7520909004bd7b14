/**
 * Routes an agent's tool calls to the daemon that owns the workspace:
 * in-process locally, over RPC or NATS in the cloud.
 */
import { Context, Effect, Layer } from "effect"
import { type Llm, Tool } from "@relavium/domain"

/** The typed failure of a tool call (`Tool.ToolError` in @relavium/domain, the one declaration). */
export const ToolError = Tool.ToolError
export type ToolError = Tool.ToolError

/** A tool call (`Tool.ToolCall`) with the workflow's tool policy, which the daemon decodes and enforces. */
export interface ToolCall extends Tool.ToolCall {
  /** Workflow tool policy (allowlists); narrowed per node. */
  readonly policy?: Tool.ToolPolicy | undefined
}

/** What the model sees (already bounded by the daemon), and whether the tool reported a failure (`Tool.ToolResult`). */
export type ToolResult = Tool.ToolResult

/** A piece of a tool's output while it runs (run_command's stdout or stderr), coalesced and bounded by the daemon. */
export interface ToolOutputChunk {
  readonly stream: "stdout" | "stderr"
  readonly text: string
}

export interface ExecuteOptions {
  /**
   * Receives the tool's output while it runs, in order, before the call returns its result (the
   * result is unchanged). Only tools that print as they go (run_command) call it. Not secret-scrubbed:
   * the caller scrubs before it stores or publishes a chunk.
   */
  readonly onOutput?: ((chunk: ToolOutputChunk) => Effect.Effect<void>) | undefined
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
    /** Runs a call to its result; `options.onOutput` sees its output while it runs. */
    readonly execute: (call: ToolCall, options?: ExecuteOptions) => Effect.Effect<ToolResult, ToolError>
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

/**
 * The tools daemon: owns one workspace, its built-in tools and its MCP
 * servers, and executes tool calls as streams (output chunks, then one
 * result). The RPC server and the in-process router are both thin shells
 * around it. Order per call (docs/workflow-format.md, "Tools"): tool lookup (unknown ⇒
 * tool_unavailable) → arguments (tool_failed) → allowlists and confinement
 * (tool_denied) → host (tool_failed).
 */
import { Context, Effect, Schema, type Scope, Stream } from "effect"
import { type ExecuteOptions, type ToolCall, ToolError, type ToolResult } from "@relavium/ports"
import type { Llm } from "@relavium/domain"
import { boundOutput } from "./Bounding.js"
import { type BuiltinTool, builtins, type ToolContext } from "./Builtins.js"
import { type HostResolver, type HttpRequester, nodeRequester, systemResolver } from "./HttpEgress.js"
import * as Mcp from "./Mcp.js"
import { type ExecuteChunk, type PingInfo, ResultChunk } from "./ToolCall.js"
import type { ToolPolicy } from "./ToolPolicy.js"
import * as Workspace from "./Workspace.js"

export const DAEMON_VERSION = "0.1.0"

export interface DaemonOptions {
  /** The directory every file tool is confined to. */
  readonly workspace: string
  /**
   * Absolute paths no file tool reaches wherever the workspace is — the data
   * directory and the key file: reads, writes and walks refuse or skip them,
   * and git_commit never stages them.
   */
  readonly excludedPaths?: ReadonlyArray<string> | undefined
  /** Allowlists for calls that carry no workflow policy of their own. */
  readonly policy?: ToolPolicy | undefined
  /** MCP servers whose tools this daemon offers as `mcp_{server}_{tool}`. */
  readonly mcpServers?: ReadonlyArray<Mcp.McpServerConfig> | undefined
  /** Default and maximum run_command timeouts (ms). */
  readonly commandTimeoutMs?: number | undefined
  readonly maxCommandTimeoutMs?: number | undefined
  /** Name resolution for http_request (injectable for tests). */
  readonly resolver?: HostResolver | undefined
  /** HTTPS transport for http_request (injectable for tests). */
  readonly requester?: HttpRequester | undefined
}

export interface DaemonService {
  readonly workspace: Workspace.Workspace
  /** Tool definitions by name (every tool when `names` is omitted). */
  readonly tools: (names?: ReadonlyArray<string> | undefined) => Effect.Effect<ReadonlyArray<Llm.ToolDef>, ToolError>
  /** Executes a call: zero or more Output chunks, then exactly one Result. */
  readonly execute: (call: ToolCall) => Stream.Stream<ExecuteChunk, ToolError>
  readonly ping: Effect.Effect<PingInfo>
  readonly mcp: Mcp.McpManager
}

export class Daemon extends Context.Tag("@relavium/daemon/Daemon")<Daemon, DaemonService>() {}

const unavailable = (name: string) =>
  new ToolError({ code: "tool_unavailable", message: `no tool named '${name}' is available on this daemon` })

const McpArgs = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** Starts a daemon in the current scope: opens the workspace and connects the MCP servers. */
export const make = (options: DaemonOptions): Effect.Effect<DaemonService, ToolError, Scope.Scope> =>
  Effect.gen(function* () {
    const startedAt = Date.now()
    const workspace = yield* Workspace.open(options.workspace, options.excludedPaths ?? [])
    const servers = options.mcpServers ?? []
    const clash = servers.find((s, i) => servers.findIndex((o) => o.id === s.id) !== i)
    if (clash !== undefined) {
      return yield* new ToolError({ code: "tool_unavailable", message: `two MCP servers are named '${clash.id}'` })
    }
    const mcp = Mcp.makeManager(servers, workspace.root)
    yield* Effect.addFinalizer(() => mcp.closeAll)
    const connected = yield* mcp.connectAll
    for (const server of connected) {
      if (server.error !== undefined) yield* Effect.logWarning(`MCP server '${server.id}' did not start: ${server.error}`)
    }
    const byName = new Map<string, BuiltinTool>(builtins.map((tool) => [tool.definition.name, tool]))
    const baseContext = {
      workspace,
      resolver: options.resolver ?? systemResolver,
      requester: options.requester ?? nodeRequester,
      commandTimeoutMs: options.commandTimeoutMs ?? 120_000,
      maxCommandTimeoutMs: options.maxCommandTimeoutMs ?? 600_000
    }

    const tools = (names?: ReadonlyArray<string>) =>
      names === undefined
        ? mcp.definitions.pipe(Effect.map((fromMcp) => [...builtins.map((t) => t.definition), ...fromMcp]))
        : Effect.forEach(names, (name) => {
            const builtin = byName.get(name)
            if (builtin !== undefined) return Effect.succeed(builtin.definition)
            return mcp.parse(name) !== undefined ? mcp.definition(name) : Effect.fail(unavailable(name))
          })

    const execute = (call: ToolCall): Stream.Stream<ExecuteChunk, ToolError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const builtin = byName.get(call.name)
          if (builtin !== undefined) {
            const args = yield* builtin.decode(call.args)
            const context: ToolContext = { ...baseContext, policy: call.policy ?? options.policy ?? {} }
            return builtin.run(args, context)
          }
          if (mcp.parse(call.name) === undefined) return yield* unavailable(call.name)
          const args = yield* Schema.decodeUnknown(McpArgs)(call.args ?? {}).pipe(
            Effect.mapError(() => new ToolError({ code: "tool_failed", message: `bad arguments for ${call.name}: (arguments): expected an object` }))
          )
          const outcome = yield* mcp.call(call.name, args)
          return Stream.make(new ResultChunk({ output: boundOutput(outcome.output), isError: outcome.isError }))
        })
      )

    return {
      workspace,
      tools,
      execute,
      ping: Effect.sync(() => ({ daemon: "relavium" as const, version: DAEMON_VERSION, uptimeMs: Date.now() - startedAt, started: true })),
      mcp
    } satisfies DaemonService
  })

/** The final result of an executed call; its output chunks go to `options.onOutput` (dropped without one), in order. */
export const collectResult = (
  stream: Stream.Stream<ExecuteChunk, ToolError>,
  options: ExecuteOptions = {}
): Effect.Effect<ToolResult, ToolError> =>
  Effect.suspend(() => {
    let last: ResultChunk | undefined
    const onOutput = options.onOutput
    return stream.pipe(
      Stream.runForEach((chunk) => {
        if (chunk._tag === "Result") {
          last = chunk
          return Effect.void
        }
        return onOutput === undefined ? Effect.void : onOutput({ stream: chunk.stream, text: chunk.text })
      }),
      Effect.flatMap(() =>
        last === undefined
          ? Effect.fail(new ToolError({ code: "tool_failed", message: "the tool ended without a result" }))
          : Effect.succeed<ToolResult>({ output: last.output, isError: last.isError })
      )
    )
  })

/**
 * The tools a chat's agent may call, and which calls need the user's
 * approval in each approval mode.
 *
 * Each chat works in one directory (its project, or its own worktree), and a
 * daemon is confined to one workspace, so `ChatTools` hands out one
 * `DaemonRouter` per workspace: built on first use, shared by the chats in that
 * directory, released a while after the last turn there ends.
 *
 * Approval is fail-closed: a tool is read-only only if it is on the list below;
 * anything else (a new built-in, an MCP tool) needs a decision unless the chat
 * is in `auto` mode.
 */
import { Context, type Duration, Effect, Layer, RcMap, type Scope } from "effect"
import { CommandPattern } from "@relavium/domain"
import { DaemonRouter, type ToolCall } from "@relavium/ports"
import type { Approval, ApprovalMode } from "./ChatEvent.js"

/** Where a chat's tools run: a directory, in the dialed-in daemon named `daemon` when there is one. */
export interface ToolTarget {
  readonly workspace: string
  readonly daemon?: string | undefined
}

export class ChatTools extends Context.Tag("@relavium/chat/ChatTools")<
  ChatTools,
  {
    /** The router for tools confined to the target's workspace (of its daemon, when it names one), held for the scope. */
    readonly router: (target: ToolTarget) => Effect.Effect<DaemonRouter["Type"], never, Scope.Scope>
  }
>() {
  /** One router per target, made by `make` (e.g. the daemon's `layerLocal({ workspace })`). */
  static readonly layer = (
    make: (target: ToolTarget) => Layer.Layer<DaemonRouter>,
    options: { readonly idleTimeToLive?: Duration.DurationInput | undefined } = {}
  ): Layer.Layer<ChatTools> =>
    Layer.scoped(
      ChatTools,
      Effect.gen(function* () {
        const routers = yield* RcMap.make({
          lookup: (key: string) => {
            const target = JSON.parse(key) as ToolTarget
            return Effect.map(Layer.build(make(target)), (context) => Context.get(context, DaemonRouter))
          },
          idleTimeToLive: options.idleTimeToLive ?? "5 minutes"
        })
        return ChatTools.of({ router: (target) => RcMap.get(routers, JSON.stringify({ workspace: target.workspace, daemon: target.daemon })) })
      })
    )

  /** The same router for every workspace (a remote daemon that owns its workspace; tests). */
  static readonly layerRouter: Layer.Layer<ChatTools, never, DaemonRouter> = Layer.effect(
    ChatTools,
    Effect.map(DaemonRouter, (router) => ChatTools.of({ router: () => Effect.succeed(router) }))
  )
}

/** The tools a chat offers its model unless it is created with its own list. */
export const defaultTools: ReadonlyArray<string> = [
  "read_file",
  "write_file",
  "edit_file",
  "list_directory",
  "glob",
  "grep",
  "run_command",
  "git_status",
  "git_commit"
]

/** Tools that only read: they run in every mode without asking. */
export const readOnlyTools: ReadonlySet<string> = new Set(["read_file", "list_directory", "glob", "grep", "git_status"])

/** Tools that change files in the workspace (and nothing else): `accept-edits` lets them run. */
export const editTools: ReadonlySet<string> = new Set(["write_file", "edit_file"])

/** Whether a call of `tool` needs a decision in `mode`. */
export const approvalFor = (mode: ApprovalMode, tool: string): Approval => {
  if (readOnlyTools.has(tool)) return "none"
  if (mode === "auto") return "auto"
  if (mode === "accept-edits" && editTools.has(tool)) return "auto"
  return "required"
}

/**
 * The allowlist a chat's call runs under. A chat has no workflow allowlists:
 * the approval (or `auto` mode) is the grant, so exactly the approved command
 * line (or request host) is allowed, and nothing else.
 */
export const policyFor = (name: string, args: unknown): NonNullable<ToolCall["policy"]> => {
  const record = typeof args === "object" && args !== null ? (args as Record<string, unknown>) : {}
  if (name === "run_command" && typeof record.command === "string") {
    const argv = Array.isArray(record.args) ? record.args.filter((a): a is string => typeof a === "string") : []
    return { allowedCommands: [CommandPattern.exactLine(record.command, argv)] }
  }
  if (name === "http_request" && typeof record.url === "string") {
    try {
      return { allowedDomains: [new URL(record.url).hostname] }
    } catch {
      return {}
    }
  }
  return {}
}

/** One line a person can decide on. */
export const previewOf = (name: string, args: unknown): string => {
  const record = typeof args === "object" && args !== null ? (args as Record<string, unknown>) : {}
  switch (name) {
    case "run_command": {
      const argv = Array.isArray(record.args) ? record.args.map(String) : []
      return `run_command: ${[String(record.command ?? ""), ...argv].join(" ")}`
    }
    case "write_file":
      return `write_file: ${String(record.path ?? "")} (${typeof record.content === "string" ? `${record.content.length} characters` : "?"}${record.append === true ? ", append" : ""})`
    case "edit_file":
      return `edit_file: ${String(record.path ?? "")}`
    case "git_commit":
      return `git_commit: ${JSON.stringify(record.message ?? "")}${Array.isArray(record.files) ? ` (${record.files.join(", ")})` : ""}`
    default: {
      const text = JSON.stringify(args ?? {})
      return `${name}: ${text.length > 200 ? `${text.slice(0, 199)}…` : text}`
    }
  }
}

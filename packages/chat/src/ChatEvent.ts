/**
 * The events of one chat, as every surface sees them (terminal, SSE, tests):
 * numbered per chat from 0 (`seq`), stored before they are published, so a
 * follower that reconnects after `seq` N gets exactly the events after N.
 *
 * A turn (one user message and the work it starts) begins with
 * `turn:started` (or `turn:resumed`) and rests at exactly one of
 * `turn:completed`, `turn:paused` (tool calls wait for approval),
 * `turn:failed` or `turn:interrupted`.
 */
import { Schema } from "effect"
import { Chat } from "@relavium/domain"

const envelope = { chatId: Schema.String, seq: Schema.Int, timestamp: Schema.String }

const event = <T extends string, F extends Schema.Struct.Fields>(type: T, fields: F) =>
  Schema.Struct({ type: Schema.Literal(type), ...envelope, ...fields })

export const ApprovalMode = Schema.Literal("ask", "accept-edits", "auto")
export type ApprovalMode = typeof ApprovalMode.Type

/** Whether a tool call needed a decision: read-only tools need none; `auto` means the mode allowed it. */
export const Approval = Schema.Literal("none", "auto", "required")
export type Approval = typeof Approval.Type

export const ToolOutcome = Schema.Literal("ok", "error", "denied", "interrupted")
export type ToolOutcome = typeof ToolOutcome.Type

export const MessageStatus = Chat.MessageStatus

const ToolCallRef = Schema.Struct({ toolCallId: Schema.String, name: Schema.String })

export const ChatEvent = Schema.Union(
  event("chat:created", {
    projectId: Schema.String,
    workspace: Schema.String,
    worktree: Schema.optional(Schema.Struct({ path: Schema.String, branch: Schema.String })),
    provider: Schema.String,
    model: Schema.String,
    approvalMode: ApprovalMode
  }),
  event("chat:settings", { approvalMode: ApprovalMode }),
  event("worktree:removed", { path: Schema.String, branch: Schema.String }),
  /** A user message was stored; the agent starts working on it. */
  event("turn:started", { turnId: Schema.String, messageId: Schema.String, text: Schema.String }),
  /** An unfinished turn continues (after approvals, an interruption or a failure). */
  event("turn:resumed", { turnId: Schema.String }),
  event("message:started", { messageId: Schema.String, provider: Schema.String, model: Schema.String }),
  /** Streamed answer text (several model chunks batched per store write). */
  event("message:delta", { messageId: Schema.String, text: Schema.String }),
  event("reasoning:delta", { messageId: Schema.String, text: Schema.String }),
  event("message:completed", {
    messageId: Schema.String,
    status: MessageStatus,
    text: Schema.String,
    inputTokens: Schema.Int,
    outputTokens: Schema.Int,
    costMicrocents: Schema.Int
  }),
  event("tool:call", {
    messageId: Schema.String,
    toolCallId: Schema.String,
    name: Schema.String,
    args: Schema.Unknown,
    approval: Approval
  }),
  event("approval:requested", {
    toolCallId: Schema.String,
    name: Schema.String,
    args: Schema.Unknown,
    /** One line a person can decide on, e.g. `run_command: npm test`. */
    preview: Schema.String
  }),
  event("approval:decided", {
    toolCallId: Schema.String,
    name: Schema.String,
    decision: Schema.Literal("allow", "deny"),
    decidedBy: Schema.String
  }),
  event("tool:started", { toolCallId: Schema.String, name: Schema.String }),
  /** Output the tool prints while it runs (run_command): coalesced, at most 50 KiB per call, known secrets scrubbed. */
  event("tool:output", { toolCallId: Schema.String, stream: Schema.Literal("stdout", "stderr"), text: Schema.String }),
  event("tool:result", {
    toolCallId: Schema.String,
    name: Schema.String,
    outcome: ToolOutcome,
    /** What the model sees (bounded). */
    output: Schema.String
  }),
  event("file:patch", {
    toolCallId: Schema.String,
    path: Schema.String,
    operation: Schema.Literal("write", "append", "edit"),
    /** The new content (write/append), or the replaced and replacing text (edit). */
    content: Schema.optional(Schema.String),
    oldString: Schema.optional(Schema.String),
    newString: Schema.optional(Schema.String)
  }),
  event("cost:updated", {
    provider: Schema.String,
    model: Schema.String,
    inputTokens: Schema.Int,
    outputTokens: Schema.Int,
    costMicrocents: Schema.Int,
    chatCostMicrocents: Schema.Int,
    priced: Schema.Boolean
  }),
  event("turn:paused", { pending: Schema.Array(ToolCallRef) }),
  event("turn:completed", { messageId: Schema.optional(Schema.String) }),
  event("turn:failed", { code: Schema.String, message: Schema.String }),
  event("turn:interrupted", { reason: Schema.String })
)
export type ChatEvent = typeof ChatEvent.Type
export type ChatEventType = ChatEvent["type"]
export type ChatEventOf<T extends ChatEventType> = Extract<ChatEvent, { readonly type: T }>

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
/** An event before the store numbers it. */
export type ChatEventBody = DistributiveOmit<ChatEvent, "chatId" | "seq" | "timestamp">

/** The events a turn rests at (one per turn). */
export const restTypes: ReadonlySet<ChatEventType> = new Set<ChatEventType>([
  "turn:completed",
  "turn:paused",
  "turn:failed",
  "turn:interrupted"
])

export const isRest = (event: ChatEvent): boolean => restTypes.has(event.type)

export const decodeChatEvent = Schema.decodeUnknownSync(ChatEvent)
export const encodeChatEventJson = (event: ChatEvent): string => JSON.stringify(event)

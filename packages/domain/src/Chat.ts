/**
 * The wire shapes of chats, declared once: a chat's record and turn status, its
 * messages, worktrees and pending approvals. The chat store (ports), the chat
 * service and the HTTP API use these.
 */
import { Schema } from "effect"

const OrUndefined = <S extends Schema.Schema.Any>(schema: S) => Schema.Union(schema, Schema.Undefined)

/**
 * Where a chat's current turn stands: `running` while a process works on it (or
 * died doing so), `awaiting_approval` when a tool call waits for a decision,
 * `interrupted`/`failed` when it stopped early and can be resumed, `idle` when it answered.
 */
export const TurnStatus = Schema.Literal("idle", "running", "awaiting_approval", "interrupted", "failed")
export type TurnStatus = typeof TurnStatus.Type

export const WorktreeStatus = Schema.Literal("active", "removed")
export type WorktreeStatus = typeof WorktreeStatus.Type

export const MessageRole = Schema.Literal("user", "assistant", "tool")
export type MessageRole = typeof MessageRole.Type

export const MessageStatus = Schema.Literal("streaming", "completed", "interrupted", "failed")
export type MessageStatus = typeof MessageStatus.Type

export const BlockKind = Schema.Literal("text", "reasoning", "tool_call", "tool_result", "file_patch")
export type BlockKind = typeof BlockKind.Type

/** A chat as stored. */
export const ChatRecord = Schema.Struct({
  chatId: Schema.String,
  projectId: Schema.String,
  worktreeId: OrUndefined(Schema.String),
  title: Schema.String,
  model: OrUndefined(Schema.String),
  /** The chat service's settings (provider, approval mode, tools…), as JSON. */
  settings: Schema.Unknown,
  turnStatus: TurnStatus,
  /** The process working on the chat's turn, when one claimed it. */
  turnOwner: OrUndefined(Schema.String),
  turnHeartbeatAt: OrUndefined(Schema.String),
  /** The sequence number of the chat's last event (-1: none). */
  lastSequenceNumber: Schema.Number,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type ChatRecord = typeof ChatRecord.Type

/** A message's row as written (its blocks are written beside it). */
export const MessageFields = {
  messageId: Schema.String,
  chatId: Schema.String,
  /** Position in the chat, from 0; chosen by the writer (the one process holding the turn). */
  seq: Schema.Number,
  role: MessageRole,
  status: MessageStatus,
  model: OrUndefined(Schema.String),
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  costMicrocents: Schema.Number,
  createdAt: Schema.String,
  updatedAt: Schema.String
}
export const MessageWrite = Schema.Struct(MessageFields)
export type MessageWrite = typeof MessageWrite.Type

/** A tool call waiting for a person's decision. */
export const PendingApproval = Schema.Struct({
  chatId: Schema.String,
  messageId: Schema.String,
  toolCallId: Schema.String,
  name: Schema.String,
  args: Schema.Unknown,
  /** One line a person can decide on, e.g. `run_command: npm test`. */
  preview: Schema.String
})
export type PendingApproval = typeof PendingApproval.Type

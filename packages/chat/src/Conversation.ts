/**
 * A chat's messages as the service reads them, and the two pure decisions
 * made from them: what the model is sent, and what the turn does next. The
 * stored messages are the whole state of a turn (no state lives in memory),
 * so any process can continue a turn another one started.
 */
import { Either, Schema } from "effect"
import type { ContentBlockRecord, MessageRecord, MessageRole } from "@relavium/ports"
import type { Llm } from "@relavium/domain"
import { Approval, ToolOutcome } from "./ChatEvent.js"

/**
 * A tool call's progress: `ready` (runs without asking), `pending` (waits for a
 * decision), `allowed`/`denied` (decided, not run yet), `running`, `done`
 * (its result is stored), `interrupted` (the process died while it ran).
 */
export const ToolCallStatus = Schema.Literal("ready", "pending", "allowed", "denied", "running", "done", "interrupted")
export type ToolCallStatus = typeof ToolCallStatus.Type

export const TextContent = Schema.Struct({ text: Schema.String })

export const ToolCallContent = Schema.Struct({
  name: Schema.String,
  args: Schema.Unknown,
  approval: Approval,
  decision: Schema.optional(Schema.Literal("allow", "deny")),
  decidedBy: Schema.optional(Schema.String),
  decidedAt: Schema.optional(Schema.String)
})
export type ToolCallContent = typeof ToolCallContent.Type

export const ToolResultContent = Schema.Struct({ name: Schema.String, outcome: ToolOutcome, output: Schema.String })
export type ToolResultContent = typeof ToolResultContent.Type

export const FilePatchContent = Schema.Struct({
  path: Schema.String,
  operation: Schema.Literal("write", "append", "edit"),
  content: Schema.optional(Schema.String),
  oldString: Schema.optional(Schema.String),
  newString: Schema.optional(Schema.String)
})
export type FilePatchContent = typeof FilePatchContent.Type

interface BlockBase {
  readonly blockId: string
  readonly position: number
  readonly createdAt: string
}

export type ChatBlock =
  | (BlockBase & { readonly kind: "text"; readonly text: string })
  | (BlockBase & { readonly kind: "reasoning"; readonly text: string })
  | (BlockBase & { readonly kind: "tool_call"; readonly toolCallId: string; readonly status: ToolCallStatus } & ToolCallContent)
  | (BlockBase & { readonly kind: "tool_result"; readonly toolCallId: string } & ToolResultContent)
  | (BlockBase & { readonly kind: "file_patch"; readonly toolCallId: string } & FilePatchContent)

export type ToolCallBlock = Extract<ChatBlock, { readonly kind: "tool_call" }>

export interface ChatMessage {
  readonly messageId: string
  readonly seq: number
  readonly role: MessageRole
  readonly status: MessageRecord["status"]
  readonly model: string | undefined
  readonly inputTokens: number
  readonly outputTokens: number
  readonly costMicrocents: number
  readonly createdAt: string
  readonly blocks: ReadonlyArray<ChatBlock>
}

const decode = <A, I>(schema: Schema.Schema<A, I>) => Schema.decodeUnknownEither(schema)
const decodeText = decode(TextContent)
const decodeToolCall = decode(ToolCallContent)
const decodeToolResult = decode(ToolResultContent)
const decodeFilePatch = decode(FilePatchContent)
const decodeStatus = decode(ToolCallStatus)

/** A stored block as the service reads it; a block that does not decode is a corrupt store. */
export const toBlock = (block: ContentBlockRecord): Either.Either<ChatBlock, string> => {
  const base = { blockId: block.blockId, position: block.position, createdAt: block.createdAt }
  const callId = block.callId ?? ""
  const fail = (e: unknown) => `content block ${block.blockId} (${block.kind}) is not readable: ${String(e)}`
  switch (block.kind) {
    case "text":
    case "reasoning": {
      const kind = block.kind
      return Either.map(Either.mapLeft(decodeText(block.content), fail), (c): ChatBlock => ({ ...base, kind, text: c.text }))
    }
    case "tool_call":
      return Either.mapLeft(
        Either.flatMap(decodeToolCall(block.content), (c) =>
          Either.map(decodeStatus(block.status), (status): ChatBlock => ({ ...c, ...base, kind: "tool_call", toolCallId: callId, status }))
        ),
        fail
      )
    case "tool_result":
      return Either.map(Either.mapLeft(decodeToolResult(block.content), fail), (c): ChatBlock => ({ ...c, ...base, kind: "tool_result", toolCallId: callId }))
    case "file_patch":
      return Either.map(Either.mapLeft(decodeFilePatch(block.content), fail), (c): ChatBlock => ({ ...c, ...base, kind: "file_patch", toolCallId: callId }))
  }
}

export const toMessage = (record: MessageRecord): Either.Either<ChatMessage, string> =>
  Either.map(Either.all(record.blocks.map(toBlock)), (blocks) => ({
    messageId: record.messageId,
    seq: record.seq,
    role: record.role,
    status: record.status,
    model: record.model,
    inputTokens: record.inputTokens,
    outputTokens: record.outputTokens,
    costMicrocents: record.costMicrocents,
    createdAt: record.createdAt,
    blocks
  }))

/** The text of a message (its text blocks, joined). */
export const textOf = (message: ChatMessage): string =>
  message.blocks.flatMap((b) => (b.kind === "text" ? [b.text] : [])).join("")

export const toolCallsOf = (message: ChatMessage): ReadonlyArray<ToolCallBlock> =>
  message.blocks.filter((b): b is ToolCallBlock => b.kind === "tool_call")

const resultIds = (message: ChatMessage | undefined): ReadonlySet<string> =>
  new Set(message?.blocks.flatMap((b) => (b.kind === "tool_result" ? [b.toolCallId] : [])) ?? [])

/** What a turn does next, decided from the stored messages alone. */
export type Step =
  /** Nothing to do: no messages, or the last answer is complete. */
  | { readonly _tag: "Done"; readonly answer: ChatMessage | undefined }
  | { readonly _tag: "CallModel" }
  /** The last answer's tool calls that have no result yet, in the model's order. */
  | {
      readonly _tag: "Tools"
      readonly assistant: ChatMessage
      readonly toolMessage: ChatMessage | undefined
      readonly calls: ReadonlyArray<ToolCallBlock>
    }

export const nextStep = (messages: ReadonlyArray<ChatMessage>): Step => {
  const last = messages.at(-1)
  if (last === undefined) return { _tag: "Done", answer: undefined }
  switch (last.role) {
    case "user":
      return { _tag: "CallModel" }
    case "tool": {
      const assistant = messages.at(-2)
      if (assistant === undefined || assistant.role !== "assistant") return { _tag: "CallModel" }
      const done = resultIds(last)
      const calls = toolCallsOf(assistant).filter((c) => !done.has(c.toolCallId))
      return calls.length === 0 ? { _tag: "CallModel" } : { _tag: "Tools", assistant, toolMessage: last, calls }
    }
    case "assistant": {
      const calls = toolCallsOf(last)
      if (calls.length > 0) return { _tag: "Tools", assistant: last, toolMessage: undefined, calls }
      // An answer cut short (a crash, a failed stream) is asked for again.
      return last.status === "completed" ? { _tag: "Done", answer: last } : { _tag: "CallModel" }
    }
  }
}

/** Model calls made since the last user message: a turn stops at its limit. */
export const modelCallsInTurn = (messages: ReadonlyArray<ChatMessage>): number => {
  let count = 0
  for (let i = messages.length - 1; i >= 0 && messages[i]!.role !== "user"; i--) {
    if (messages[i]!.role === "assistant") count += 1
  }
  return count
}

/**
 * The conversation the model is sent. An answer that was cut short and has no
 * tool calls is left out (it was asked for again, or the user moved on);
 * consecutive user messages are merged, as some providers require turns to
 * alternate. Reasoning is not sent back (as in the workflow agent: providers
 * want their own signed form of it or none), and file patches are for people:
 * the model has the tool results.
 */
export const toLlmMessages = (messages: ReadonlyArray<ChatMessage>): ReadonlyArray<Llm.LlmMessage> => {
  const out: Array<{ role: Llm.LlmMessage["role"]; content: Array<Llm.ContentPart> }> = []
  for (const message of messages) {
    const parts: Array<Llm.ContentPart> = []
    for (const block of message.blocks) {
      switch (block.kind) {
        case "text":
          if (block.text.length > 0) parts.push({ type: "text", text: block.text })
          break
        case "tool_call":
          parts.push({ type: "tool_call", id: block.toolCallId, name: block.name, args: block.args })
          break
        case "tool_result":
          parts.push({ type: "tool_result", id: block.toolCallId, name: block.name, result: block.output, isError: block.outcome !== "ok" })
          break
        case "reasoning":
        case "file_patch":
          break
      }
    }
    if (message.role === "assistant" && message.status !== "completed" && toolCallsOf(message).length === 0) continue
    if (parts.length === 0) continue
    const previous = out.at(-1)
    if (message.role === "user" && previous?.role === "user") {
      previous.content.push({ type: "text", text: "\n\n" }, ...parts)
      continue
    }
    out.push({ role: message.role, content: parts })
  }
  return out
}

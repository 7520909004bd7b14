/**
 * The rows a turn writes: message rows, tool-call blocks, and the results of a
 * step's tool calls (with the file patch a successful edit made) together with
 * their events.
 */
import type { ContentBlockRecord, MessageWrite } from "@relavium/ports"
import type { ChatEventBody } from "./ChatEvent.js"
import { editTools } from "./ChatTools.js"
import type { ChatMessage, Step, ToolCallBlock, ToolCallContent, ToolCallStatus } from "./Conversation.js"
import { now } from "./ChatContext.js"

export const writeOf = (chatId: string, message: ChatMessage): MessageWrite => ({
  messageId: message.messageId,
  chatId,
  seq: message.seq,
  role: message.role,
  status: message.status,
  model: message.model,
  inputTokens: message.inputTokens,
  outputTokens: message.outputTokens,
  costMicrocents: message.costMicrocents,
  createdAt: message.createdAt,
  updatedAt: now()
})

/** A new message with no usage yet, written at `timestamp`. */
export const freshMessage = (
  chatId: string,
  seq: number,
  role: MessageWrite["role"],
  status: MessageWrite["status"],
  timestamp: string,
  model?: string
): MessageWrite => ({
  messageId: crypto.randomUUID(),
  chatId,
  seq,
  role,
  status,
  model,
  inputTokens: 0,
  outputTokens: 0,
  costMicrocents: 0,
  createdAt: timestamp,
  updatedAt: timestamp
})

export const callRecord = (messageId: string, call: ToolCallBlock, status: ToolCallStatus, content?: Partial<ToolCallContent>): ContentBlockRecord => ({
  blockId: call.blockId,
  messageId,
  position: call.position,
  kind: "tool_call",
  callId: call.toolCallId,
  status,
  content: {
    name: call.name,
    args: call.args,
    approval: call.approval,
    ...(call.decision !== undefined ? { decision: call.decision, decidedBy: call.decidedBy, decidedAt: call.decidedAt } : {}),
    ...content
  },
  createdAt: call.createdAt
})

/** Results of some of a step's calls: into the tool message after the answer (created if needed). */
export const resultWrites = (
  chatId: string,
  step: Extract<Step, { readonly _tag: "Tools" }>,
  results: ReadonlyArray<{ readonly call: ToolCallBlock; readonly outcome: "ok" | "error" | "denied" | "interrupted"; readonly output: string }>
) => {
  const timestamp = now()
  const toolMessage: MessageWrite =
    step.toolMessage !== undefined
      ? { ...writeOf(chatId, step.toolMessage), updatedAt: timestamp }
      : freshMessage(chatId, step.assistant.seq + 1, "tool", "completed", timestamp)
  let position = step.toolMessage?.blocks.reduce((max, b) => Math.max(max, b.position + 1), 0) ?? 0
  const blocks: Array<ContentBlockRecord> = []
  const events: Array<ChatEventBody> = []
  for (const { call, outcome, output } of results) {
    const finalStatus: ToolCallStatus = outcome === "interrupted" ? "interrupted" : outcome === "denied" ? "denied" : "done"
    blocks.push(callRecord(step.assistant.messageId, call, finalStatus))
    blocks.push({
      blockId: crypto.randomUUID(),
      messageId: toolMessage.messageId,
      position: position++,
      kind: "tool_result",
      callId: call.toolCallId,
      status: undefined,
      content: { name: call.name, outcome, output },
      createdAt: timestamp
    })
    events.push({ type: "tool:result", toolCallId: call.toolCallId, name: call.name, outcome, output })
    const patch = outcome === "ok" ? patchOf(call) : undefined
    if (patch !== undefined) {
      blocks.push({
        blockId: crypto.randomUUID(),
        messageId: toolMessage.messageId,
        position: position++,
        kind: "file_patch",
        callId: call.toolCallId,
        status: undefined,
        content: patch,
        createdAt: timestamp
      })
      events.push({ type: "file:patch", toolCallId: call.toolCallId, ...patch })
    }
  }
  return { messages: [toolMessage], blocks, events }
}

/** What a successful file edit changed, from its arguments (the daemon may run on another machine). */
const patchOf = (call: ToolCallBlock) => {
  if (!editTools.has(call.name) || typeof call.args !== "object" || call.args === null) return undefined
  const args = call.args as Record<string, unknown>
  if (typeof args.path !== "string") return undefined
  if (call.name === "write_file" && typeof args.content === "string") {
    return { path: args.path, operation: args.append === true ? ("append" as const) : ("write" as const), content: args.content }
  }
  if (call.name === "edit_file" && typeof args.old_string === "string" && typeof args.new_string === "string") {
    return { path: args.path, operation: "edit" as const, oldString: args.old_string, newString: args.new_string }
  }
  return undefined
}

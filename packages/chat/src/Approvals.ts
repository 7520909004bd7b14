/**
 * Approval decisions on a chat's tool calls (idempotent; a decision never
 * changes), the pending approvals across chats, and the chat's approval mode.
 */
import { Effect, Either } from "effect"
import type { ApprovalMode } from "./ChatEvent.js"
import { ToolCallAlreadyDecided, UnknownToolCall } from "./ChatError.js"
import { toMessage, toolCallsOf } from "./Conversation.js"
import { callRecord } from "./Blocks.js"
import { type ChatContext, now, storage } from "./ChatContext.js"
import { pendingOf, type Views } from "./Views.js"

export const makeApprovals = ({ commit, store }: ChatContext, { load, loadMessages }: Views) => {
  const approve = (chatId: string, toolCallId: string, decision: "allow" | "deny", decideOptions?: { readonly decidedBy?: string | undefined }) =>
    Effect.gen(function* () {
      yield* load(chatId)
      const messages = yield* loadMessages(chatId)
      const found = messages.flatMap((m) => toolCallsOf(m).filter((c) => c.toolCallId === toolCallId).map((call) => ({ message: m, call })))
      const target = found.find((f) => f.call.status === "pending") ?? found.at(-1)
      if (target === undefined) return yield* UnknownToolCall.of(chatId, toolCallId)
      const { call, message } = target
      if (call.status === "pending") {
        const decidedBy = decideOptions?.decidedBy ?? "user"
        yield* commit(chatId, {
          blocks: [callRecord(message.messageId, call, decision === "allow" ? "allowed" : "denied", { decision, decidedBy, decidedAt: now() })],
          events: [{ type: "approval:decided", toolCallId, name: call.name, decision, decidedBy }]
        })
        return { pending: pendingOf(chatId, messages).filter((p) => p.toolCallId !== toolCallId) }
      }
      if (call.decision === decision) return { pending: pendingOf(chatId, messages) }
      const state =
        call.decision === "allow" ? "allowed" : call.decision === "deny" ? "denied" : call.approval === "required" ? "decided" : "run without needing approval"
      return yield* new ToolCallAlreadyDecided({
        chatId,
        toolCallId,
        message: `tool call ${toolCallId} (${call.name}) of chat ${chatId} was already ${state}${call.status === "done" ? " and has run" : ""}; the decision cannot change`
      })
    })

  const setApprovalMode = (chatId: string, mode: ApprovalMode) =>
    Effect.gen(function* () {
      const loaded = yield* load(chatId)
      if (loaded.settings.approvalMode === mode) return
      yield* commit(chatId, {
        settings: { ...loaded.settings, approvalMode: mode },
        events: [{ type: "chat:settings", approvalMode: mode }]
      })
    })

  const pendingApprovals = (chatId?: string) =>
    storage(store.pendingToolCalls(chatId)).pipe(
      Effect.map((rows) =>
        rows.flatMap((row) => {
          const block = toMessage({ ...row.message, blocks: [row.block] })
          if (Either.isLeft(block)) return []
          return pendingOf(row.chatId, [block.right])
        })
      )
    )

  return { approve, setApprovalMode, pendingApprovals }
}

/**
 * One model call of a turn: the request from the conversation, the answer
 * streamed into an assistant message stored as it grows (deltas coalesced by
 * `ModelCall`), its usage and cost (as `AgentLoop` counted them), and its tool
 * calls stored as blocks that run, wait for approval, or need none.
 */
import { Effect, Option } from "effect"
import { AgentLoop, ModelCall } from "@relavium/core"
import type { ContentBlockRecord } from "@relavium/ports"
import type { Llm } from "@relavium/domain"
import type { ChatEventBody } from "./ChatEvent.js"
import { ChatStorageError, UnknownChat } from "./ChatError.js"
import { approvalFor, previewOf } from "./ChatTools.js"
import { type ChatMessage, toLlmMessages, type ToolCallStatus } from "./Conversation.js"
import { freshMessage } from "./Blocks.js"
import { type ChatContext, Continue, type Loaded, now, outcomeOf } from "./ChatContext.js"
import type { TurnOutcome } from "./ChatService.js"

/** A chat's model call about to be made (see `AgentLoop.PreparedCall`). */
export interface PreparedModelCall extends AgentLoop.PreparedCall<UnknownChat | ChatStorageError, never> {
  readonly complete: (
    streamed: ModelCall.ModelCall,
    charge: AgentLoop.Charge
  ) => Effect.Effect<Continue | TurnOutcome, UnknownChat | ChatStorageError>
}

const parseArgs = (argsJson: string): Option.Option<unknown> => {
  const args = ModelCall.parseArgs(argsJson)
  return args === undefined ? Option.none() : Option.some(args)
}

export const makeModelStep = ({ commit }: ChatContext) => {
  /**
   * One model call, streamed into an assistant message that is stored as it
   * grows: the request and how a batch is stored, for `AgentLoop`, and
   * `complete`, which stores the finished answer, its cost and its tool calls.
   */
  const prepareCall = (
    loaded: Loaded,
    messages: ReadonlyArray<ChatMessage>,
    toolDefs: ReadonlyArray<Llm.ToolDef>
  ): Effect.Effect<PreparedModelCall, UnknownChat | ChatStorageError> =>
    Effect.gen(function* () {
      const chatId = loaded.record.chatId
      const { approvalMode, model, provider, systemPrompt } = loaded.settings
      const request: Llm.LlmRequest = {
        provider,
        model,
        system: systemPrompt.length > 0 ? systemPrompt : undefined,
        messages: toLlmMessages(messages),
        tools: toolDefs.length > 0 ? toolDefs : undefined
      }
      const createdAt = now()
      const base = freshMessage(chatId, (messages.at(-1)?.seq ?? -1) + 1, "assistant", "streaming", createdAt, model)
      yield* commit(chatId, { messages: [base], events: [{ type: "message:started", messageId: base.messageId, provider, model }] })

      /** Each text or reasoning part of the answer is one content block, stored as it grows. */
      const blockIds: Array<string> = []
      const partRecord = (parts: ReadonlyArray<ModelCall.Part>, index: number, status: "streaming" | "done"): ContentBlockRecord => {
        blockIds[index] ??= crypto.randomUUID()
        return {
          blockId: blockIds[index]!,
          messageId: base.messageId,
          position: index,
          kind: parts[index]!.kind,
          callId: undefined,
          status,
          content: { text: parts[index]!.text },
          createdAt
        }
      }
      const persist = (batch: ModelCall.Batch, parts: ReadonlyArray<ModelCall.Part>) => {
        const events: Array<ChatEventBody> = []
        for (const item of batch.items) {
          if (item.type === "delta") {
            events.push({ type: item.kind === "text" ? "message:delta" : "reasoning:delta", messageId: base.messageId, text: item.text })
          }
        }
        return batch.touched.length === 0
          ? Effect.void
          : Effect.asVoid(commit(chatId, { blocks: batch.touched.map((index) => partRecord(parts, index, "streaming")), events }))
      }
      const complete = (
        streamed: ModelCall.ModelCall,
        charge: AgentLoop.Charge
      ): Effect.Effect<Continue | TurnOutcome, UnknownChat | ChatStorageError> =>
        Effect.gen(function* () {
          const parts = streamed.parts
          const calls = streamed.toolCalls
          const { usage } = charge
          const cost = charge.costMicrocents
          const costEvent: ChatEventBody = {
            type: "cost:updated",
            provider,
            model,
            inputTokens: usage.inputTokens,
            outputTokens: usage.outputTokens,
            costMicrocents: cost,
            chatCostMicrocents: charge.totals.costMicrocents,
            priced: charge.priced
          }
          const text = streamed.text
          const failure = streamed.failure !== undefined
            ? ModelCall.llmFailure(streamed.failure)
            : streamed.stopReason === "content_filter"
              ? { code: "content_filter", message: `${provider}/${model} stopped: its content filter blocked the answer` }
              : undefined
          const finished = { ...base, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, costMicrocents: cost, updatedAt: now() }

          if (failure !== undefined) {
            yield* commit(chatId, {
              turnStatus: "failed",
              messages: [{ ...finished, status: "failed" }],
              blocks: parts.map((_, index) => partRecord(parts, index, "done")),
              events: [
                { type: "message:completed", messageId: base.messageId, status: "failed", text, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, costMicrocents: cost },
                costEvent,
                { type: "turn:failed", code: failure.code, message: failure.message }
              ]
            })
            return outcomeOf(chatId, "failed", { error: { code: failure.code, message: failure.message } })
          }

          const callBlocks: Array<ContentBlockRecord> = []
          const callEvents: Array<ChatEventBody> = []
          for (const call of calls) {
            const args = parseArgs(call.argsJson)
            // Arguments that are not JSON never reach a tool, so they need no decision.
            const approval = Option.isNone(args) ? "none" : approvalFor(approvalMode, call.name)
            const status: ToolCallStatus = approval === "required" ? "pending" : "ready"
            const value = Option.getOrElse(args, () => call.argsJson)
            callBlocks.push({
              blockId: crypto.randomUUID(),
              messageId: base.messageId,
              position: parts.length + callBlocks.length,
              kind: "tool_call",
              callId: call.id,
              status,
              content: { name: call.name, args: value, approval },
              createdAt
            })
            callEvents.push({ type: "tool:call", messageId: base.messageId, toolCallId: call.id, name: call.name, args: value, approval })
            if (status === "pending") {
              callEvents.push({ type: "approval:requested", toolCallId: call.id, name: call.name, args: value, preview: previewOf(call.name, value) })
            }
          }
          yield* commit(chatId, {
            messages: [{ ...finished, status: "completed" }],
            blocks: [...parts.map((_, index) => partRecord(parts, index, "done")), ...callBlocks],
            events: [
              { type: "message:completed", messageId: base.messageId, status: "completed", text, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, costMicrocents: cost },
              costEvent,
              ...callEvents
            ]
          })
          return Continue
        })
      return { request, persist, complete }
    })

  return { prepareCall }
}

/**
 * The chat's tool hooks of `AgentLoop`: the first call of a tools step is run
 * through the chat's `DaemonRouter`, recorded as denied, or leaves the turn
 * waiting for the user's decision (`awaiting_approval`).
 */
import { Effect, Exit } from "effect"
import { AgentLoop, makeOutputForwarder, ModelCall } from "@relavium/core"
import type { DaemonRouter } from "@relavium/ports"
import type { ChatStorageError, UnknownChat } from "./ChatError.js"
import { approvalFor, policyFor, previewOf } from "./ChatTools.js"
import { nextStep, type Step, type ToolCallBlock } from "./Conversation.js"
import { callRecord, resultWrites } from "./Blocks.js"
import { type ChatContext, interruptedOutput, type Loaded, outcomeOf } from "./ChatContext.js"
import type { TurnOutcome } from "./ChatService.js"
import type { Views } from "./Views.js"

/** A tool call to settle, with the step it belongs to. */
export interface ChatToolCall {
  readonly step: Extract<Step, { readonly _tag: "Tools" }>
  readonly call: ToolCallBlock
}

type Errors = UnknownChat | ChatStorageError

export const makeToolRunner = ({ commit }: ChatContext, { loadMessages }: Views) => {
  /** The approval hook: the user decides; a call waiting for a decision pauses the turn. */
  const approve = (loaded: Loaded, { call, step }: ChatToolCall): Effect.Effect<AgentLoop.Decision<TurnOutcome>, Errors> =>
    Effect.gen(function* () {
      const chatId = loaded.record.chatId
      switch (call.status) {
        case "pending": {
          const waiting = step.calls.filter((c) => c.status === "pending")
          yield* commit(chatId, {
            turnStatus: "awaiting_approval",
            events: [{ type: "turn:paused", pending: waiting.map((c) => ({ toolCallId: c.toolCallId, name: c.name })) }]
          })
          const pending = waiting.map((c) => ({
            chatId,
            messageId: step.assistant.messageId,
            toolCallId: c.toolCallId,
            name: c.name,
            args: c.args,
            preview: previewOf(c.name, c.args)
          }))
          return AgentLoop.stop(outcomeOf(chatId, "awaiting_approval", { pending }))
        }
        case "denied":
          return AgentLoop.Deny
        case "ready":
        case "allowed": {
          if (call.status === "ready" && call.approval === "auto" && approvalFor(loaded.settings.approvalMode, call.name) === "required") {
            // The mode became stricter since the call was made (e.g. before a resume): it now waits.
            yield* commit(chatId, {
              blocks: [callRecord(step.assistant.messageId, { ...call, approval: "required" }, "pending")],
              events: [{ type: "approval:requested", toolCallId: call.toolCallId, name: call.name, args: call.args, preview: previewOf(call.name, call.args) }]
            })
            return AgentLoop.Settled
          }
          return AgentLoop.Run
        }
        case "running":
        case "done":
        case "interrupted": {
          // Only reachable if a turn was taken over without recovery: say so rather than run it twice.
          yield* commit(chatId, resultWrites(chatId, step, [{ call, outcome: "interrupted", output: interruptedOutput }]))
          return AgentLoop.Settled
        }
      }
    })

  const deny = (loaded: Loaded, { call, step }: ChatToolCall): Effect.Effect<void, Errors> => {
    const chatId = loaded.record.chatId
    const output = `denied by the user: ${call.name} was not run${call.decidedBy ? ` (decided by ${call.decidedBy})` : ""}. Do not retry it unchanged; ask the user or take another way.`
    return Effect.asVoid(commit(chatId, resultWrites(chatId, step, [{ call, outcome: "denied", output }])))
  }

  /**
   * Runs the call and stores its result. Gives back why, when the tools daemon could not be
   * reached (`tool_unavailable`): the result says so to the model, and the caller decides whether
   * the turn goes on.
   */
  const runTool = (loaded: Loaded, { call, step }: ChatToolCall, router: DaemonRouter["Type"]): Effect.Effect<string | undefined, Errors> =>
    Effect.gen(function* () {
      const chatId = loaded.record.chatId
      if (typeof call.args === "string") {
        const output = `the arguments of ${call.name} are not valid JSON; the tool was not run`
        yield* commit(chatId, resultWrites(chatId, step, [{ call, outcome: "error", output }]))
        return undefined
      }
      yield* commit(chatId, {
        blocks: [callRecord(step.assistant.messageId, call, "running")],
        events: [{ type: "tool:started", toolCallId: call.toolCallId, name: call.name }]
      })
      // What the tool prints while it runs: tool:output events before its tool:result.
      const live = yield* makeOutputForwarder((chunk) =>
        commit(chatId, { events: [{ type: "tool:output", toolCallId: call.toolCallId, stream: chunk.stream, text: chunk.text }] })
      )
      const result = yield* router
        .execute(
          {
            runId: chatId,
            nodeId: step.assistant.messageId,
            callId: call.toolCallId,
            name: call.name,
            args: call.args,
            policy: policyFor(call.name, call.args)
          },
          { onOutput: live.onOutput }
        )
        .pipe(
          Effect.onExit((exit) => (Exit.isInterrupted(exit) ? Effect.void : live.flush)),
          Effect.flatMap((r) =>
            Effect.map(ModelCall.toolOutput(r.output), (output) => ({ outcome: r.isError === true ? ("error" as const) : ("ok" as const), output }))
          ),
          Effect.catchAll((e) =>
            Effect.succeed({ outcome: "error" as const, output: `${e.code}: ${e.message}`, unavailable: e.code === "tool_unavailable" ? e.message : undefined })
          )
        )
      const fresh = yield* loadMessages(chatId).pipe(Effect.map(nextStep))
      yield* commit(chatId, resultWrites(chatId, fresh._tag === "Tools" ? fresh : step, [{ call, outcome: result.outcome, output: result.output }]))
      return "unavailable" in result ? result.unavailable : undefined
    })

  return { approve, deny, runTool }
}

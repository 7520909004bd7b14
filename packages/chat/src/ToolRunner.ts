/**
 * One tool step of a turn: the first call of the step is run through the
 * chat's `DaemonRouter`, recorded as denied, or leaves the turn waiting for a
 * decision (`awaiting_approval`).
 */
import { Effect } from "effect"
import { ModelCall } from "@relavium/core"
import type { DaemonRouter } from "@relavium/ports"
import { ChatStorageError, UnknownChat } from "./ChatError.js"
import { approvalFor, policyFor, previewOf } from "./ChatTools.js"
import { nextStep, type Step } from "./Conversation.js"
import { callRecord, resultWrites } from "./Blocks.js"
import { type ChatContext, Continue, interruptedOutput, type Loaded, outcomeOf } from "./ChatContext.js"
import type { TurnOutcome } from "./ChatService.js"
import type { Views } from "./Views.js"

export const makeToolRunner = ({ commit }: ChatContext, { loadMessages }: Views) => {
  /** Acts on the first call of a tools step: runs it, records its denial, or pauses the turn for a decision. */
  const toolStep = (
    loaded: Loaded,
    step: Extract<Step, { readonly _tag: "Tools" }>,
    router: DaemonRouter["Type"]
  ): Effect.Effect<Continue | TurnOutcome, UnknownChat | ChatStorageError> =>
    Effect.gen(function* () {
      const chatId = loaded.record.chatId
      const call = step.calls[0]!
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
          return outcomeOf(chatId, "awaiting_approval", { pending })
        }
        case "denied": {
          const output = `denied by the user: ${call.name} was not run${call.decidedBy ? ` (decided by ${call.decidedBy})` : ""}. Do not retry it unchanged; ask the user or take another way.`
          yield* commit(chatId, resultWrites(chatId, step, [{ call, outcome: "denied", output }]))
          return Continue
        }
        case "ready":
        case "allowed": {
          if (call.status === "ready" && call.approval === "auto" && approvalFor(loaded.settings.approvalMode, call.name) === "required") {
            // The mode became stricter since the call was made (e.g. before a resume): it now waits.
            yield* commit(chatId, {
              blocks: [callRecord(step.assistant.messageId, { ...call, approval: "required" }, "pending")],
              events: [{ type: "approval:requested", toolCallId: call.toolCallId, name: call.name, args: call.args, preview: previewOf(call.name, call.args) }]
            })
            return Continue
          }
          if (typeof call.args === "string") {
            const output = `the arguments of ${call.name} are not valid JSON; the tool was not run`
            yield* commit(chatId, resultWrites(chatId, step, [{ call, outcome: "error", output }]))
            return Continue
          }
          yield* commit(chatId, {
            blocks: [callRecord(step.assistant.messageId, call, "running")],
            events: [{ type: "tool:started", toolCallId: call.toolCallId, name: call.name }]
          })
          const result = yield* router
            .execute({
              runId: chatId,
              nodeId: step.assistant.messageId,
              callId: call.toolCallId,
              name: call.name,
              args: call.args,
              policy: policyFor(call.name, call.args)
            })
            .pipe(
              Effect.flatMap((r) =>
                Effect.map(ModelCall.toolOutput(r.output), (output) => ({ outcome: r.isError === true ? ("error" as const) : ("ok" as const), output }))
              ),
              Effect.catchAll((e) => Effect.succeed({ outcome: "error" as const, output: `${e.code}: ${e.message}` }))
            )
          const fresh = yield* loadMessages(chatId).pipe(Effect.map(nextStep))
          yield* commit(chatId, resultWrites(chatId, fresh._tag === "Tools" ? fresh : step, [{ call, ...result }]))
          return Continue
        }
        case "running":
        case "done":
        case "interrupted": {
          // Only reachable if a turn was taken over without recovery: say so rather than run it twice.
          yield* commit(chatId, resultWrites(chatId, step, [{ call, outcome: "interrupted", output: interruptedOutput }]))
          return Continue
        }
      }
    })

  return { toolStep }
}

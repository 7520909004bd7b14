/**
 * Claims and recovery. One process works on a chat's turn at a time: it claims
 * the turn in the store and refreshes a heartbeat; a claim whose process is
 * gone (same host, dead pid) or silent for 30 s is taken over, after the dead
 * turn is settled — a streaming answer keeps what was stored and becomes
 * `interrupted`, a running tool call gets an "interrupted" result.
 */
import { Clock, Effect, Option } from "effect"
import * as Fs from "node:fs"
import { type ChatRecord, type ContentBlockRecord, forOrg, type MessageWrite } from "@relavium/ports"
import type { ChatEventBody } from "./ChatEvent.js"
import { ChatBusy, ChatStorageError, UnknownChat } from "./ChatError.js"
import { nextStep, textOf } from "./Conversation.js"
import { resultWrites, writeOf } from "./Blocks.js"
import { CLAIM_TTL_MS, type ChatContext, clockNow, interruptedOutput, storage } from "./ChatContext.js"
import type { RecoveryReport } from "./ChatService.js"
import type { Views } from "./Views.js"

/** Whether a process with this pid runs on this host (a zombie, where /proc tells, counts as gone). */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z"
  } catch {
    return true
  }
}

export const makeRecovery = ({ commit, host, owner, store }: ChatContext, { loadMessages }: Views) => {
  /** Whether the record's claim may be taken over: no owner, a dead process on this host, or no heartbeat for `CLAIM_TTL_MS`. */
  const isStale = (record: ChatRecord): Effect.Effect<boolean> =>
    Effect.map(Clock.currentTimeMillis, (nowMs) => {
      if (record.turnOwner === undefined) return true
      if (record.turnOwner === owner) return false
      const [ownerHost, pidText] = record.turnOwner.split(":")
      const pid = Number(pidText)
      if (ownerHost === host && Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid)) return true
      const beat = record.turnHeartbeatAt === undefined ? 0 : Date.parse(record.turnHeartbeatAt)
      return nowMs - beat > CLAIM_TTL_MS
    })

  const release = (chatId: string) => store.releaseTurn(chatId, owner).pipe(Effect.ignore)

  /**
   * Claims the chat's turn for this process. A claim left by a dead process is
   * taken over, and the turn it was running is recovered first.
   */
  const claim = (record: ChatRecord): Effect.Effect<void, ChatBusy | UnknownChat | ChatStorageError> =>
    Effect.gen(function* () {
      if (record.turnOwner !== undefined && !(yield* isStale(record))) return yield* ChatBusy.of(record.chatId, record.turnOwner)
      const claimed = yield* storage(store.claimTurn(record.chatId, { owner, expectedOwner: record.turnOwner, at: yield* clockNow }))
      if (!claimed) return yield* ChatBusy.of(record.chatId, undefined)
      if (record.turnStatus === "running") {
        yield* settle(record.chatId, "the process answering this chat stopped (it was killed or crashed)").pipe(
          Effect.onError(() => release(record.chatId))
        )
      }
    })

  /**
   * Closes a turn whose process is gone: a streaming answer keeps what was
   * stored and becomes `interrupted`; a running tool call gets an
   * "interrupted" result. Does nothing unless the turn is still `running`.
   */
  const settle = (chatId: string, reason: string) =>
    Effect.gen(function* () {
      const record = yield* storage(store.getChat(chatId))
      if (Option.isNone(record) || record.value.turnStatus !== "running") return undefined
      const messages = yield* loadMessages(chatId)
      const messageWrites: Array<MessageWrite> = []
      const blocks: Array<ContentBlockRecord> = []
      const events: Array<ChatEventBody> = []
      let interruptedMessages = 0
      let interruptedToolCalls = 0
      const timestamp = yield* clockNow
      for (const message of messages) {
        if (message.status === "streaming") {
          interruptedMessages += 1
          messageWrites.push({ ...writeOf(chatId, message), status: "interrupted", updatedAt: timestamp })
          events.push({
            type: "message:completed",
            messageId: message.messageId,
            status: "interrupted",
            text: textOf(message),
            inputTokens: message.inputTokens,
            outputTokens: message.outputTokens,
            costMicrocents: message.costMicrocents
          })
        }
      }
      const step = nextStep(messages)
      if (step._tag === "Tools") {
        const running = step.calls.filter((c) => c.status === "running")
        if (running.length > 0) {
          const results = resultWrites(chatId, step, running.map((call) => ({ call, outcome: "interrupted" as const, output: interruptedOutput })))
          messageWrites.push(...results.messages)
          blocks.push(...results.blocks)
          events.push(...results.events)
          interruptedToolCalls = running.length
        }
      }
      events.push({ type: "turn:interrupted", reason })
      yield* commit(chatId, { turnStatus: "interrupted", messages: messageWrites, blocks, events })
      return { chatId, interruptedMessages, interruptedToolCalls }
    })

  const recover = (): Effect.Effect<RecoveryReport, ChatStorageError> =>
    Effect.gen(function* () {
      const candidates = yield* storage(store.chatsToRecover())
      const chats: Array<RecoveryReport["chats"][number]> = []
      for (const record of candidates) {
        // A multi-tenant store lists the chats of every org: each is recovered for its own.
        const one = recoverOne(record)
        const settled = yield* record.orgId === undefined ? one : forOrg(record.orgId)(one)
        if (settled !== undefined) chats.push(settled)
      }
      return { chats }
    })

  const recoverOne = (record: ChatRecord) =>
    Effect.gen(function* () {
        if (record.turnOwner !== undefined && !(yield* isStale(record))) return undefined
        const claimed = yield* storage(store.claimTurn(record.chatId, { owner, expectedOwner: record.turnOwner, at: yield* clockNow }))
        if (!claimed) return undefined
        return yield* settle(record.chatId, "the process answering this chat stopped (it was killed or crashed)").pipe(
          Effect.catchTag("UnknownChat", () => Effect.void),
          Effect.ensuring(release(record.chatId))
        )
    })

  return { isStale, release, claim, settle, recover }
}

export type Recovery = ReturnType<typeof makeRecovery>

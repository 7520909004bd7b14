/**
 * What every part of the chat service shares: its services, this process's
 * claim owner, and `commit` — a write to a chat and its numbered log in one
 * transaction, then published to live followers.
 */
import { Clock, Effect } from "effect"
import * as Os from "node:os"
import {
  type ChatEventRecord,
  ChatStore,
  type ChatRecord,
  type ContentBlockRecord,
  LlmProvider,
  type MessageWrite,
  ModelPricing,
  type ProjectRecord,
  type StoreError,
  type WorktreeRecord
} from "@relavium/ports"
import type { ChatEvent, ChatEventBody } from "./ChatEvent.js"
import { ChatStorageError, UnknownChat } from "./ChatError.js"
import { ChatHub } from "./ChatHub.js"
import type { ChatSettings } from "./ChatSettings.js"
import { ChatTools } from "./ChatTools.js"
import { ChatCancels, ChatTurnQueue } from "./TurnQueue.js"
import { Worktrees } from "./Worktrees.js"
import type { ChatServiceOptions, TurnOutcome } from "./ChatService.js"

/** How long a turn's claim stays valid without a heartbeat. */
export const CLAIM_TTL_MS = 30_000
export const HEARTBEAT = "10 seconds"

export const interruptedOutput =
  "interrupted: Relavium stopped while this tool was running (the process was killed or cancelled); it may have run partly or fully. Check the workspace before running it again."

export const now = () => new Date().toISOString()

/**
 * The time on the fiber's `Clock`, for what acts on time: claims, heartbeats and the staleness of
 * a claim, and the timestamps of chat events (a test moves it with `TestClock`).
 */
export const clockNow: Effect.Effect<string> = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

/** The chat, its settings, project, worktree and working directory. */
export interface Loaded {
  readonly record: ChatRecord
  readonly settings: ChatSettings
  readonly project: ProjectRecord
  readonly worktree: WorktreeRecord | undefined
  readonly workspace: string
}

/** A step of the turn is done and the loop goes on. */
export type Continue = { readonly _tag: "Continue" }
export const Continue: Continue = { _tag: "Continue" }

export const storage = <A, R>(effect: Effect.Effect<A, StoreError, R>): Effect.Effect<A, ChatStorageError, R> =>
  Effect.mapError(effect, (e) => new ChatStorageError({ message: e.message }))

export const toEvent = (record: ChatEventRecord): ChatEvent =>
  ({ type: record.type, chatId: record.chatId, seq: record.seq, timestamp: record.timestamp, ...(record.data as object) }) as ChatEvent

export const outcomeOf = (
  chatId: string,
  status: TurnOutcome["status"],
  extra: Partial<Pick<TurnOutcome, "answer" | "pending" | "error">> = {}
): TurnOutcome => ({ chatId, status, answer: extra.answer, pending: extra.pending ?? [], error: extra.error })

/** One write to a chat: its row, messages, blocks and events, all or nothing. */
export interface ChatWrite {
  readonly turnStatus?: ChatRecord["turnStatus"] | undefined
  readonly title?: string | undefined
  readonly settings?: ChatSettings | undefined
  readonly messages?: ReadonlyArray<MessageWrite> | undefined
  readonly blocks?: ReadonlyArray<ContentBlockRecord> | undefined
  readonly events?: ReadonlyArray<ChatEventBody> | undefined
}

export const makeChatContext = (options: ChatServiceOptions) =>
  Effect.gen(function* () {
    const store = yield* ChatStore
    const hub = yield* ChatHub
    const llm = yield* LlmProvider
    const pricing = yield* ModelPricing
    const tools = yield* ChatTools
    const worktrees = yield* Worktrees
    // With a turn queue (the distributed deployment) a claimed turn is handed to a worker.
    const turnQueue = yield* Effect.serviceOption(ChatTurnQueue)
    // And a turn running in another process is cancelled by a request it hears.
    const cancels = yield* Effect.serviceOption(ChatCancels)
    const serviceScope = yield* Effect.scope
    const host = Os.hostname()
    const owner = `${host}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`

    /** Writes to the chat and its log in one transaction, then publishes the events. */
    const commit = (chatId: string, write: ChatWrite): Effect.Effect<ReadonlyArray<ChatEvent>, UnknownChat | ChatStorageError> =>
      clockNow.pipe(
        Effect.flatMap((timestamp) =>
          store.commit(chatId, {
            updatedAt: timestamp,
            turnStatus: write.turnStatus,
            title: write.title,
            settings: write.settings,
            messages: write.messages,
            blocks: write.blocks,
            events: (write.events ?? []).map(({ type, ...data }) => ({ type, timestamp, data }))
          })
        ),
        Effect.mapError((e) => (e._tag === "ChatNotFound" ? UnknownChat.of(chatId) : new ChatStorageError({ message: e.message }))),
        Effect.map((records) => records.map(toEvent)),
        Effect.tap((events) => hub.publish(events))
      )

    return { options, store, hub, llm, pricing, tools, worktrees, turnQueue, cancels, serviceScope, host, owner, commit }
  })

export type ChatContext = Effect.Effect.Success<ReturnType<typeof makeChatContext>>

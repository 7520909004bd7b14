/**
 * The repository of coding-agent chats (the Reliant seed): projects (a
 * directory on the user's machine), worktree associations, chats, their
 * messages and content blocks, and each chat's numbered event log.
 *
 * A chat is written through `commit`: one transaction that upserts messages
 * and content blocks, moves the chat's turn status and appends events, which
 * the store numbers per chat (from 0, no gap). So what a follower replays from
 * the log and what `messages` returns never disagree. Message and block
 * contents are JSON the chat service owns; the store does not interpret them,
 * except for the few columns it queries (status, kind, call id, model, cost).
 */
import { Context, Data, Effect, Layer, Option } from "effect"
import type { Chat } from "@relavium/domain"
import type { StoreError } from "./RunStore.js"

export interface ProjectRecord {
  readonly projectId: string
  readonly name: string
  /** The absolute, resolved directory. */
  readonly rootPath: string
  /**
   * The dialed-in tools daemon (its name) whose workspace the project is: its chats' tools run
   * there, through a gateway. None: the tools run on the machine of the process running the turn.
   */
  readonly daemon?: string | undefined
  readonly createdAt: string
  readonly updatedAt: string
}

export type WorktreeStatus = Chat.WorktreeStatus

export interface WorktreeRecord {
  readonly worktreeId: string
  readonly projectId: string
  readonly path: string
  readonly branch: string
  readonly baseRef: string | undefined
  readonly status: WorktreeStatus
  readonly createdAt: string
  readonly updatedAt: string
}

/** Where a chat's current turn stands (`Chat.TurnStatus`; a dead owner's `running` turn: see `chatsToRecover`). */
export type TurnStatus = Chat.TurnStatus

/** A chat as stored (`Chat.ChatRecord` in @relavium/domain). */
export type ChatRecord = Chat.ChatRecord

export type MessageRole = Chat.MessageRole
export type MessageStatus = Chat.MessageStatus
export type BlockKind = Chat.BlockKind

export interface ContentBlockRecord {
  readonly blockId: string
  readonly messageId: string
  readonly position: number
  readonly kind: BlockKind
  /** For tool_call, tool_result and file_patch blocks: the model's tool call id. */
  readonly callId: string | undefined
  /** Kind-specific state (a tool call's approval and progress; a text block's streaming). */
  readonly status: string | undefined
  readonly content: unknown
  readonly createdAt: string
}

/** A message's row (`Chat.MessageWrite`). */
export type MessageWrite = Chat.MessageWrite

export interface MessageRecord extends MessageWrite {
  /** In position order. */
  readonly blocks: ReadonlyArray<ContentBlockRecord>
}

export interface ChatEventDraft {
  readonly type: string
  readonly timestamp: string
  /** The event's own fields (JSON). */
  readonly data: unknown
}

export interface ChatEventRecord extends ChatEventDraft {
  readonly chatId: string
  readonly seq: number
}

/** One transaction on a chat. */
export interface ChatWrite {
  readonly updatedAt: string
  readonly turnStatus?: TurnStatus | undefined
  readonly title?: string | undefined
  readonly model?: string | undefined
  readonly settings?: unknown
  /** Inserted, or (same id) updated: status, model, tokens, cost, updatedAt. */
  readonly messages?: ReadonlyArray<MessageWrite> | undefined
  /** Inserted, or (same id) updated: status and content. */
  readonly blocks?: ReadonlyArray<ContentBlockRecord> | undefined
  readonly events?: ReadonlyArray<ChatEventDraft> | undefined
}

/** Tokens and cost of one chat on one model. */
export interface ChatUsageRecord {
  readonly chatId: string
  readonly model: string
  readonly inputTokens: number
  readonly outputTokens: number
  readonly costMicrocents: number
  /** Model calls (assistant messages) counted. */
  readonly calls: number
}

/** A tool_call block whose status is `pending` (waiting for the user's decision). */
export interface PendingToolCallRecord {
  readonly chatId: string
  readonly message: MessageWrite
  readonly block: ContentBlockRecord
}

export class ChatNotFound extends Data.TaggedError("ChatNotFound")<{ readonly chatId: string }> {
  override get message() {
    return `no chat with id ${this.chatId}`
  }
}

export declare namespace ChatStore {
  export type Service = Context.Tag.Service<typeof ChatStore>
}

export class ChatStore extends Context.Tag("@relavium/ports/ChatStore")<
  ChatStore,
  {
    /** Stores a project; a project with the same root path (and daemon) is returned instead of a second one. */
    readonly putProject: (project: ProjectRecord) => Effect.Effect<ProjectRecord, StoreError>
    readonly getProject: (projectId: string) => Effect.Effect<Option.Option<ProjectRecord>, StoreError>
    readonly listProjects: () => Effect.Effect<ReadonlyArray<ProjectRecord>, StoreError>
    readonly getWorktree: (worktreeId: string) => Effect.Effect<Option.Option<WorktreeRecord>, StoreError>
    readonly setWorktreeStatus: (worktreeId: string, status: WorktreeStatus, at: string) => Effect.Effect<void, StoreError>
    /** Creates a chat (and its worktree association, in the same transaction) with its first events. */
    readonly createChat: (
      chat: ChatRecord,
      options?: { readonly worktree?: WorktreeRecord | undefined; readonly events?: ReadonlyArray<ChatEventDraft> | undefined }
    ) => Effect.Effect<ReadonlyArray<ChatEventRecord>, StoreError>
    readonly getChat: (chatId: string) => Effect.Effect<Option.Option<ChatRecord>, StoreError>
    /** Most recently updated first. */
    readonly listChats: (query?: {
      readonly projectId?: string | undefined
      readonly limit?: number | undefined
    }) => Effect.Effect<ReadonlyArray<ChatRecord>, StoreError>
    /** Writes messages, blocks and the chat row, and appends (numbering them) events, atomically. */
    readonly commit: (chatId: string, write: ChatWrite) => Effect.Effect<ReadonlyArray<ChatEventRecord>, StoreError | ChatNotFound>
    /** Every message of the chat with its blocks, in order. */
    readonly messages: (chatId: string) => Effect.Effect<ReadonlyArray<MessageRecord>, StoreError>
    /** Events after `afterSequenceNumber` (default: all), in order. */
    readonly events: (chatId: string, afterSequenceNumber?: number) => Effect.Effect<ReadonlyArray<ChatEventRecord>, StoreError>
    /** Tokens and cost per chat and model (of one chat, or of all), from the assistant messages. */
    readonly usage: (chatId?: string) => Effect.Effect<ReadonlyArray<ChatUsageRecord>, StoreError>
    /** Tool calls waiting for a decision (of one chat, or of all), in chat and message order. */
    readonly pendingToolCalls: (chatId?: string) => Effect.Effect<ReadonlyArray<PendingToolCallRecord>, StoreError>
    /**
     * Chats whose turn is `running`: a process works on them, or died doing so. A multi-tenant
     * store (Postgres) lists those of every org, each with its `orgId`: act on each for that org.
     */
    readonly chatsToRecover: () => Effect.Effect<ReadonlyArray<ChatRecord & { readonly orgId?: string | undefined }>, StoreError>
    /**
     * Makes `owner` the process working on the chat's turn if the current owner is still
     * `expectedOwner` (undefined: nobody). False when another process got there first.
     */
    readonly claimTurn: (
      chatId: string,
      claim: { readonly owner: string; readonly expectedOwner: string | undefined; readonly at: string }
    ) => Effect.Effect<boolean, StoreError>
    /** Refreshes the owner's heartbeat (nothing if it no longer owns the turn). */
    readonly heartbeat: (chatId: string, owner: string, at: string) => Effect.Effect<void, StoreError>
    /** Lets go of the turn (nothing if `owner` no longer owns it). */
    readonly releaseTurn: (chatId: string, owner: string) => Effect.Effect<void, StoreError>
  }
>() {
  /** Plain maps; each method runs synchronously, so each commit is atomic with respect to other fibers. */
  static readonly layerMemory: Layer.Layer<ChatStore> = Layer.sync(ChatStore, () => {
    const projects = new Map<string, ProjectRecord>()
    const worktrees = new Map<string, WorktreeRecord>()
    const chats = new Map<string, ChatRecord>()
    const messages = new Map<string, MessageWrite>()
    const blocks = new Map<string, ContentBlockRecord>()
    const events = new Map<string, Array<ChatEventRecord>>()

    const append = (chat: ChatRecord, drafts: ReadonlyArray<ChatEventDraft>) => {
      const log = events.get(chat.chatId) ?? []
      events.set(chat.chatId, log)
      const numbered = drafts.map((d, i) => ({ ...d, chatId: chat.chatId, seq: chat.lastSequenceNumber + 1 + i }))
      log.push(...numbered)
      return numbered
    }
    const messagesOf = (chatId: string): ReadonlyArray<MessageRecord> =>
      [...messages.values()]
        .filter((m) => m.chatId === chatId)
        .sort((a, b) => a.seq - b.seq)
        .map((m) => ({
          ...m,
          blocks: [...blocks.values()].filter((b) => b.messageId === m.messageId).sort((a, b) => a.position - b.position)
        }))

    return ChatStore.of({
      putProject: (project) =>
        Effect.sync(() => {
          const same = [...projects.values()].find((p) => p.rootPath === project.rootPath && p.daemon === project.daemon)
          if (same !== undefined) return same
          projects.set(project.projectId, project)
          return project
        }),
      getProject: (projectId) => Effect.sync(() => Option.fromNullable(projects.get(projectId))),
      listProjects: () => Effect.sync(() => [...projects.values()].sort((a, b) => compare(a.createdAt, b.createdAt))),
      getWorktree: (worktreeId) => Effect.sync(() => Option.fromNullable(worktrees.get(worktreeId))),
      setWorktreeStatus: (worktreeId, status, at) =>
        Effect.sync(() => {
          const worktree = worktrees.get(worktreeId)
          if (worktree !== undefined) worktrees.set(worktreeId, { ...worktree, status, updatedAt: at })
        }),
      createChat: (chat, options) =>
        Effect.sync(() => {
          if (options?.worktree !== undefined) worktrees.set(options.worktree.worktreeId, options.worktree)
          const numbered = append(chat, options?.events ?? [])
          chats.set(chat.chatId, { ...chat, lastSequenceNumber: chat.lastSequenceNumber + numbered.length })
          return numbered
        }),
      getChat: (chatId) => Effect.sync(() => Option.fromNullable(chats.get(chatId))),
      listChats: (query) =>
        Effect.sync(() =>
          [...chats.values()]
            .filter((c) => query?.projectId === undefined || c.projectId === query.projectId)
            .sort((a, b) => compare(b.updatedAt, a.updatedAt) || compare(b.chatId, a.chatId))
            .slice(0, query?.limit ?? Number.MAX_SAFE_INTEGER)
        ),
      commit: (chatId, write) =>
        Effect.suspend(() => {
          const chat = chats.get(chatId)
          if (chat === undefined) return Effect.fail(new ChatNotFound({ chatId }))
          for (const message of write.messages ?? []) {
            const before = messages.get(message.messageId)
            messages.set(message.messageId, before === undefined ? message : { ...message, seq: before.seq, createdAt: before.createdAt })
          }
          for (const block of write.blocks ?? []) {
            const before = blocks.get(block.blockId)
            blocks.set(block.blockId, before === undefined ? block : { ...before, status: block.status, content: block.content })
          }
          const numbered = append(chat, write.events ?? [])
          chats.set(chatId, {
            ...chat,
            updatedAt: write.updatedAt,
            lastSequenceNumber: chat.lastSequenceNumber + numbered.length,
            ...(write.turnStatus !== undefined ? { turnStatus: write.turnStatus } : {}),
            ...(write.title !== undefined ? { title: write.title } : {}),
            ...(write.model !== undefined ? { model: write.model } : {}),
            ...(write.settings !== undefined ? { settings: write.settings } : {})
          })
          return Effect.succeed(numbered)
        }),
      messages: (chatId) => Effect.sync(() => messagesOf(chatId)),
      events: (chatId, after = -1) => Effect.sync(() => (events.get(chatId) ?? []).filter((e) => e.seq > after)),
      usage: (chatId) =>
        Effect.sync(() => {
          const totals = new Map<string, { -readonly [K in keyof ChatUsageRecord]: ChatUsageRecord[K] }>()
          for (const m of messages.values()) {
            if (m.role !== "assistant" || m.model === undefined || (chatId !== undefined && m.chatId !== chatId)) continue
            const key = `${m.chatId}\u0000${m.model}`
            const total = totals.get(key) ?? { chatId: m.chatId, model: m.model, inputTokens: 0, outputTokens: 0, costMicrocents: 0, calls: 0 }
            total.inputTokens += m.inputTokens
            total.outputTokens += m.outputTokens
            total.costMicrocents += m.costMicrocents
            total.calls += 1
            totals.set(key, total)
          }
          return [...totals.values()].sort((a, b) => compare(a.chatId, b.chatId) || compare(a.model, b.model))
        }),
      pendingToolCalls: (chatId) =>
        Effect.sync(() =>
          [...chats.values()]
            .filter((c) => chatId === undefined || c.chatId === chatId)
            .sort((a, b) => compare(a.createdAt, b.createdAt) || compare(a.chatId, b.chatId))
            .flatMap((c) =>
              messagesOf(c.chatId).flatMap((m) =>
                m.blocks
                  .filter((b) => b.kind === "tool_call" && b.status === "pending")
                  .map((block) => ({ chatId: c.chatId, message: withoutBlocks(m), block }))
              )
            )
        ),
      chatsToRecover: () =>
        Effect.sync(() =>
          [...chats.values()].filter((c) => c.turnStatus === "running").sort((a, b) => compare(a.updatedAt, b.updatedAt))
        ),
      claimTurn: (chatId, claim) =>
        Effect.sync(() => {
          const chat = chats.get(chatId)
          if (chat === undefined || chat.turnOwner !== claim.expectedOwner) return false
          chats.set(chatId, { ...chat, turnOwner: claim.owner, turnHeartbeatAt: claim.at })
          return true
        }),
      heartbeat: (chatId, owner, at) =>
        Effect.sync(() => {
          const chat = chats.get(chatId)
          if (chat !== undefined && chat.turnOwner === owner) chats.set(chatId, { ...chat, turnHeartbeatAt: at })
        }),
      releaseTurn: (chatId, owner) =>
        Effect.sync(() => {
          const chat = chats.get(chatId)
          if (chat !== undefined && chat.turnOwner === owner) {
            chats.set(chatId, { ...chat, turnOwner: undefined, turnHeartbeatAt: undefined })
          }
        })
    })
  })
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

const withoutBlocks = ({ blocks: _blocks, ...message }: MessageRecord): MessageWrite => message

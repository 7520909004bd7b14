/**
 * The coding-agent chat of the Reliant seed: projects (a directory), chats
 * (optionally in their own git worktree), and turns — a user message and the
 * agent loop it starts: call the model with the conversation and the
 * project's tools, route each tool call through `DaemonRouter` (confined to the
 * chat's directory), feed the results back, stop at an answer without tool
 * calls. Everything a turn does is stored as it happens, so it survives a
 * crash and any process can continue it.
 *
 * ## Interface (what surfaces build on)
 *
 * - `createProject(dir)` → `ProjectInfo` (the same project for the same directory);
 *   `ProjectDirectoryNotFound` when `dir` does not exist.
 * - `createChat({ projectId, worktree?, model?, approvalMode?, tools?, systemPrompt?, title? })`
 *   → `ChatSummary`. `model` is `provider/model` (default `anthropic/claude-sonnet-4`),
 *   `approvalMode` `ask` (default) | `accept-edits` | `auto`. With `worktree: true` the
 *   chat works in a new `git worktree` on branch `relavium/chat-<id>`
 *   (`NotAGitRepository` otherwise; nothing is created).
 * - `send(chatId, text)` → `Turn`: returns once the user message is stored; the
 *   turn runs in the background (in the layer's scope). `turn.events` streams
 *   this turn's events and ends at its rest event; `turn.outcome` waits for it:
 *   `completed` (with the answer), `awaiting_approval` (with the pending calls),
 *   `failed` (with the error) or `interrupted`.
 * - `cancel(chatId)` stops the turn this process runs for the chat (Ctrl-C).
 * - `approve(chatId, toolCallId, "allow" | "deny")` records a decision (idempotent);
 *   it does not continue the turn: call `resume(chatId)` (→ `Turn`) once
 *   `pending` is empty. `resume` also continues a turn a crash interrupted or a
 *   model error failed; `NothingToResume` when the last answer is complete.
 * - `events(chatId, afterSeq?)`: every stored event after `afterSeq`, then the
 *   live tail, each once and in order; it does not end (take what you need).
 *   Use `seq` as the SSE event id.
 * - `list`, `get` (with messages, usage and pending approvals), `usage`,
 *   `pendingApprovals`, `setApprovalMode`, `removeWorktree`,
 *   `exportMarkdown`, `exportWorkflowYaml`, and `recover()` — call it once at
 *   start-up: chats whose process died mid-turn keep their partial answer
 *   (`interrupted`), a tool call that was running gets an explicit
 *   "interrupted" result; running it again changes nothing.
 *
 * Approval modes are fail-closed (see `ChatTools`): in `ask` every tool that
 * changes something waits; `accept-edits` runs file edits and asks for the
 * rest; `auto` runs everything. A waiting call is stored as `pending`, so it
 * survives a restart; a denied call gives the model an explicit "denied by the
 * user" result.
 *
 * One process works on a chat's turn at a time: it claims the turn in the
 * store and refreshes a heartbeat; a claim whose process is gone (same host,
 * dead pid) or silent for 30 s is taken over, after the dead turn is recovered.
 */
import { Cause, Context, Effect, Either, Exit, Fiber, Layer, Option, Schedule, Stream } from "effect"
import * as Os from "node:os"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { ModelCall } from "@relavium/core"
import { type ChatEventRecord, ChatStore, type ChatRecord, type ChatUsageRecord, type ContentBlockRecord, DaemonRouter, LlmProvider, type MessageWrite, ModelPricing, NumberedLog, type ProjectRecord, type StoreError, type WorktreeRecord } from "@relavium/ports"
import { Cost, Llm } from "@relavium/domain"
import { type ApprovalMode, type ChatEvent, type ChatEventBody, decodeChatEvent, isRest } from "./ChatEvent.js"
import {
  ApprovalRequired,
  ChatBusy,
  type ChatError,
  ChatStorageError,
  InvalidChatInput,
  NotAGitRepository,
  NothingToResume,
  ProjectDirectoryNotFound,
  ToolCallAlreadyDecided,
  UnknownChat,
  UnknownProject,
  UnknownToolCall,
  type WorktreeError,
  WorktreeRemoved
} from "./ChatError.js"
import * as ChatExport from "./ChatExport.js"
import { ChatHub } from "./ChatHub.js"
import { type ChatSettings, decodeSettings, defaultModel, defaultSystemPrompt, parseModel } from "./ChatSettings.js"
import { approvalFor, ChatTools, defaultTools, editTools, policyFor, previewOf } from "./ChatTools.js"
import {
  type ChatMessage,
  modelCallsInTurn,
  nextStep,
  type Step,
  textOf,
  toLlmMessages,
  toMessage,
  type ToolCallBlock,
  type ToolCallContent,
  type ToolCallStatus,
  toolCallsOf
} from "./Conversation.js"
import { Worktrees } from "./Worktrees.js"

// ---------------------------------------------------------------------------
// What the service returns

export interface ProjectInfo {
  readonly projectId: string
  readonly name: string
  readonly rootPath: string
  readonly createdAt: string
}

export interface WorktreeInfo {
  readonly worktreeId: string
  readonly path: string
  readonly branch: string
  readonly baseRef: string | undefined
  readonly status: "active" | "removed"
}

export interface ChatSummary {
  readonly chatId: string
  readonly title: string
  readonly projectId: string
  readonly projectPath: string
  /** The directory the chat's tools work in: the project, or its worktree. */
  readonly workspace: string
  readonly worktree: WorktreeInfo | undefined
  readonly provider: string
  readonly model: string
  readonly approvalMode: ApprovalMode
  readonly turnStatus: ChatRecord["turnStatus"]
  readonly pendingApprovals: number
  readonly costMicrocents: number
  /** The seq of the chat's last event: follow from here to see only what comes next. */
  readonly lastSequenceNumber: number
  readonly createdAt: string
  readonly updatedAt: string
}

export interface PendingApproval {
  readonly chatId: string
  readonly messageId: string
  readonly toolCallId: string
  readonly name: string
  readonly args: unknown
  readonly preview: string
}

export type ChatUsage = ChatUsageRecord

export interface ChatDetail extends ChatSummary {
  readonly systemPrompt: string
  readonly tools: ReadonlyArray<string>
  readonly messages: ReadonlyArray<ChatMessage>
  /** Tokens and cost per model. */
  readonly usage: ReadonlyArray<ChatUsage>
  readonly pending: ReadonlyArray<PendingApproval>
}

export interface TurnOutcome {
  readonly chatId: string
  readonly status: "completed" | "awaiting_approval" | "failed" | "interrupted"
  /** The final answer's text (completed turns). */
  readonly answer: string | undefined
  readonly pending: ReadonlyArray<PendingApproval>
  readonly error: { readonly code: string; readonly message: string } | undefined
}

export interface Turn {
  readonly chatId: string
  /** The seq of the last event before this turn's first one. */
  readonly afterSeq: number
  /** This turn's events, ending with its rest event (`turn:completed|paused|failed|interrupted`). */
  readonly events: Stream.Stream<ChatEvent, ChatError>
  readonly outcome: Effect.Effect<TurnOutcome, ChatError>
}

export interface RecoveryReport {
  readonly chats: ReadonlyArray<{
    readonly chatId: string
    readonly interruptedMessages: number
    readonly interruptedToolCalls: number
  }>
}

export interface CreateChatOptions {
  readonly projectId: string
  readonly worktree?: boolean | undefined
  /** `provider/model`. */
  readonly model?: string | undefined
  readonly approvalMode?: ApprovalMode | undefined
  readonly tools?: ReadonlyArray<string> | undefined
  readonly systemPrompt?: string | undefined
  readonly title?: string | undefined
}

export class ChatService extends Context.Tag("@relavium/chat/ChatService")<
  ChatService,
  {
    readonly createProject: (directory: string) => Effect.Effect<ProjectInfo, ProjectDirectoryNotFound | ChatStorageError>
    readonly listProjects: () => Effect.Effect<ReadonlyArray<ProjectInfo>, ChatStorageError>
    readonly createChat: (
      options: CreateChatOptions
    ) => Effect.Effect<ChatSummary, UnknownProject | NotAGitRepository | WorktreeError | InvalidChatInput | ChatStorageError>
    readonly list: (query?: {
      readonly projectId?: string | undefined
      readonly limit?: number | undefined
    }) => Effect.Effect<ReadonlyArray<ChatSummary>, ChatStorageError>
    readonly get: (chatId: string) => Effect.Effect<ChatDetail, UnknownChat | ChatStorageError>
    readonly send: (chatId: string, text: string) => Effect.Effect<Turn, ChatError>
    readonly resume: (chatId: string) => Effect.Effect<Turn, ChatError>
    /**
     * Stops the chat's turn if this process runs it: a streaming answer keeps what
     * arrived (`interrupted`), a running tool call is killed and gets an
     * "interrupted" result, the turn rests at `turn:interrupted`; `resume` goes on.
     * False when no turn of the chat runs here.
     */
    readonly cancel: (chatId: string) => Effect.Effect<boolean>
    readonly approve: (
      chatId: string,
      toolCallId: string,
      decision: "allow" | "deny",
      options?: { readonly decidedBy?: string | undefined }
    ) => Effect.Effect<{ readonly pending: ReadonlyArray<PendingApproval> }, UnknownChat | UnknownToolCall | ToolCallAlreadyDecided | ChatStorageError>
    readonly pendingApprovals: (chatId?: string) => Effect.Effect<ReadonlyArray<PendingApproval>, ChatStorageError>
    readonly setApprovalMode: (chatId: string, mode: ApprovalMode) => Effect.Effect<void, UnknownChat | ChatStorageError>
    readonly events: (chatId: string, afterSeq?: number) => Stream.Stream<ChatEvent, UnknownChat | ChatStorageError>
    readonly usage: (chatId?: string) => Effect.Effect<ReadonlyArray<ChatUsage>, ChatStorageError>
    readonly removeWorktree: (chatId: string) => Effect.Effect<void, UnknownChat | ChatBusy | InvalidChatInput | WorktreeError | ChatStorageError>
    readonly recover: () => Effect.Effect<RecoveryReport, ChatStorageError>
    readonly exportMarkdown: (chatId: string) => Effect.Effect<string, UnknownChat | ChatStorageError>
    readonly exportWorkflowYaml: (chatId: string) => Effect.Effect<string, UnknownChat | ChatStorageError>
  }
>() {}

export interface ChatServiceOptions {
  /** Where worktrees are created (default: `.relavium/worktrees` inside the project). */
  readonly worktreesDir?: string | undefined
  /** Model calls one turn may make before it fails with `turn_limit` (default 50). */
  readonly maxModelCallsPerTurn?: number | undefined
}

/** How long a turn's claim stays valid without a heartbeat. */
const CLAIM_TTL_MS = 30_000
const HEARTBEAT = "10 seconds"

const interruptedOutput =
  "interrupted: Relavium stopped while this tool was running (the process was killed or cancelled); it may have run partly or fully. Check the workspace before running it again."

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

const parseArgs = (argsJson: string): Option.Option<unknown> => {
  const args = ModelCall.parseArgs(argsJson)
  return args === undefined ? Option.none() : Option.some(args)
}

const slug = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40) || "project"

const titleOf = (text: string): string => {
  const line = text.trim().split("\n")[0] ?? ""
  return line.length > 60 ? `${line.slice(0, 59)}…` : line
}

/** The chat, its settings, project, worktree and working directory. */
interface Loaded {
  readonly record: ChatRecord
  readonly settings: ChatSettings
  readonly project: ProjectRecord
  readonly worktree: WorktreeRecord | undefined
  readonly workspace: string
}

type Continue = { readonly _tag: "Continue" }
const Continue: Continue = { _tag: "Continue" }

export const layer = (
  options: ChatServiceOptions = {}
): Layer.Layer<ChatService, never, ChatStore | ChatHub | LlmProvider | ModelPricing | ChatTools | Worktrees> =>
  Layer.scoped(ChatService, make(options))

export const make = (options: ChatServiceOptions = {}) =>
  Effect.gen(function* () {
    const store = yield* ChatStore
    const hub = yield* ChatHub
    const llm = yield* LlmProvider
    const pricing = yield* ModelPricing
    const tools = yield* ChatTools
    const worktrees = yield* Worktrees
    const serviceScope = yield* Effect.scope
    const host = Os.hostname()
    const owner = `${host}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`
    const maxModelCalls = options.maxModelCallsPerTurn ?? 50
    /** The turns this process runs, by chat (for `cancel`). */
    const running = new Map<string, Fiber.RuntimeFiber<TurnOutcome, UnknownChat | ChatStorageError>>()
    const now = () => new Date().toISOString()

    const storage = <A, R>(effect: Effect.Effect<A, StoreError, R>): Effect.Effect<A, ChatStorageError, R> =>
      Effect.mapError(effect, (e) => new ChatStorageError({ message: e.message }))

    const toEvent = (record: ChatEventRecord): ChatEvent =>
      ({ type: record.type, chatId: record.chatId, seq: record.seq, timestamp: record.timestamp, ...(record.data as object) }) as ChatEvent

    /** Writes to the chat and its log in one transaction, then publishes the events. */
    const commit = (
      chatId: string,
      write: {
        readonly turnStatus?: ChatRecord["turnStatus"] | undefined
        readonly title?: string | undefined
        readonly settings?: ChatSettings | undefined
        readonly messages?: ReadonlyArray<MessageWrite> | undefined
        readonly blocks?: ReadonlyArray<ContentBlockRecord> | undefined
        readonly events?: ReadonlyArray<ChatEventBody> | undefined
      }
    ): Effect.Effect<ReadonlyArray<ChatEvent>, UnknownChat | ChatStorageError> => {
      const timestamp = now()
      return store
        .commit(chatId, {
          updatedAt: timestamp,
          turnStatus: write.turnStatus,
          title: write.title,
          settings: write.settings,
          messages: write.messages,
          blocks: write.blocks,
          events: (write.events ?? []).map(({ type, ...data }) => ({ type, timestamp, data }))
        })
        .pipe(
          Effect.mapError((e) => (e._tag === "ChatNotFound" ? UnknownChat.of(chatId) : new ChatStorageError({ message: e.message }))),
          Effect.map((records) => records.map(toEvent)),
          Effect.tap((events) => hub.publish(events))
        )
    }

    // -------------------------------------------------------------------------
    // Reading

    const load = (chatId: string): Effect.Effect<Loaded, UnknownChat | ChatStorageError> =>
      Effect.gen(function* () {
        const record = yield* storage(store.getChat(chatId)).pipe(
          Effect.flatMap(Option.match({ onNone: () => Effect.fail(UnknownChat.of(chatId)), onSome: Effect.succeed }))
        )
        const settings = yield* Either.match(decodeSettings(record.settings), {
          onLeft: (e) => Effect.fail(new ChatStorageError({ message: `chat ${chatId} has unreadable settings: ${e.message}` })),
          onRight: Effect.succeed
        })
        const project = yield* storage(store.getProject(record.projectId)).pipe(
          Effect.flatMap(
            Option.match({
              onNone: () => Effect.fail(new ChatStorageError({ message: `chat ${chatId} belongs to a missing project ${record.projectId}` })),
              onSome: Effect.succeed
            })
          )
        )
        const worktree =
          record.worktreeId === undefined ? undefined : Option.getOrUndefined(yield* storage(store.getWorktree(record.worktreeId)))
        // A project may be a subdirectory of its repository: the same subdirectory of the worktree.
        const workspace = worktree === undefined ? project.rootPath : Path.join(worktree.path, settings.subdirectory ?? "")
        return { record, settings, project, worktree, workspace }
      })

    const loadMessages = (chatId: string): Effect.Effect<ReadonlyArray<ChatMessage>, ChatStorageError> =>
      storage(store.messages(chatId)).pipe(
        Effect.flatMap((records) =>
          Either.match(Either.all(records.map(toMessage)), {
            onLeft: (message) => Effect.fail(new ChatStorageError({ message: `chat ${chatId}: ${message}` })),
            onRight: Effect.succeed
          })
        )
      )

    const pendingOf = (chatId: string, messages: ReadonlyArray<ChatMessage>): ReadonlyArray<PendingApproval> =>
      messages.flatMap((m) =>
        toolCallsOf(m)
          .filter((c) => c.status === "pending")
          .map((c) => ({ chatId, messageId: m.messageId, toolCallId: c.toolCallId, name: c.name, args: c.args, preview: previewOf(c.name, c.args) }))
      )

    const summaryOf = (loaded: Loaded, pendingApprovals: number, costMicrocents: number): ChatSummary => ({
      chatId: loaded.record.chatId,
      title: loaded.record.title,
      projectId: loaded.project.projectId,
      projectPath: loaded.project.rootPath,
      workspace: loaded.workspace,
      worktree:
        loaded.worktree === undefined
          ? undefined
          : {
              worktreeId: loaded.worktree.worktreeId,
              path: loaded.worktree.path,
              branch: loaded.worktree.branch,
              baseRef: loaded.worktree.baseRef,
              status: loaded.worktree.status
            },
      provider: loaded.settings.provider,
      model: loaded.settings.model,
      approvalMode: loaded.settings.approvalMode,
      turnStatus: loaded.record.turnStatus,
      pendingApprovals,
      costMicrocents,
      lastSequenceNumber: loaded.record.lastSequenceNumber,
      createdAt: loaded.record.createdAt,
      updatedAt: loaded.record.updatedAt
    })

    const detailOf = (chatId: string): Effect.Effect<ChatDetail, UnknownChat | ChatStorageError> =>
      Effect.gen(function* () {
        const loaded = yield* load(chatId)
        const messages = yield* loadMessages(chatId)
        const usage = yield* storage(store.usage(chatId))
        const pending = pendingOf(chatId, messages)
        const cost = usage.reduce((sum, u) => sum + u.costMicrocents, 0)
        return {
          ...summaryOf(loaded, pending.length, cost),
          systemPrompt: loaded.settings.systemPrompt,
          tools: loaded.settings.tools,
          messages,
          usage,
          pending
        }
      })

    // -------------------------------------------------------------------------
    // Claiming a chat's turn

    const isStale = (record: ChatRecord): boolean => {
      if (record.turnOwner === undefined) return true
      if (record.turnOwner === owner) return false
      const [ownerHost, pidText] = record.turnOwner.split(":")
      const pid = Number(pidText)
      if (ownerHost === host && Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid)) return true
      const beat = record.turnHeartbeatAt === undefined ? 0 : Date.parse(record.turnHeartbeatAt)
      return Date.now() - beat > CLAIM_TTL_MS
    }

    const release = (chatId: string) => store.releaseTurn(chatId, owner).pipe(Effect.ignore)

    /**
     * Claims the chat's turn for this process. A claim left by a dead process is
     * taken over, and the turn it was running is recovered first.
     */
    const claim = (record: ChatRecord): Effect.Effect<void, ChatBusy | UnknownChat | ChatStorageError> =>
      Effect.gen(function* () {
        if (record.turnOwner !== undefined && !isStale(record)) return yield* ChatBusy.of(record.chatId, record.turnOwner)
        const claimed = yield* storage(store.claimTurn(record.chatId, { owner, expectedOwner: record.turnOwner, at: now() }))
        if (!claimed) return yield* ChatBusy.of(record.chatId, undefined)
        if (record.turnStatus === "running") {
          yield* settle(record.chatId, "the process answering this chat stopped (it was killed or crashed)").pipe(
            Effect.onError(() => release(record.chatId))
          )
        }
      })

    // -------------------------------------------------------------------------
    // Recovery

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
        const timestamp = now()
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
          if (record.turnOwner !== undefined && !isStale(record)) continue
          const claimed = yield* storage(store.claimTurn(record.chatId, { owner, expectedOwner: record.turnOwner, at: now() }))
          if (!claimed) continue
          const settled = yield* settle(record.chatId, "the process answering this chat stopped (it was killed or crashed)").pipe(
            Effect.catchTag("UnknownChat", () => Effect.void),
            Effect.ensuring(release(record.chatId))
          )
          if (settled !== undefined) chats.push(settled)
        }
        return { chats }
      })

    // -------------------------------------------------------------------------
    // Writing blocks

    const writeOf = (chatId: string, message: ChatMessage): MessageWrite => ({
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
    const freshMessage = (
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

    const callRecord = (messageId: string, call: ToolCallBlock, status: ToolCallStatus, content?: Partial<ToolCallContent>): ContentBlockRecord => ({
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
    const resultWrites = (
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

    // -------------------------------------------------------------------------
    // The turn

    const outcomeOf = (
      chatId: string,
      status: TurnOutcome["status"],
      extra: Partial<Pick<TurnOutcome, "answer" | "pending" | "error">> = {}
    ): TurnOutcome => ({ chatId, status, answer: extra.answer, pending: extra.pending ?? [], error: extra.error })

    const failTurn = (chatId: string, code: string, message: string) =>
      commit(chatId, { turnStatus: "failed", events: [{ type: "turn:failed", code, message }] }).pipe(
        Effect.as(outcomeOf(chatId, "failed", { error: { code, message } }))
      )

    /** One model call, streamed into an assistant message that is stored as it grows. */
    const callModel = (
      loaded: Loaded,
      messages: ReadonlyArray<ChatMessage>,
      toolDefs: ReadonlyArray<Llm.ToolDef>
    ): Effect.Effect<Continue | TurnOutcome, UnknownChat | ChatStorageError> =>
      Effect.gen(function* () {
        const chatId = loaded.record.chatId
        const { approvalMode, model, provider, systemPrompt } = loaded.settings
        const price = yield* pricing.priceOf(provider, model)
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
        const streamed = yield* ModelCall.stream(llm, request, (batch, parts) => {
          const events: Array<ChatEventBody> = []
          for (const item of batch.items) {
            if (item.type === "delta") {
              events.push({ type: item.kind === "text" ? "message:delta" : "reasoning:delta", messageId: base.messageId, text: item.text })
            }
          }
          return batch.touched.length === 0
            ? Effect.void
            : Effect.asVoid(commit(chatId, { blocks: batch.touched.map((index) => partRecord(parts, index, "streaming")), events }))
        })
        const parts = streamed.parts
        const calls = streamed.toolCalls
        const stop = streamed.failure === undefined ? { usage: streamed.usage, stopReason: streamed.stopReason } : { usage: streamed.usage }

        const usage = stop.usage
        const cost = Option.isSome(price) ? Cost.costOf(price.value, usage) : 0
        const spentBefore = messages.reduce((sum, m) => sum + m.costMicrocents, 0)
        const costEvent: ChatEventBody = {
          type: "cost:updated",
          provider,
          model,
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens,
          costMicrocents: cost,
          chatCostMicrocents: spentBefore + cost,
          priced: Option.isSome(price)
        }
        const text = streamed.text
        const failure = streamed.failure !== undefined
          ? ModelCall.llmFailure(streamed.failure)
          : stop.stopReason === "content_filter"
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
                Effect.flatMap((r) => Effect.map(ModelCall.toolOutput(r.output), (output) => ({ outcome: r.isError === true ? ("error" as const) : ("ok" as const), output }))),
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

    /** Runs the chat's turn until it rests. The caller holds the claim. */
    const runTurn = (chatId: string): Effect.Effect<TurnOutcome, UnknownChat | ChatStorageError> =>
      Effect.scoped(
        Effect.gen(function* () {
          yield* store.heartbeat(chatId, owner, now()).pipe(
            Effect.ignore,
            Effect.repeat(Schedule.spaced(HEARTBEAT)),
            Effect.interruptible,
            Effect.forkScoped
          )
          const loaded = yield* load(chatId)
          const router = yield* tools.router(loaded.workspace)
          const toolDefs = yield* router.tools(loaded.settings.tools).pipe(Effect.either)
          if (Either.isLeft(toolDefs)) return yield* failTurn(chatId, toolDefs.left.code, toolDefs.left.message)
          while (true) {
            const messages = yield* loadMessages(chatId)
            const step = nextStep(messages)
            if (step._tag === "Done") {
              yield* commit(chatId, { turnStatus: "idle", events: [{ type: "turn:completed", messageId: step.answer?.messageId }] })
              return outcomeOf(chatId, "completed", { answer: step.answer === undefined ? undefined : textOf(step.answer) })
            }
            if (step._tag === "CallModel" && modelCallsInTurn(messages) >= maxModelCalls) {
              return yield* failTurn(chatId, "turn_limit", `the agent made ${maxModelCalls} model calls in this turn without finishing; send a message to go on`)
            }
            const result = step._tag === "CallModel" ? yield* callModel(loaded, messages, toolDefs.right) : yield* toolStep(loaded, step, router)
            if (result !== Continue) return result as TurnOutcome
          }
        })
      )

    /** Starts the claimed turn in the background and hands back its events and outcome. */
    const drive = (chatId: string, afterSeq: number): Effect.Effect<Turn> =>
      Effect.gen(function* () {
        const fiber = yield* runTurn(chatId).pipe(
          Effect.catchAllDefect((defect) => failTurn(chatId, "internal", `the turn stopped on an internal error: ${Cause.pretty(Cause.die(defect))}`)),
          Effect.onInterrupt(() => settle(chatId, "the turn was cancelled").pipe(Effect.ignore)),
          Effect.ensuring(release(chatId)),
          Effect.forkIn(serviceScope)
        )
        running.set(chatId, fiber)
        const outcome = Fiber.await(fiber).pipe(
          Effect.flatMap((exit) =>
            Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause) ? Effect.succeed(outcomeOf(chatId, "interrupted")) : exit
          )
        )
        const events = follow(chatId, afterSeq).pipe(
          Stream.takeUntil(isRest),
          // A turn that fails before its rest event is stored ends the stream with its error.
          Stream.interruptWhen(Effect.zipRight(outcome, Effect.never))
        )
        return { chatId, afterSeq, events, outcome }
      })

    const ensureUsable = (loaded: Loaded) =>
      loaded.worktree !== undefined && loaded.worktree.status === "removed"
        ? Effect.fail(WorktreeRemoved.of(loaded.record.chatId, loaded.worktree.path))
        : Effect.void

    const send = (chatId: string, text: string): Effect.Effect<Turn, ChatError> =>
      Effect.gen(function* () {
        if (text.trim() === "") return yield* new InvalidChatInput({ message: "the message is empty" })
        const loaded = yield* load(chatId)
        yield* ensureUsable(loaded)
        yield* claim(loaded.record)
        return yield* Effect.gen(function* () {
          const messages = yield* loadMessages(chatId)
          const pending = pendingOf(chatId, messages)
          if (pending.length > 0) return yield* ApprovalRequired.of(chatId, pending)
          const timestamp = now()
          const message = freshMessage(chatId, (messages.at(-1)?.seq ?? -1) + 1, "user", "completed", timestamp)
          const started = yield* commit(chatId, {
            turnStatus: "running",
            title: loaded.record.title === "" ? titleOf(text) : undefined,
            messages: [message],
            blocks: [
              {
                blockId: crypto.randomUUID(),
                messageId: message.messageId,
                position: 0,
                kind: "text",
                callId: undefined,
                status: "done",
                content: { text },
                createdAt: timestamp
              }
            ],
            events: [{ type: "turn:started", turnId: crypto.randomUUID(), messageId: message.messageId, text }]
          })
          return yield* drive(chatId, started[0]!.seq - 1)
        }).pipe(Effect.onError(() => release(chatId)))
      })

    const resume = (chatId: string): Effect.Effect<Turn, ChatError> =>
      Effect.gen(function* () {
        const loaded = yield* load(chatId)
        yield* ensureUsable(loaded)
        yield* claim(loaded.record)
        return yield* Effect.gen(function* () {
          const messages = yield* loadMessages(chatId)
          const pending = pendingOf(chatId, messages)
          if (pending.length > 0) return yield* ApprovalRequired.of(chatId, pending)
          const step = nextStep(messages)
          if (step._tag === "Done") {
            return yield* new NothingToResume({
              chatId,
              message: `chat ${chatId} has nothing to continue: ${step.answer === undefined ? "it has no messages" : "its last answer is complete"}; send a message`
            })
          }
          const started = yield* commit(chatId, { turnStatus: "running", events: [{ type: "turn:resumed", turnId: crypto.randomUUID() }] })
          return yield* drive(chatId, started[0]!.seq - 1)
        }).pipe(Effect.onError(() => release(chatId)))
      })

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

    const follow = (chatId: string, after = -1): Stream.Stream<ChatEvent, UnknownChat | ChatStorageError> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          yield* storage(store.getChat(chatId)).pipe(Effect.filterOrFail(Option.isSome, () => UnknownChat.of(chatId)))
          const read = (afterSeq: number) =>
            storage(store.events(chatId, afterSeq)).pipe(
              Effect.map((records) =>
                records.flatMap((r) => {
                  const decoded = Either.try(() => decodeChatEvent(toEvent(r)))
                  // Events of a type this build does not know are skipped (a newer writer).
                  return Either.isRight(decoded) ? [decoded.right] : []
                })
              )
            )
          return NumberedLog.follow({ subscribe: hub.subscribe(chatId), read, seqOf: (event) => event.seq }, after)
        })
      )

    const createProject = (directory: string): Effect.Effect<ProjectInfo, ProjectDirectoryNotFound | ChatStorageError> =>
      Effect.gen(function* () {
        const absolute = Path.resolve(directory)
        const stat = yield* Effect.sync(() => Fs.statSync(absolute, { throwIfNoEntry: false }))
        if (stat === undefined) return yield* ProjectDirectoryNotFound.of(absolute, "missing")
        if (!stat.isDirectory()) return yield* ProjectDirectoryNotFound.of(absolute, "not_a_directory")
        const rootPath = yield* Effect.sync(() => Fs.realpathSync(absolute))
        const timestamp = now()
        const project = yield* storage(
          store.putProject({ projectId: crypto.randomUUID(), name: Path.basename(rootPath) || rootPath, rootPath, createdAt: timestamp, updatedAt: timestamp })
        )
        return { projectId: project.projectId, name: project.name, rootPath: project.rootPath, createdAt: project.createdAt }
      })

    const createChat = (
      chatOptions: CreateChatOptions
    ): Effect.Effect<ChatSummary, UnknownProject | NotAGitRepository | WorktreeError | InvalidChatInput | ChatStorageError> =>
      Effect.gen(function* () {
        const project = yield* storage(store.getProject(chatOptions.projectId)).pipe(
          Effect.flatMap(Option.match({ onNone: () => Effect.fail(UnknownProject.of(chatOptions.projectId)), onSome: Effect.succeed }))
        )
        const { model, provider } = yield* parseModel(chatOptions.model ?? defaultModel)
        const toolNames = chatOptions.tools ?? defaultTools
        const chatId = crypto.randomUUID()
        const timestamp = now()
        let worktree: WorktreeRecord | undefined
        let subdirectory: string | undefined
        if (chatOptions.worktree === true) {
          const repository = yield* worktrees.repositoryOf(project.rootPath)
          if (Option.isNone(repository)) return yield* NotAGitRepository.of(project.rootPath)
          const root = yield* Effect.sync(() => Fs.realpathSync(repository.value))
          const base = options.worktreesDir !== undefined
            ? Path.join(options.worktreesDir, `${slug(project.name)}-${project.projectId.slice(0, 8)}`)
            : Path.join(project.rootPath, ".relavium", "worktrees")
          const path = Path.join(base, chatId)
          const branch = `relavium/chat-${chatId.slice(0, 8)}`
          const { baseRef } = yield* worktrees.add({ repository: root, path, branch })
          subdirectory = Path.relative(root, project.rootPath)
          worktree = { worktreeId: crypto.randomUUID(), projectId: project.projectId, path, branch, baseRef, status: "active", createdAt: timestamp, updatedAt: timestamp }
        }
        const settings = {
          provider,
          model,
          approvalMode: chatOptions.approvalMode ?? "ask",
          tools: [...toolNames],
          systemPrompt: chatOptions.systemPrompt ?? defaultSystemPrompt,
          ...(subdirectory !== undefined && subdirectory !== "" ? { subdirectory } : {})
        }
        const record: ChatRecord = {
          chatId,
          projectId: project.projectId,
          worktreeId: worktree?.worktreeId,
          title: chatOptions.title ?? "",
          model,
          settings,
          turnStatus: "idle",
          turnOwner: undefined,
          turnHeartbeatAt: undefined,
          lastSequenceNumber: -1,
          createdAt: timestamp,
          updatedAt: timestamp
        }
        const workspace = worktree === undefined ? project.rootPath : Path.join(worktree.path, subdirectory ?? "")
        const created: ChatEventBody = {
          type: "chat:created",
          projectId: project.projectId,
          workspace,
          ...(worktree !== undefined ? { worktree: { path: worktree.path, branch: worktree.branch } } : {}),
          provider,
          model,
          approvalMode: settings.approvalMode
        }
        const events = yield* storage(
          store.createChat(record, { worktree, events: [{ type: created.type, timestamp, data: Object.fromEntries(Object.entries(created).filter(([k]) => k !== "type")) }] })
        ).pipe(
          // Nothing is left behind: a worktree made for a chat that could not be stored is removed.
          Effect.tapError(() =>
            worktree === undefined ? Effect.void : worktrees.remove({ repository: project.rootPath, path: worktree.path, deleteBranch: worktree.branch }).pipe(Effect.ignore)
          )
        )
        yield* hub.publish(events.map(toEvent))
        const loaded = yield* load(chatId).pipe(Effect.catchTag("UnknownChat", (e) => Effect.die(e)))
        return summaryOf(loaded, 0, 0)
      })

    const list = (query?: { readonly projectId?: string | undefined; readonly limit?: number | undefined }) =>
      Effect.gen(function* () {
        const records = yield* storage(store.listChats(query))
        const usage = yield* storage(store.usage())
        const pending = yield* storage(store.pendingToolCalls())
        const summaries: Array<ChatSummary> = []
        for (const record of records) {
          const loaded = yield* load(record.chatId).pipe(Effect.catchTag("UnknownChat", () => Effect.void))
          if (loaded === undefined) continue
          summaries.push(
            summaryOf(
              loaded,
              pending.filter((p) => p.chatId === record.chatId).length,
              usage.filter((u) => u.chatId === record.chatId).reduce((sum, u) => sum + u.costMicrocents, 0)
            )
          )
        }
        return summaries
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

    const removeWorktree = (chatId: string) =>
      Effect.gen(function* () {
        const loaded = yield* load(chatId)
        const worktree = loaded.worktree
        if (worktree === undefined) return yield* new InvalidChatInput({ message: `chat ${chatId} has no worktree` })
        if (worktree.status === "removed") return
        if (loaded.record.turnOwner !== undefined && !isStale(loaded.record)) return yield* ChatBusy.of(chatId, loaded.record.turnOwner)
        yield* worktrees.remove({ repository: loaded.project.rootPath, path: worktree.path })
        yield* storage(store.setWorktreeStatus(worktree.worktreeId, "removed", now()))
        yield* commit(chatId, { events: [{ type: "worktree:removed", path: worktree.path, branch: worktree.branch }] })
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

    return ChatService.of({
      createProject,
      listProjects: () =>
        storage(store.listProjects()).pipe(
          Effect.map((projects) => projects.map((p) => ({ projectId: p.projectId, name: p.name, rootPath: p.rootPath, createdAt: p.createdAt })))
        ),
      createChat,
      list,
      get: detailOf,
      send,
      resume,
      cancel: (chatId) =>
        Effect.suspend(() => {
          const fiber = running.get(chatId)
          if (fiber === undefined || fiber.unsafePoll() !== null) {
            running.delete(chatId)
            return Effect.succeed(false)
          }
          return Effect.as(Fiber.interrupt(fiber), true)
        }),
      approve,
      pendingApprovals,
      setApprovalMode,
      events: follow,
      usage: (chatId) => storage(store.usage(chatId)),
      removeWorktree,
      recover,
      exportMarkdown: (chatId) => Effect.map(detailOf(chatId), ChatExport.markdown),
      exportWorkflowYaml: (chatId) => Effect.map(detailOf(chatId), ChatExport.workflowYaml)
    })
  })

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
 * - `createProject(dir, { daemon? })` → `ProjectInfo` (the same project for the same directory);
 *   `ProjectDirectoryNotFound` when `dir` does not exist. With `daemon` the project is the
 *   workspace of that dialed-in tools daemon (`dir` names it, on the daemon's machine, and is not
 *   checked here): its chats' tools run there through a gateway, and a message is refused with
 *   `DaemonNotConnected` while the daemon is not connected.
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
 * - `cancel(chatId)` stops the turn this process runs for the chat (Ctrl-C); with
 *   `ChatCancels` (the distributed deployment) it asks the process running it.
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
 *
 * Where a turn runs is the layers' choice (TurnQueue.ts): in the process that
 * claimed it, or — with a `ChatTurnQueue` — on a worker that takes the claim
 * over from a `ChatTurn` job (`runTurnJob`); the caller then follows the turn
 * from the log and the hub.
 */
import { Context, Effect, Layer, type Stream } from "effect"
import type { ChatRecord, ChatTurnJob, ChatUsageRecord, LlmProvider, ModelPricing, ChatStore } from "@relavium/ports"
import type { Chat } from "@relavium/domain"
import type { ApprovalMode, ChatEvent } from "./ChatEvent.js"
import type {
  ChatBusy,
  ChatError,
  ChatStorageError,
  InvalidChatInput,
  NotAGitRepository,
  ProjectDirectoryNotFound,
  ToolCallAlreadyDecided,
  UnknownChat,
  UnknownProject,
  UnknownToolCall,
  WorktreeError
} from "./ChatError.js"
import * as ChatExport from "./ChatExport.js"
import type { ChatHub } from "./ChatHub.js"
import { makeApprovals } from "./Approvals.js"
import { makeChatContext, storage } from "./ChatContext.js"
import { makeChats } from "./Chats.js"
import type { ChatTools } from "./ChatTools.js"
import type { ChatMessage } from "./Conversation.js"
import { makeFollow } from "./Follow.js"
import { makeRecovery } from "./Recovery.js"
import { makeTurns } from "./Turn.js"
import { makeViews } from "./Views.js"
import type { Worktrees } from "./Worktrees.js"

// ---------------------------------------------------------------------------
// What the service returns

export interface ProjectInfo {
  readonly projectId: string
  readonly name: string
  readonly rootPath: string
  /** The dialed-in tools daemon whose workspace the project is. */
  readonly daemon?: string | undefined
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

export type PendingApproval = Chat.PendingApproval

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
    readonly createProject: (
      directory: string,
      options?: { readonly daemon?: string | undefined }
    ) => Effect.Effect<ProjectInfo, ProjectDirectoryNotFound | ChatStorageError>
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
    /**
     * Runs a `ChatTurn` job a worker took from the queue (the distributed deployment, see
     * TurnQueue.ts): takes the turn's claim over from the process that handed it on and runs the
     * turn until it rests. Never fails: what goes wrong is in the chat's log.
     */
    readonly runTurnJob: (job: ChatTurnJob) => Effect.Effect<void>
  }
>() {}

export interface ChatServiceOptions {
  /** Where worktrees are created (default: `.relavium/worktrees` inside the project). */
  readonly worktreesDir?: string | undefined
  /** Model calls one turn may make before it fails with `turn_limit` (default 50). */
  readonly maxModelCallsPerTurn?: number | undefined
}

export const layer = (
  options: ChatServiceOptions = {}
): Layer.Layer<ChatService, never, ChatStore | ChatHub | LlmProvider | ModelPricing | ChatTools | Worktrees> =>
  Layer.scoped(ChatService, make(options))

export const make = (options: ChatServiceOptions = {}) =>
  Effect.gen(function* () {
    const ctx = yield* makeChatContext(options)
    const views = makeViews(ctx)
    const recovery = makeRecovery(ctx, views)
    const follow = makeFollow(ctx)
    const turns = makeTurns(ctx, views, recovery, follow)
    const approvals = makeApprovals(ctx, views)
    const chats = makeChats(ctx, views, recovery)
    yield* turns.listen

    return ChatService.of({
      createProject: chats.createProject,
      listProjects: chats.listProjects,
      createChat: chats.createChat,
      list: chats.list,
      get: views.detailOf,
      send: turns.send,
      resume: turns.resume,
      cancel: turns.cancel,
      approve: approvals.approve,
      pendingApprovals: approvals.pendingApprovals,
      setApprovalMode: approvals.setApprovalMode,
      events: follow.follow,
      usage: (chatId) => storage(ctx.store.usage(chatId)),
      removeWorktree: chats.removeWorktree,
      recover: recovery.recover,
      exportMarkdown: (chatId) => Effect.map(views.detailOf(chatId), ChatExport.markdown),
      exportWorkflowYaml: (chatId) => Effect.map(views.detailOf(chatId), ChatExport.workflowYaml),
      runTurnJob: turns.runTurnJob
    })
  })

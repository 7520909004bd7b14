/**
 * Reading a chat: its record with settings, project and worktree (`Loaded`),
 * its messages, pending approvals, and the summary and detail views the
 * service returns.
 */
import { Effect, Either, Option } from "effect"
import * as Path from "node:path"
import { ChatStorageError, UnknownChat } from "./ChatError.js"
import { decodeSettings } from "./ChatSettings.js"
import { previewOf } from "./ChatTools.js"
import { type ChatMessage, toMessage, toolCallsOf } from "./Conversation.js"
import { type ChatContext, type Loaded, storage } from "./ChatContext.js"
import type { ChatDetail, ChatSummary, PendingApproval } from "./ChatService.js"

export const pendingOf = (chatId: string, messages: ReadonlyArray<ChatMessage>): ReadonlyArray<PendingApproval> =>
  messages.flatMap((m) =>
    toolCallsOf(m)
      .filter((c) => c.status === "pending")
      .map((c) => ({ chatId, messageId: m.messageId, toolCallId: c.toolCallId, name: c.name, args: c.args, preview: previewOf(c.name, c.args) }))
  )

export const summaryOf = (loaded: Loaded, pendingApprovals: number, costMicrocents: number): ChatSummary => ({
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

export const makeViews = ({ store }: ChatContext) => {
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

  return { load, loadMessages, detailOf }
}

export type Views = ReturnType<typeof makeViews>

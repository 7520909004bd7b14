/**
 * The chat routes of `MonolithApi` on `ChatService`: projects, chats,
 * messages (the turn runs in the server), approvals (the last decision
 * continues the turn), resume, cancel, export, and the chat's events over SSE
 * (`seq` as the event id, resumed after `Last-Event-ID`).
 *
 * Chat errors map to statuses at this boundary: unknown chat, project or tool
 * call → 404; a directory that is missing, or not a git repository when a
 * worktree is asked, and other bad input → 400 (located where the body says
 * which field); a chat that is busy or waits for a decision → 409.
 *
 * Tool call decisions are written to the audit trail (Audit.ts).
 */
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { type ChatError, type ChatEvent, ChatService, encodeChatEventJson } from "@relavium/chat"
import { BadRequest, Conflict, InternalError, MonolithApi, NotFound } from "./Api.js"
import { callerActor, makeAudit } from "./Audit.js"
import { checkProjectDirectory, type ProjectDirectoryOptions } from "./ProjectDirs.js"
import { formatMessage, type SseOptions, sseResponse } from "./Sse.js"

/** The API's answer to a chat error: what went wrong and, where it helps, what to do over the API. */
export const fromChatError = (e: ChatError): BadRequest | NotFound | Conflict | InternalError => {
  switch (e._tag) {
    case "UnknownChat":
      return new NotFound({ message: `no chat with id ${e.chatId} (GET /chats lists them)` })
    case "UnknownProject":
      return new NotFound({ message: `${e.message} (GET /projects lists them)` })
    case "UnknownToolCall":
      return new NotFound({ message: `${e.message} (GET /chats/${e.chatId} shows the calls waiting for a decision)` })
    case "ProjectDirectoryNotFound":
      return new BadRequest({ message: e.message, issues: [{ path: "dir", message: e.message }] })
    case "NotAGitRepository":
      return new BadRequest({ message: e.message, issues: [{ path: "worktree", message: e.message }] })
    case "InvalidChatInput":
      return new BadRequest({ message: e.message })
    case "ApprovalRequired":
      return new Conflict({
        message: `chat ${e.chatId} waits for a decision on ${e.pending.map((p) => `${p.name} (${p.toolCallId})`).join(", ")}: POST /chats/${e.chatId}/approvals/${e.pending[0]?.toolCallId ?? "{toolCallId}"} with {"decision":"allow"} or {"decision":"deny"}`
      })
    case "ChatBusy":
    case "ToolCallAlreadyDecided":
    case "NothingToResume":
    case "WorktreeRemoved":
      return new Conflict({ message: e.message })
    case "WorktreeError":
    case "ChatStorageError":
      return new InternalError({ message: `${e._tag}: ${e.message}` })
  }
}

const formatChatEvent = (event: ChatEvent): string => formatMessage(event.seq, event.type, encodeChatEventJson(event))

const refusedDirectory = (message: string) => new BadRequest({ message, issues: [{ path: "dir", message }] })

export const layer = (options: SseOptions & ProjectDirectoryOptions = {}) =>
  HttpApiBuilder.group(MonolithApi, "chats", (handlers) =>
    Effect.gen(function* () {
      const chats = yield* ChatService
      const audit = yield* makeAudit
      return handlers
        .handle("createProject", ({ payload }) => {
          const checked = checkProjectDirectory(payload.dir, options)
          if (checked._tag === "Refused") return Effect.fail(refusedDirectory(checked.message))
          return chats.createProject(checked.path).pipe(
            Effect.map(({ createdAt, name, projectId, rootPath }) => ({ projectId, name, rootPath, createdAt })),
            Effect.mapError(fromChatError)
          )
        })
        .handle("listProjects", () =>
          chats.listProjects().pipe(
            Effect.map((projects) => projects.map(({ createdAt, name, projectId, rootPath }) => ({ projectId, name, rootPath, createdAt }))),
            Effect.mapError(fromChatError)
          )
        )
        .handle("create", ({ payload }) =>
          chats
            .createChat({
              projectId: payload.projectId,
              worktree: payload.worktree,
              model: payload.model,
              approvalMode: payload.approvalMode,
              title: payload.title
            })
            .pipe(Effect.mapError(fromChatError))
        )
        .handle("list", ({ urlParams }) =>
          chats.list({ projectId: urlParams.projectId, limit: urlParams.limit ?? 50 }).pipe(Effect.mapError(fromChatError))
        )
        .handle("get", ({ path }) => chats.get(path.chatId).pipe(Effect.mapError(fromChatError)))
        .handle("send", ({ path, payload }) =>
          // The turn runs in the chat service's scope; the request ends once the message is stored.
          chats.send(path.chatId, payload.text).pipe(
            Effect.map((turn) => ({ chatId: turn.chatId, afterSeq: turn.afterSeq })),
            Effect.mapError(fromChatError)
          )
        )
        .handle("approve", ({ path, payload }) =>
          Effect.gen(function* () {
            const decidedBy = yield* callerActor
            const { pending } = yield* chats.approve(path.chatId, path.toolCallId, payload.decision, { decidedBy })
            yield* audit("chat.approval", path.chatId, { toolCallId: path.toolCallId, decision: payload.decision })
            const decided = { chatId: path.chatId, toolCallId: path.toolCallId, decision: payload.decision, pending }
            if (pending.length > 0) return { ...decided, resumed: false }
            // The last decision continues the turn; a repeated decision finds it running or done already.
            return yield* chats.resume(path.chatId).pipe(
              Effect.map((turn) => ({ ...decided, resumed: true, afterSeq: turn.afterSeq })),
              Effect.catchTags({
                NothingToResume: () => Effect.succeed({ ...decided, resumed: false }),
                ChatBusy: () => Effect.succeed({ ...decided, resumed: false })
              })
            )
          }).pipe(Effect.mapError(fromChatError))
        )
        .handle("resume", ({ path }) =>
          chats.resume(path.chatId).pipe(
            Effect.map((turn) => ({ chatId: turn.chatId, afterSeq: turn.afterSeq })),
            Effect.mapError(fromChatError)
          )
        )
        .handle("cancel", ({ path }) =>
          Effect.gen(function* () {
            yield* chats.get(path.chatId)
            const cancelled = yield* chats.cancel(path.chatId)
            return { chatId: path.chatId, cancelled }
          }).pipe(Effect.mapError(fromChatError))
        )
        .handleRaw("export", ({ path, urlParams }) =>
          (urlParams.format === "yaml"
            ? Effect.map(chats.exportWorkflowYaml(path.chatId), (yaml) => HttpServerResponse.text(yaml, { contentType: "application/yaml" }))
            : Effect.map(chats.exportMarkdown(path.chatId), (markdown) => HttpServerResponse.text(markdown, { contentType: "text/markdown" }))
          ).pipe(Effect.mapError(fromChatError))
        )
        .handleRaw("events", ({ headers, path, urlParams }) =>
          Effect.gen(function* () {
            // Unknown chats are a 404 before the stream starts (after that, the status is sent).
            yield* chats.get(path.chatId)
            // A reconnecting EventSource keeps its URL, so Last-Event-ID wins over `?after=`.
            const after = headers["last-event-id"] ?? urlParams.after ?? -1
            return yield* sseResponse(chats.events(path.chatId, after), formatChatEvent, options)
          }).pipe(Effect.mapError(fromChatError))
        )
    })
  )

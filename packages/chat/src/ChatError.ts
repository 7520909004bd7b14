/**
 * What can go wrong when a user works with chats. Each error says what went
 * wrong, where, and what to do; each is a Schema class so it crosses the HTTP
 * API unchanged. When a call fails with one of these, nothing was changed.
 */
import { Schema } from "effect"

/** The project directory does not exist or is not a directory. */
export class ProjectDirectoryNotFound extends Schema.TaggedError<ProjectDirectoryNotFound>()("ProjectDirectoryNotFound", {
  directory: Schema.String,
  message: Schema.String
}) {
  static of(directory: string, reason: "missing" | "not_a_directory") {
    return new ProjectDirectoryNotFound({
      directory,
      message:
        reason === "missing"
          ? `the project directory ${directory} does not exist; create it or pass another directory`
          : `${directory} is not a directory; a project is a directory`
    })
  }
}

export class UnknownProject extends Schema.TaggedError<UnknownProject>()("UnknownProject", {
  projectId: Schema.String,
  message: Schema.String
}) {
  static of(projectId: string) {
    return new UnknownProject({ projectId, message: `no project with id ${projectId}` })
  }
}

export class UnknownChat extends Schema.TaggedError<UnknownChat>()("UnknownChat", {
  chatId: Schema.String,
  message: Schema.String
}) {
  static of(chatId: string) {
    return new UnknownChat({ chatId, message: `no chat with id ${chatId} (see \`relavium chat list\`)` })
  }
}

/** A worktree was asked for a project that is not a git repository (or has no commit to branch from). */
export class NotAGitRepository extends Schema.TaggedError<NotAGitRepository>()("NotAGitRepository", {
  directory: Schema.String,
  message: Schema.String
}) {
  static of(directory: string, detail?: string) {
    return new NotAGitRepository({
      directory,
      message: `${directory} is not a git repository${detail ? ` (${detail})` : ""}: a chat in its own worktree needs one; run \`git init\` and commit, or create the chat without a worktree`
    })
  }
}

export class WorktreeError extends Schema.TaggedError<WorktreeError>()("WorktreeError", {
  message: Schema.String
}) {}

export class InvalidChatInput extends Schema.TaggedError<InvalidChatInput>()("InvalidChatInput", {
  message: Schema.String
}) {}

/** Another process (or fiber) is working on the chat's turn right now. */
export class ChatBusy extends Schema.TaggedError<ChatBusy>()("ChatBusy", {
  chatId: Schema.String,
  message: Schema.String
}) {
  static of(chatId: string, owner: string | undefined) {
    return new ChatBusy({
      chatId,
      message: `chat ${chatId} is busy: ${owner ? `another process (${owner}) is` : "a turn is"} answering it right now; wait until it finishes`
    })
  }
}

export const PendingCall = Schema.Struct({ toolCallId: Schema.String, name: Schema.String })

/** Tool calls wait for a decision; nothing else can happen in the chat before it. */
export class ApprovalRequired extends Schema.TaggedError<ApprovalRequired>()("ApprovalRequired", {
  chatId: Schema.String,
  pending: Schema.Array(PendingCall),
  message: Schema.String
}) {
  static of(chatId: string, pending: ReadonlyArray<{ readonly toolCallId: string; readonly name: string }>) {
    const calls = pending.map((p) => `${p.name} (${p.toolCallId})`).join(", ")
    return new ApprovalRequired({
      chatId,
      pending,
      message: `chat ${chatId} waits for a decision on ${pending.length === 1 ? "a tool call" : `${pending.length} tool calls`}: ${calls}; decide with \`relavium chat approve ${chatId} ${pending[0]?.toolCallId ?? "CALL"} --allow|--deny\``
    })
  }
}

export class UnknownToolCall extends Schema.TaggedError<UnknownToolCall>()("UnknownToolCall", {
  chatId: Schema.String,
  toolCallId: Schema.String,
  message: Schema.String
}) {
  static of(chatId: string, toolCallId: string) {
    return new UnknownToolCall({ chatId, toolCallId, message: `chat ${chatId} has no tool call ${toolCallId}` })
  }
}

/** The tool call was decided already, the other way (or has run). */
export class ToolCallAlreadyDecided extends Schema.TaggedError<ToolCallAlreadyDecided>()("ToolCallAlreadyDecided", {
  chatId: Schema.String,
  toolCallId: Schema.String,
  message: Schema.String
}) {}

export class NothingToResume extends Schema.TaggedError<NothingToResume>()("NothingToResume", {
  chatId: Schema.String,
  message: Schema.String
}) {}

/** The chat's worktree was removed; the chat can be read and exported, not continued. */
export class WorktreeRemoved extends Schema.TaggedError<WorktreeRemoved>()("WorktreeRemoved", {
  chatId: Schema.String,
  message: Schema.String
}) {
  static of(chatId: string, path: string) {
    return new WorktreeRemoved({
      chatId,
      message: `chat ${chatId} worked in the worktree ${path}, which was removed; start a new chat to continue`
    })
  }
}

/** The chat's project works in a dialed-in tools daemon that is not connected to a gateway now. */
export class DaemonNotConnected extends Schema.TaggedError<DaemonNotConnected>()("DaemonNotConnected", {
  chatId: Schema.String,
  daemon: Schema.String,
  message: Schema.String
}) {
  static of(chatId: string, daemon: string, detail: string) {
    return new DaemonNotConnected({
      chatId,
      daemon,
      message: `chat ${chatId} works in the workspace of tools daemon '${daemon}', which is not connected (${detail}); start it with \`relavium daemon start --gateway URL --token T --name ${daemon}\`, then send again`
    })
  }
}

/** The database failed (see the message for which and why). */
export class ChatStorageError extends Schema.TaggedError<ChatStorageError>()("ChatStorageError", {
  message: Schema.String
}) {}

export type ChatError =
  | ProjectDirectoryNotFound
  | UnknownProject
  | UnknownChat
  | NotAGitRepository
  | WorktreeError
  | InvalidChatInput
  | ChatBusy
  | ApprovalRequired
  | UnknownToolCall
  | ToolCallAlreadyDecided
  | NothingToResume
  | WorktreeRemoved
  | DaemonNotConnected
  | ChatStorageError

/**
 * Projects and chats: a project is a directory (the same project for the same
 * directory); a chat works in its project or in a git worktree of its own,
 * which `removeWorktree` takes away once no turn runs.
 */
import { Effect, Option } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { ChatRecord, ProjectRecord, WorktreeRecord } from "@relavium/ports"
import type { ChatEventBody } from "./ChatEvent.js"
import {
  ChatBusy,
  ChatStorageError,
  InvalidChatInput,
  NotAGitRepository,
  ProjectDirectoryNotFound,
  UnknownProject,
  type WorktreeError
} from "./ChatError.js"
import { defaultModel, defaultSystemPrompt, parseModel } from "./ChatSettings.js"
import { defaultTools } from "./ChatTools.js"
import { type ChatContext, now, storage, toEvent } from "./ChatContext.js"
import type { ChatSummary, CreateChatOptions, ProjectInfo } from "./ChatService.js"
import type { Recovery } from "./Recovery.js"
import { summaryOf, type Views } from "./Views.js"

const slug = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40) || "project"

export const makeChats = ({ commit, hub, options, store, worktrees }: ChatContext, { load }: Views, { isStale }: Recovery) => {
  const infoOf = (p: ProjectRecord): ProjectInfo => ({
    projectId: p.projectId,
    name: p.name,
    rootPath: p.rootPath,
    ...(p.daemon !== undefined ? { daemon: p.daemon } : {}),
    createdAt: p.createdAt
  })

  const createProject = (
    directory: string,
    projectOptions: { readonly daemon?: string | undefined } = {}
  ): Effect.Effect<ProjectInfo, ProjectDirectoryNotFound | ChatStorageError> =>
    Effect.gen(function* () {
      const daemon = projectOptions.daemon
      if (daemon !== undefined) {
        // The directory is on the daemon's machine: this process cannot look at it.
        const rootPath = Path.posix.normalize(directory)
        const timestamp = now()
        const project = yield* storage(
          store.putProject({ projectId: crypto.randomUUID(), name: Path.posix.basename(rootPath) || rootPath, rootPath, daemon, createdAt: timestamp, updatedAt: timestamp })
        )
        return infoOf(project)
      }
      const absolute = Path.resolve(directory)
      const stat = yield* Effect.sync(() => Fs.statSync(absolute, { throwIfNoEntry: false }))
      if (stat === undefined) return yield* ProjectDirectoryNotFound.of(absolute, "missing")
      if (!stat.isDirectory()) return yield* ProjectDirectoryNotFound.of(absolute, "not_a_directory")
      const rootPath = yield* Effect.sync(() => Fs.realpathSync(absolute))
      const timestamp = now()
      const project = yield* storage(
        store.putProject({ projectId: crypto.randomUUID(), name: Path.basename(rootPath) || rootPath, rootPath, createdAt: timestamp, updatedAt: timestamp })
      )
      return infoOf(project)
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
      if (chatOptions.worktree === true && project.daemon !== undefined) {
        return yield* new InvalidChatInput({
          message: `project ${project.projectId} is the workspace of tools daemon '${project.daemon}': a chat there cannot have its own worktree`
        })
      }
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

  const removeWorktree = (chatId: string) =>
    Effect.gen(function* () {
      const loaded = yield* load(chatId)
      const worktree = loaded.worktree
      if (worktree === undefined) return yield* new InvalidChatInput({ message: `chat ${chatId} has no worktree` })
      if (worktree.status === "removed") return
      if (loaded.record.turnOwner !== undefined && !(yield* isStale(loaded.record))) return yield* ChatBusy.of(chatId, loaded.record.turnOwner)
      yield* worktrees.remove({ repository: loaded.project.rootPath, path: worktree.path })
      yield* storage(store.setWorktreeStatus(worktree.worktreeId, "removed", now()))
      yield* commit(chatId, { events: [{ type: "worktree:removed", path: worktree.path, branch: worktree.branch }] })
    })

  const listProjects = () =>
    storage(store.listProjects()).pipe(
      Effect.map((projects) => projects.map(infoOf))
    )

  return { createProject, listProjects, createChat, list, removeWorktree }
}

/**
 * The must-show: a scripted model edits files in a real temporary git
 * repository through the real tools daemon, in the chat's own worktree, with
 * approvals in each mode — `ask` (pending, then allowed: the file changes;
 * denied: the file does not, and the model is told), `accept-edits` and `auto`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Stream } from "effect"
import { answer, scriptedModel, toolCall } from "../../core/test/harness.js"
import { ChatService, type ChatEvent } from "../src/index.js"
import { chatLayer, gitOutput, gitRepo, read, turnOf } from "./support.js"

const types = (events: Iterable<ChatEvent>) => [...events].map((e) => e.type)

describe("approvals in a worktree, through the real daemon", () => {
  it.live("ask: an edit waits as pending, runs once allowed, and the worktree (not the project) changes", () => {
    const model = scriptedModel([
      toolCall("call-edit", "edit_file", { path: "src/sum.js", old_string: "i <= values.length", new_string: "i < values.length" }),
      answer("Fixed the off-by-one in src/sum.js.")
    ])
    const repo = gitRepo({ "src/sum.js": "for (let i = 0; i <= values.length; i++) total += values[i]\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId, worktree: true, model: "anthropic/claude-sonnet-4", approvalMode: "ask" })
      assert.isDefined(created.worktree)
      const worktree = created.worktree!.path
      assert.strictEqual(created.workspace, worktree)
      assert.strictEqual(gitOutput(worktree, "rev-parse", "--abbrev-ref", "HEAD"), created.worktree!.branch)

      const turn = yield* chat.send(created.chatId, "Fix the loop bound in src/sum.js")
      const seen = yield* turn.events.pipe(Stream.runCollect)
      const paused = yield* turn.outcome
      assert.strictEqual(paused.status, "awaiting_approval")
      assert.deepStrictEqual(paused.pending.map((p) => [p.toolCallId, p.name]), [["call-edit", "edit_file"]])
      assert.deepStrictEqual(types(seen), [
        "turn:started",
        "message:started",
        "message:completed",
        "cost:updated",
        "tool:call",
        "approval:requested",
        "turn:paused"
      ])
      assert.include(read(worktree, "src/sum.js"), "i <= values.length")
      // The pending call is stored: any process sees it.
      assert.deepStrictEqual((yield* chat.pendingApprovals(created.chatId)).map((p) => p.preview), ["edit_file: src/sum.js"])
      assert.strictEqual((yield* chat.get(created.chatId)).turnStatus, "awaiting_approval")

      const decided = yield* chat.approve(created.chatId, "call-edit", "allow", { decidedBy: "ada" })
      assert.deepStrictEqual(decided.pending, [])
      const done = yield* turnOf(chat.resume(created.chatId))
      assert.strictEqual(done.status, "completed")
      assert.strictEqual(done.answer, "Fixed the off-by-one in src/sum.js.")
      assert.include(read(worktree, "src/sum.js"), "i < values.length")
      assert.include(read(repo, "src/sum.js"), "i <= values.length")
      assert.strictEqual(gitOutput(repo, "status", "--porcelain"), "")

      // The model got the tool's result with the second call.
      const second = model.requests[1]!
      const last = second.messages.at(-1)!
      assert.strictEqual(last.role, "tool")
      assert.deepInclude(last.content[0], { type: "tool_result", id: "call-edit", isError: false })

      const detail = yield* chat.get(created.chatId)
      assert.deepStrictEqual(detail.messages.map((m) => `${m.role}:${m.blocks.map((b) => b.kind).join("+")}`), [
        "user:text",
        "assistant:tool_call",
        "tool:tool_result+file_patch",
        "assistant:text"
      ])
      const call = detail.messages[1]!.blocks[0]!
      assert.deepInclude(call, { kind: "tool_call", status: "done", decision: "allow", decidedBy: "ada", approval: "required" })
      const patch = detail.messages[2]!.blocks[1]!
      assert.deepInclude(patch, { kind: "file_patch", path: "src/sum.js", operation: "edit", oldString: "i <= values.length", newString: "i < values.length" })
      assert.strictEqual(detail.turnStatus, "idle")
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })

  it.live("ask: a denied edit is not run, the model is told it was denied, and the chat goes on", () => {
    const model = scriptedModel([
      toolCall("call-write", "write_file", { path: "README.md", content: "overwritten\n" }),
      answer("Understood, I left README.md as it is."),
      answer("Yes, README.md still says hello.")
    ])
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId, worktree: true, approvalMode: "ask" })
      const paused = yield* turnOf(chat.send(created.chatId, "Replace the README"))
      assert.strictEqual(paused.status, "awaiting_approval")
      yield* chat.approve(created.chatId, "call-write", "deny")
      // Deciding again the same way changes nothing; the other way is refused.
      yield* chat.approve(created.chatId, "call-write", "deny")
      const refused = yield* Effect.flip(chat.approve(created.chatId, "call-write", "allow"))
      assert.strictEqual(refused._tag, "ToolCallAlreadyDecided")

      const turn = yield* chat.resume(created.chatId)
      const seen = yield* turn.events.pipe(Stream.runCollect)
      const done = yield* turn.outcome
      assert.strictEqual(done.status, "completed")
      const result = [...seen].find((e) => e.type === "tool:result")
      assert.deepInclude(result, { toolCallId: "call-write", outcome: "denied" })
      assert.strictEqual(read(created.workspace, "README.md"), "hello\n")

      const toModel = model.requests[1]!.messages.at(-1)!
      assert.strictEqual(toModel.role, "tool")
      const part = toModel.content[0] as { type: string; result: unknown; isError?: boolean }
      assert.strictEqual(part.isError, true)
      assert.include(String(part.result), "denied by the user")

      // Consistent: the next message is answered normally, with the denial in the history.
      const next = yield* turnOf(chat.send(created.chatId, "Is the README unchanged?"))
      assert.strictEqual(next.answer, "Yes, README.md still says hello.")
      const roles = model.requests[2]!.messages.map((m) => m.role)
      assert.deepStrictEqual(roles, ["user", "assistant", "tool", "assistant", "user"])
      const detail = yield* chat.get(created.chatId)
      assert.deepInclude(detail.messages[1]!.blocks[0]!, { kind: "tool_call", status: "denied", decision: "deny" })
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })

  it.live("ask: read-only tools run without asking", () => {
    const model = scriptedModel([toolCall("call-read", "read_file", { path: "notes.txt" }), answer("The notes say: ship it.")])
    const repo = gitRepo({ "notes.txt": "ship it\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId, approvalMode: "ask" })
      assert.strictEqual(created.workspace, repo)
      const done = yield* turnOf(chat.send(created.chatId, "What do the notes say?"))
      assert.strictEqual(done.status, "completed")
      const toModel = model.requests[1]!.messages.at(-1)!
      assert.include(String((toModel.content[0] as { result: unknown }).result), "ship it")
      const detail = yield* chat.get(created.chatId)
      assert.deepInclude(detail.messages[1]!.blocks[0]!, { kind: "tool_call", approval: "none", status: "done" })
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })

  it.live("accept-edits: file edits run at once; a command still waits for approval", () => {
    const model = scriptedModel([
      toolCall("call-write", "write_file", { path: "CHANGELOG.md", content: "- fixed the loop\n" }),
      toolCall("call-commit", "git_commit", { message: "Add a changelog" }),
      answer("Wrote and committed the changelog.")
    ])
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId, worktree: true, approvalMode: "accept-edits" })
      const paused = yield* turnOf(chat.send(created.chatId, "Add a changelog entry and commit it"))
      assert.strictEqual(read(created.workspace, "CHANGELOG.md"), "- fixed the loop\n")
      assert.strictEqual(paused.status, "awaiting_approval")
      assert.deepStrictEqual(paused.pending.map((p) => p.name), ["git_commit"])
      yield* chat.approve(created.chatId, "call-commit", "allow")
      const done = yield* turnOf(chat.resume(created.chatId))
      assert.strictEqual(done.status, "completed")
      assert.strictEqual(gitOutput(created.workspace, "log", "-1", "--format=%s"), "Add a changelog")
      // The commit is on the chat's branch, not on the project's.
      assert.strictEqual(gitOutput(repo, "log", "-1", "--format=%s"), "initial")
      assert.isFalse(Fs.existsSync(Path.join(repo, "CHANGELOG.md")))
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })

  it.live("auto: edits and commands run without asking", () => {
    const model = scriptedModel([
      toolCall("call-edit", "edit_file", { path: "VERSION", old_string: "1.0.0", new_string: "1.1.0" }),
      toolCall("call-branch", "run_command", { command: "git", args: ["rev-parse", "--abbrev-ref", "HEAD"] }),
      answer("Bumped the version on the chat's branch.")
    ])
    const repo = gitRepo({ VERSION: "1.0.0\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId, worktree: true, approvalMode: "auto" })
      const turn = yield* chat.send(created.chatId, "Bump the minor version")
      const seen = yield* turn.events.pipe(Stream.runCollect)
      const done = yield* turn.outcome
      assert.strictEqual(done.status, "completed")
      assert.notInclude(types(seen), "approval:requested")
      assert.strictEqual(read(created.workspace, "VERSION"), "1.1.0\n")
      const commandResult = [...seen].find((e) => e.type === "tool:result" && e.toolCallId === "call-branch")
      assert.deepInclude(commandResult, { outcome: "ok" })
      assert.include((commandResult as { output: string }).output, created.worktree!.branch)
      const patch = [...seen].find((e) => e.type === "file:patch")
      assert.deepInclude(patch, { path: "VERSION", operation: "edit" })
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })

  it.live("switching the mode applies to the next tool calls", () => {
    const model = scriptedModel([toolCall("call-1", "write_file", { path: "a.txt", content: "a\n" }), answer("done")])
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId, approvalMode: "ask" })
      yield* chat.setApprovalMode(created.chatId, "accept-edits")
      const done = yield* turnOf(chat.send(created.chatId, "write a"))
      assert.strictEqual(done.status, "completed")
      assert.strictEqual(read(repo, "a.txt"), "a\n")
      assert.strictEqual((yield* chat.get(created.chatId)).approvalMode, "accept-edits")
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })
})

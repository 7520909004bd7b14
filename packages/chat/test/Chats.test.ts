/**
 * Bad input gives a tagged error with a clear message and changes nothing;
 * worktrees are created and removed by Relavium; a chat exports as Markdown
 * and as a workflow that parses, with secrets stripped.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Either, Option } from "effect"
import { ChatStore } from "@relavium/ports"
import { WorkflowYaml } from "@relavium/domain"
import { answer, scriptedModel, toolCall } from "../../core/test/harness.js"
import { ChatService } from "../src/index.js"
import { chatLayer, gitOutput, gitRepo, tempDir, turnOf } from "./support.js"

describe("bad input", () => {
  it.live("a project directory that does not exist, or is a file", () =>
    Effect.gen(function* () {
      const chat = yield* ChatService
      const missing = Path.join(tempDir(), "nope")
      const error = yield* Effect.flip(chat.createProject(missing))
      assert.strictEqual(error._tag, "ProjectDirectoryNotFound")
      assert.strictEqual(error.message, `the project directory ${missing} does not exist; create it or pass another directory`)
      const file = Path.join(tempDir(), "file.txt")
      Fs.writeFileSync(file, "x")
      assert.include((yield* Effect.flip(chat.createProject(file))).message, "is not a directory")
      assert.deepStrictEqual(yield* chat.listProjects(), [])
    }).pipe(Effect.provide(chatLayer({ model: scriptedModel([]).layer }))))

  it.live("a worktree for a directory that is not a git repository: a clear error, nothing created", () => {
    const worktreesDir = tempDir("relavium-worktrees-")
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const plain = tempDir("relavium-plain-")
      const project = yield* chat.createProject(plain)
      const error = yield* Effect.flip(chat.createChat({ projectId: project.projectId, worktree: true }))
      assert.strictEqual(error._tag, "NotAGitRepository")
      assert.include(error.message, `${plain} is not a git repository`)
      assert.include(error.message, "create the chat without a worktree")
      assert.deepStrictEqual(yield* chat.list(), [])
      assert.deepStrictEqual(Fs.readdirSync(worktreesDir), [])
      assert.deepStrictEqual(Fs.readdirSync(plain), [])
      // Without a worktree the same project is fine.
      const created = yield* chat.createChat({ projectId: project.projectId })
      assert.strictEqual(created.workspace, plain)
    }).pipe(Effect.provide(chatLayer({ model: scriptedModel([]).layer, worktreesDir })))
  })

  it.live("unknown chats, tool calls and models; empty messages; a message while approvals wait", () => {
    const model = scriptedModel([toolCall("call-1", "write_file", { path: "x.txt", content: "x" })])
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const store = yield* ChatStore
      const unknown = yield* Effect.flip(chat.send("no-such-chat", "hello"))
      assert.strictEqual(unknown._tag, "UnknownChat")
      assert.strictEqual(unknown.message, "no chat with id no-such-chat (see `relavium chat list`)")
      assert.strictEqual((yield* Effect.flip(chat.get("no-such-chat")))._tag, "UnknownChat")
      assert.strictEqual((yield* Effect.flip(chat.approve("no-such-chat", "call-1", "allow")))._tag, "UnknownChat")
      assert.strictEqual((yield* Effect.flip(chat.resume("no-such-chat")))._tag, "UnknownChat")
      assert.strictEqual((yield* Effect.flip(chat.exportMarkdown("no-such-chat")))._tag, "UnknownChat")
      assert.strictEqual((yield* Effect.flip(chat.createChat({ projectId: "no-such-project" })))._tag, "UnknownProject")

      const project = yield* chat.createProject(repo)
      const badModel = yield* Effect.flip(chat.createChat({ projectId: project.projectId, model: "claude" }))
      assert.strictEqual(badModel._tag, "InvalidChatInput")
      assert.include(badModel.message, "must be provider/model")
      assert.include((yield* Effect.flip(chat.createChat({ projectId: project.projectId, model: "acme/x" }))).message, "unknown provider 'acme'")
      assert.deepStrictEqual(yield* chat.list(), [])

      const created = yield* chat.createChat({ projectId: project.projectId, approvalMode: "ask" })
      assert.strictEqual((yield* Effect.flip(chat.send(created.chatId, "   ")))._tag, "InvalidChatInput")
      const paused = yield* turnOf(chat.send(created.chatId, "write x"))
      assert.strictEqual(paused.status, "awaiting_approval")
      const before = (yield* chat.get(created.chatId)).lastSequenceNumber

      const waiting = yield* Effect.flip(chat.send(created.chatId, "and another thing"))
      assert.strictEqual(waiting._tag, "ApprovalRequired")
      assert.include(waiting.message, `relavium chat approve ${created.chatId} call-1 --allow|--deny`)
      assert.strictEqual((yield* Effect.flip(chat.resume(created.chatId)))._tag, "ApprovalRequired")
      const noCall = yield* Effect.flip(chat.approve(created.chatId, "call-404", "allow"))
      assert.strictEqual(noCall._tag, "UnknownToolCall")
      assert.strictEqual(noCall.message, `chat ${created.chatId} has no tool call call-404`)

      // Nothing changed: same log, same messages, the claim released.
      const after = yield* chat.get(created.chatId)
      assert.strictEqual(after.lastSequenceNumber, before)
      assert.strictEqual(after.messages.length, 2)
      assert.isUndefined(Option.getOrThrow(yield* store.getChat(created.chatId).pipe(Effect.orDie)).turnOwner)
      assert.isFalse(Fs.existsSync(Path.join(repo, "x.txt")))
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })

  it.live("resume of a chat whose last answer is complete says there is nothing to continue", () => {
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId })
      yield* turnOf(chat.send(created.chatId, "hi"))
      const error = yield* Effect.flip(chat.resume(created.chatId))
      assert.strictEqual(error._tag, "NothingToResume")
      assert.include(error.message, "its last answer is complete; send a message")
    }).pipe(Effect.provide(chatLayer({ model: scriptedModel([answer("hello")]).layer })))
  })

  it.live("a model error fails the turn with the provider's message; resume asks again", () => {
    const repo = gitRepo({ "README.md": "hello\n" })
    const model = scriptedModel([
      [{ type: "text_delta", text: "Let me" }, { type: "error", error: { kind: "overloaded", retryable: true, provider: "anthropic", message: "overloaded, try later" } }],
      answer("Recovered answer.")
    ])
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId })
      const failed = yield* turnOf(chat.send(created.chatId, "hi"))
      assert.strictEqual(failed.status, "failed")
      assert.strictEqual(failed.error?.code, "provider_unavailable")
      assert.include(failed.error?.message, "overloaded, try later")
      const detail = yield* chat.get(created.chatId)
      assert.strictEqual(detail.turnStatus, "failed")
      assert.deepInclude(detail.messages[1]!, { status: "failed" })
      assert.deepInclude(detail.messages[1]!.blocks[0], { text: "Let me" })
      const done = yield* turnOf(chat.resume(created.chatId))
      assert.strictEqual(done.answer, "Recovered answer.")
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })
})

describe("worktrees", () => {
  it.live("removeWorktree removes the directory, keeps the branch, and the chat can no longer run", () => {
    const model = scriptedModel([toolCall("call-1", "write_file", { path: "new.txt", content: "made in the worktree\n" }), answer("ok")])
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId, worktree: true, approvalMode: "auto" })
      const worktree = created.worktree!
      assert.isTrue(Fs.existsSync(worktree.path))
      assert.include(gitOutput(repo, "worktree", "list"), worktree.path)
      yield* turnOf(chat.send(created.chatId, "make a file"))
      assert.isTrue(Fs.existsSync(Path.join(worktree.path, "new.txt")))

      yield* chat.removeWorktree(created.chatId)
      yield* chat.removeWorktree(created.chatId)
      assert.isFalse(Fs.existsSync(worktree.path))
      assert.notInclude(gitOutput(repo, "worktree", "list"), worktree.path)
      assert.include(gitOutput(repo, "branch", "--list", worktree.branch), worktree.branch)
      const detail = yield* chat.get(created.chatId)
      assert.strictEqual(detail.worktree?.status, "removed")
      const error = yield* Effect.flip(chat.send(created.chatId, "more"))
      assert.strictEqual(error._tag, "WorktreeRemoved")
      assert.include(error.message, "start a new chat")
      // Still readable and exportable.
      assert.include(yield* chat.exportMarkdown(created.chatId), "(removed)")
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })

  it.live("a project in a subdirectory of a repository works in the same subdirectory of the worktree", () => {
    const model = scriptedModel([toolCall("call-1", "read_file", { path: "app.txt" }), answer("read it")])
    const repo = gitRepo({ "packages/app/app.txt": "the app\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(Path.join(repo, "packages/app"))
      const created = yield* chat.createChat({ projectId: project.projectId, worktree: true })
      assert.strictEqual(created.workspace, Path.join(created.worktree!.path, "packages/app"))
      yield* turnOf(chat.send(created.chatId, "read app.txt"))
      assert.include(String((model.requests[1]!.messages.at(-1)!.content[0] as { result: unknown }).result), "the app")
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })
})

describe("export", () => {
  it.live("Markdown shows every message, tool call, result and patch; the workflow parses and carries no secret", () => {
    const key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"
    const model = scriptedModel([
      toolCall("call-edit", "write_file", { path: "config.txt", content: "mode = fast\n" }),
      toolCall("call-test", "run_command", { command: "git", args: ["status", "--short"] }),
      answer("Wrote config.txt and checked the status.")
    ])
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId, approvalMode: "auto", model: "anthropic/claude-sonnet-4" })
      yield* turnOf(chat.send(created.chatId, `Set fast mode in config.txt ({{ not a template }}); my key is ${key}, ANTHROPIC_API_KEY=${key}`))

      const markdown = yield* chat.exportMarkdown(created.chatId)
      assert.include(markdown, "# Set fast mode in config.txt")
      assert.include(markdown, "## You")
      assert.include(markdown, "## Assistant (claude-sonnet-4)")
      assert.include(markdown, "**Tool call** `write_file` (`call-edit`: done)")
      assert.include(markdown, "**Result of** `run_command` (`call-test`): ok")
      assert.include(markdown, "**File write** `config.txt`")
      assert.include(markdown, "Wrote config.txt and checked the status.")
      assert.include(markdown, "- Model: anthropic/claude-sonnet-4 · approval mode: auto")

      const yaml = yield* chat.exportWorkflowYaml(created.chatId)
      assert.notInclude(yaml, key)
      assert.notInclude(yaml, "sk-ant")
      assert.include(yaml, "[redacted]")
      assert.include(yaml, "schema_version: \"1.0\"")
      const plan = WorkflowYaml.parseWorkflow(yaml, "chat.relavium.yaml")
      if (Either.isLeft(plan)) assert.fail(plan.left.message)
      const spec = plan.right.spec
      assert.strictEqual(spec.agents?.[0] && "model" in spec.agents[0] ? spec.agents[0].model : undefined, "claude-sonnet-4")
      assert.deepStrictEqual(spec.tools?.allowedCommands, ["git status --short"])
      assert.strictEqual(spec.inputs?.[0]?.name, "message_1")
      assert.include(String(spec.inputs?.[0]?.default), "{{ not a template }}")
      const agentNode = spec.nodes.find((n) => n.type === "agent")
      assert.deepInclude(agentNode, { id: "chat", agent_ref: "coder", prompt_template: "{{ inputs.message_1 }}" })
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })
})

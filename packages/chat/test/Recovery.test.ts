/**
 * Recovery in one process: chats left `running` by a process that died (its
 * pid is gone) mid-stream or mid-tool are closed by `recover()` — the partial
 * answer is kept, the running tool call gets an explicit "interrupted" result
 * — and `recover()` twice changes nothing the second time. A cancelled turn is
 * closed the same way; a chat another live process works on is left alone.
 * (The real SIGKILL of a `relavium chat send` is in apps/cli/test/chat.test.ts.)
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Clock, Effect, Layer, Option, Stream, TestClock } from "effect"
import { ChatStore, LlmProvider } from "@relavium/ports"
import type { Llm } from "@relavium/domain"
import { answer, scriptedModel, waitUntil } from "../../core/test/harness.js"
import { ChatService } from "../src/index.js"
import { chatLayer, gitRepo, sqliteStore, turnOf } from "./support.js"

/** The pid of a process that has exited. */
const deadPid = (): number => spawnSync(process.execPath, ["-e", ""]).pid!

const at = () => new Date().toISOString()

/** Leaves `chatId` as a killed process would: turn `running`, claimed by a dead pid. */
const crashedTurn = (
  chatId: string,
  messages: ReadonlyArray<{ role: "user" | "assistant"; status: "completed" | "streaming"; blocks: ReadonlyArray<{ kind: "text" | "tool_call"; callId?: string; status?: string; content: unknown }> }>
) =>
  Effect.gen(function* () {
    const store = yield* ChatStore
    yield* store.claimTurn(chatId, { owner: `${Os.hostname()}:${deadPid()}:dead`, expectedOwner: undefined, at: at() })
    const writes = messages.map((m, seq) => ({
      messageId: crypto.randomUUID(),
      chatId,
      seq,
      role: m.role,
      status: m.status,
      model: m.role === "assistant" ? "claude-sonnet-4" : undefined,
      inputTokens: 0,
      outputTokens: 0,
      costMicrocents: 0,
      createdAt: at(),
      updatedAt: at()
    }))
    yield* store.commit(chatId, {
      updatedAt: at(),
      turnStatus: "running",
      messages: writes,
      blocks: messages.flatMap((m, i) =>
        m.blocks.map((b, position) => ({
          blockId: crypto.randomUUID(),
          messageId: writes[i]!.messageId,
          position,
          kind: b.kind,
          callId: b.callId,
          status: b.status ?? "done",
          content: b.content,
          createdAt: at()
        }))
      ),
      events: [{ type: "turn:started", timestamp: at(), data: { turnId: "t", messageId: writes[0]!.messageId, text: "go" } }]
    })
  })

describe("recovery", () => {
  it.live("mid-stream: the partial answer is kept and marked interrupted; recovery is idempotent; resume asks again", () => {
    const model = scriptedModel([answer("A complete answer.")])
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId })
      yield* crashedTurn(created.chatId, [
        { role: "user", status: "completed", blocks: [{ kind: "text", content: { text: "Explain the build" } }] },
        { role: "assistant", status: "streaming", blocks: [{ kind: "text", status: "streaming", content: { text: "The build first comp" } }] }
      ])
      assert.strictEqual((yield* chat.get(created.chatId)).turnStatus, "running")

      const report = yield* chat.recover()
      assert.deepStrictEqual(report.chats, [{ chatId: created.chatId, interruptedMessages: 1, interruptedToolCalls: 0 }])
      const after = yield* chat.get(created.chatId)
      assert.strictEqual(after.turnStatus, "interrupted")
      assert.strictEqual(after.messages[1]!.status, "interrupted")
      assert.deepInclude(after.messages[1]!.blocks[0], { kind: "text", text: "The build first comp" })
      const lastEvent = yield* chat.events(created.chatId, after.lastSequenceNumber - 1).pipe(Stream.take(1), Stream.runCollect)
      assert.deepInclude([...lastEvent][0], { type: "turn:interrupted" })

      // A second recovery finds nothing to do and writes nothing.
      assert.deepStrictEqual((yield* chat.recover()).chats, [])
      const again = yield* chat.get(created.chatId)
      assert.strictEqual(again.lastSequenceNumber, after.lastSequenceNumber)
      assert.deepStrictEqual(again.messages, after.messages)

      // Resume asks the model again; the partial answer stays in the history but is not sent back.
      const done = yield* turnOf(chat.resume(created.chatId))
      assert.strictEqual(done.answer, "A complete answer.")
      assert.deepStrictEqual(model.requests[0]!.messages.map((m) => m.role), ["user"])
      const final = yield* chat.get(created.chatId)
      assert.deepStrictEqual(final.messages.map((m) => `${m.role}:${m.status}`), ["user:completed", "assistant:interrupted", "assistant:completed"])
    }).pipe(Effect.provide(chatLayer({ model: model.layer, store: sqliteStore() })))
  })

  it.live("mid-tool: the running call gets an explicit interrupted result and the model is told on resume", () => {
    const model = scriptedModel([answer("The test run was interrupted; I will not rerun it without asking.")])
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId, approvalMode: "auto" })
      yield* crashedTurn(created.chatId, [
        { role: "user", status: "completed", blocks: [{ kind: "text", content: { text: "Run the tests" } }] },
        {
          role: "assistant",
          status: "completed",
          blocks: [{ kind: "tool_call", callId: "call-tests", status: "running", content: { name: "run_command", args: { command: "npm", args: ["test"] }, approval: "auto" } }]
        }
      ])
      const report = yield* chat.recover()
      assert.deepStrictEqual(report.chats, [{ chatId: created.chatId, interruptedMessages: 0, interruptedToolCalls: 1 }])
      assert.deepStrictEqual((yield* chat.recover()).chats, [])

      const after = yield* chat.get(created.chatId)
      assert.deepInclude(after.messages[1]!.blocks[0], { kind: "tool_call", status: "interrupted" })
      const result = after.messages[2]!.blocks[0]!
      assert.deepInclude(result, { kind: "tool_result", toolCallId: "call-tests", outcome: "interrupted" })
      assert.include((result as { output: string }).output, "interrupted")

      const done = yield* turnOf(chat.resume(created.chatId))
      assert.strictEqual(done.status, "completed")
      const told = model.requests[0]!.messages.at(-1)!
      assert.strictEqual(told.role, "tool")
      assert.deepInclude(told.content[0], { type: "tool_result", id: "call-tests", isError: true })
    }).pipe(Effect.provide(chatLayer({ model: model.layer, store: sqliteStore() })))
  })

  it.live("a call the old mode let run, not started before the crash, waits once the mode is stricter", () => {
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId, approvalMode: "auto" })
      yield* crashedTurn(created.chatId, [
        { role: "user", status: "completed", blocks: [{ kind: "text", content: { text: "Overwrite the README" } }] },
        {
          role: "assistant",
          status: "completed",
          blocks: [{ kind: "tool_call", callId: "call-w", status: "ready", content: { name: "write_file", args: { path: "README.md", content: "gone\n" }, approval: "auto" } }]
        }
      ])
      yield* chat.recover()
      yield* chat.setApprovalMode(created.chatId, "ask")
      const paused = yield* turnOf(chat.resume(created.chatId))
      assert.strictEqual(paused.status, "awaiting_approval")
      assert.deepStrictEqual(paused.pending.map((p) => p.toolCallId), ["call-w"])
      assert.strictEqual(Fs.readFileSync(Path.join(repo, "README.md"), "utf8"), "hello\n")
    }).pipe(Effect.provide(chatLayer({ model: scriptedModel([]).layer })))
  })

  it.live("a send after a crash recovers the chat first, then answers", () => {
    const model = scriptedModel([answer("Here is the rest.")])
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId })
      yield* crashedTurn(created.chatId, [
        { role: "user", status: "completed", blocks: [{ kind: "text", content: { text: "first" } }] },
        { role: "assistant", status: "streaming", blocks: [{ kind: "text", status: "streaming", content: { text: "Half" } }] }
      ])
      const done = yield* turnOf(chat.send(created.chatId, "go on"))
      assert.strictEqual(done.answer, "Here is the rest.")
      const detail = yield* chat.get(created.chatId)
      assert.deepStrictEqual(detail.messages.map((m) => `${m.role}:${m.status}`), [
        "user:completed",
        "assistant:interrupted",
        "user:completed",
        "assistant:completed"
      ])
      // The two user messages reach the model as one turn.
      assert.deepStrictEqual(model.requests[0]!.messages.map((m) => m.role), ["user"])
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })

  it.live("a chat another live process is answering is busy, and recovery leaves it alone", () => {
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const store = yield* ChatStore
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId })
      yield* store.claimTurn(created.chatId, { owner: `${Os.hostname()}:${process.pid}:other`, expectedOwner: undefined, at: at() })
      yield* store.commit(created.chatId, { updatedAt: at(), turnStatus: "running" })
      const busy = yield* Effect.flip(turnOf(chat.send(created.chatId, "hello?")))
      assert.strictEqual(busy._tag, "ChatBusy")
      assert.include(busy.message, "busy")
      assert.deepStrictEqual((yield* chat.recover()).chats, [])
      assert.strictEqual((yield* chat.get(created.chatId)).messages.length, 0)
    }).pipe(Effect.provide(chatLayer({ model: scriptedModel([]).layer })))
  })

  it.live("cancel stops a streaming answer: what arrived is kept, the turn rests interrupted, resume continues", () => {
    const repo = gitRepo({ "README.md": "hello\n" })
    let calls = 0
    // The first answer streams two chunks and then hangs; the second is complete.
    const hanging = Layer.succeed(
      LlmProvider,
      LlmProvider.of({
        stream: () => {
          calls += 1
          const chunks: ReadonlyArray<Llm.StreamChunk> = [{ type: "text_delta", text: "Working " }, { type: "text_delta", text: "on it" }]
          return calls === 1 ? Stream.concat(Stream.fromIterable(chunks), Stream.never) : Stream.fromIterable(answer("All done."))
        }
      })
    )
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId })
      const turn = yield* chat.send(created.chatId, "do it")
      // Wait until the partial text is stored, then cancel.
      yield* turn.events.pipe(Stream.takeUntil((e) => e.type === "message:delta" && e.text.includes("on it")), Stream.runDrain)
      assert.isTrue(yield* chat.cancel(created.chatId))
      const outcome = yield* turn.outcome
      assert.strictEqual(outcome.status, "interrupted")
      const detail = yield* chat.get(created.chatId)
      assert.strictEqual(detail.turnStatus, "interrupted")
      assert.deepInclude(detail.messages[1]!, { status: "interrupted" })
      assert.deepInclude(detail.messages[1]!.blocks[0], { text: "Working on it" })
      assert.isFalse(yield* chat.cancel(created.chatId))
      const done = yield* turnOf(chat.resume(created.chatId))
      assert.strictEqual(done.answer, "All done.")
      assert.isTrue(Option.isNone(Option.fromNullable(detail.worktree)))
    }).pipe(Effect.provide(chatLayer({ model: hanging })))
  })
})

describe("claims on the clock", () => {
  const clockAt = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

  it.effect("a claim by a live process elsewhere is busy until its heartbeat is 30 s old on the clock, then taken over", () => {
    const model = scriptedModel([answer("Taken over.")])
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const store = yield* ChatStore
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId })
      // Another host's process claims the turn (its pid means nothing here) and then goes silent.
      yield* store.claimTurn(created.chatId, { owner: "elsewhere:4242:gone", expectedOwner: undefined, at: yield* clockAt })
      yield* store.commit(created.chatId, { updatedAt: yield* clockAt, turnStatus: "running" })
      yield* TestClock.adjust("30 seconds")
      const busy = yield* Effect.flip(turnOf(chat.send(created.chatId, "anyone there?")))
      assert.strictEqual(busy._tag, "ChatBusy")
      assert.deepStrictEqual((yield* chat.recover()).chats, [])
      yield* TestClock.adjust("1 millis")
      const done = yield* turnOf(chat.send(created.chatId, "anyone there?"))
      assert.strictEqual(done.answer, "Taken over.")
      const detail = yield* chat.get(created.chatId)
      assert.deepStrictEqual(detail.messages.map((m) => `${m.role}:${m.status}`), ["user:completed", "assistant:completed"])
    }).pipe(Effect.provide(chatLayer({ model: model.layer })))
  })

  it.effect("a turn that runs for minutes keeps its claim fresh with heartbeats: another process finds the chat busy", () => {
    const repo = gitRepo({ "README.md": "hello\n" })
    // The model streams a little, then takes its time.
    let calls = 0
    const slow = Layer.succeed(
      LlmProvider,
      LlmProvider.of({
        stream: () => {
          calls += 1
          return Stream.concat(Stream.fromIterable<Llm.StreamChunk>([{ type: "text_delta", text: "Thinking" }]), Stream.never)
        }
      })
    )
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const store = yield* ChatStore
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId })
      yield* chat.send(created.chatId, "think hard")
      yield* waitUntil("the model call", Effect.sync(() => calls === 1))
      // Five minutes pass on the clock while the answer streams; the turn beats every 10 s.
      yield* TestClock.adjust("5 minutes")
      const record = Option.getOrThrow(yield* store.getChat(created.chatId))
      assert.strictEqual(record.turnHeartbeatAt, yield* clockAt)
      // A second process on the same store (same host, this live pid) may not take the turn over.
      const other = yield* Effect.flip(
        turnOf(Effect.flatMap(ChatService, (second) => second.send(created.chatId, "me too"))).pipe(
          Effect.provide(chatLayer({ model: scriptedModel([]).layer, store: Layer.succeed(ChatStore, store) }))
        )
      )
      assert.strictEqual(other._tag, "ChatBusy")
      assert.isTrue(yield* chat.cancel(created.chatId))
    }).pipe(Effect.provide(chatLayer({ model: slow })))
  })
})

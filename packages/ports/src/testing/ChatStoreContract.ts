/**
 * The contract every `ChatStore` layer must meet (memory, SQLite, Postgres).
 * Tests share one store per suite, so each makes its own project and chats
 * and, where it reads across chats, looks only at its own.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Exit, type Layer, Option } from "effect"
import { type ChatRecord, ChatStore, type ContentBlockRecord, type MessageWrite, type WorktreeRecord } from "../ChatStore.js"
import type { StoreError } from "../RunStore.js"

const id = () => crypto.randomUUID()
const at = (n: number) => new Date(Date.UTC(2025, 5, 1) + n * 1000).toISOString()

const project = (rootPath = `/tmp/project-${id()}`) => ({
  projectId: id(),
  name: rootPath.split("/").pop()!,
  rootPath,
  createdAt: at(0),
  updatedAt: at(0)
})

const chat = (projectId: string, extra: Partial<ChatRecord> = {}): ChatRecord => ({
  chatId: id(),
  projectId,
  worktreeId: undefined,
  title: "",
  model: "claude-sonnet-4",
  settings: { provider: "anthropic", model: "claude-sonnet-4", approvalMode: "ask", tools: ["read_file"], systemPrompt: "be brief" },
  turnStatus: "idle",
  turnOwner: undefined,
  turnHeartbeatAt: undefined,
  lastSequenceNumber: -1,
  createdAt: at(1),
  updatedAt: at(1),
  ...extra
})

const message = (chatId: string, seq: number, extra: Partial<MessageWrite> = {}): MessageWrite => ({
  messageId: id(),
  chatId,
  seq,
  role: "user",
  status: "completed",
  model: undefined,
  inputTokens: 0,
  outputTokens: 0,
  costMicrocents: 0,
  createdAt: at(10 + seq),
  updatedAt: at(10 + seq),
  ...extra
})

const block = (messageId: string, position: number, extra: Partial<ContentBlockRecord> = {}): ContentBlockRecord => ({
  blockId: id(),
  messageId,
  position,
  kind: "text",
  callId: undefined,
  status: undefined,
  content: { text: `block ${position}` },
  createdAt: at(20 + position),
  ...extra
})

const event = (type: string, data: unknown = {}) => ({ type, timestamp: at(30), data })

/** A project and a chat in it, created through the store. */
const newChat = (extra: Partial<ChatRecord> = {}) =>
  Effect.gen(function* () {
    const store = yield* ChatStore
    const p = yield* store.putProject(project())
    const c = chat(p.projectId, extra)
    yield* store.createChat(c)
    return { project: p, chat: c }
  })

export const chatStoreContract = (name: string, layer: Layer.Layer<ChatStore, StoreError>) =>
  it.layer(layer, { timeout: "60 seconds" })(`ChatStore contract: ${name}`, (it) => {
    it.effect("stores a project once per directory and reads it back", () =>
      Effect.gen(function* () {
        const store = yield* ChatStore
        const first = project()
        const stored = yield* store.putProject(first)
        assert.deepStrictEqual(stored, first)
        const again = yield* store.putProject({ ...project(first.rootPath), name: "other" })
        assert.deepStrictEqual(again, first)
        assert.deepStrictEqual(Option.getOrThrow(yield* store.getProject(first.projectId)), first)
        assert.isTrue(Option.isNone(yield* store.getProject(id())))
        const listed = yield* store.listProjects()
        assert.strictEqual(listed.filter((p) => p.rootPath === first.rootPath).length, 1)
      }))

    it.effect("creates a chat with its worktree and first events, and lists chats newest first", () =>
      Effect.gen(function* () {
        const store = yield* ChatStore
        const p = yield* store.putProject(project())
        const worktree: WorktreeRecord = {
          worktreeId: id(),
          projectId: p.projectId,
          path: `${p.rootPath}/.relavium/worktrees/x`,
          branch: "relavium/chat-x",
          baseRef: "abc123",
          status: "active",
          createdAt: at(1),
          updatedAt: at(1)
        }
        const older = chat(p.projectId, { worktreeId: worktree.worktreeId, title: "older" })
        const events = yield* store.createChat(older, { worktree, events: [event("chat:created", { model: "m" })] })
        assert.deepStrictEqual(events, [{ chatId: older.chatId, seq: 0, type: "chat:created", timestamp: at(30), data: { model: "m" } }])
        const newer = chat(p.projectId, { title: "newer", createdAt: at(2), updatedAt: at(2) })
        yield* store.createChat(newer)
        assert.deepStrictEqual(Option.getOrThrow(yield* store.getChat(older.chatId)), { ...older, lastSequenceNumber: 0 })
        assert.deepStrictEqual(Option.getOrThrow(yield* store.getWorktree(worktree.worktreeId)), worktree)
        const listed = yield* store.listChats({ projectId: p.projectId })
        assert.deepStrictEqual(listed.map((c) => c.title), ["newer", "older"])
        assert.deepStrictEqual((yield* store.listChats({ projectId: p.projectId, limit: 1 })).map((c) => c.title), ["newer"])
        yield* store.setWorktreeStatus(worktree.worktreeId, "removed", at(5))
        const removed = Option.getOrThrow(yield* store.getWorktree(worktree.worktreeId))
        assert.strictEqual(removed.status, "removed")
        assert.strictEqual(removed.updatedAt, at(5))
        assert.isTrue(Option.isNone(yield* store.getChat(id())))
      }))

    it.effect("a commit writes messages, blocks, the chat row and numbered events together", () =>
      Effect.gen(function* () {
        const store = yield* ChatStore
        const { chat: c } = yield* newChat()
        const user = message(c.chatId, 0)
        const answer = message(c.chatId, 1, { role: "assistant", status: "streaming", model: "claude-sonnet-4" })
        const text = block(answer.messageId, 0, { status: "streaming", content: { text: "Hel" } })
        const first = yield* store.commit(c.chatId, {
          updatedAt: at(40),
          turnStatus: "running",
          title: "Say hello",
          messages: [user, answer],
          blocks: [block(user.messageId, 0, { content: { text: "Say hello" } }), text],
          events: [event("turn:started", { text: "Say hello" }), event("message:delta", { text: "Hel" })]
        })
        assert.deepStrictEqual(first.map((e) => [e.seq, e.type]), [[0, "turn:started"], [1, "message:delta"]])
        const second = yield* store.commit(c.chatId, {
          updatedAt: at(41),
          turnStatus: "idle",
          messages: [{ ...answer, status: "completed", inputTokens: 12, outputTokens: 5, costMicrocents: 900, updatedAt: at(41) }],
          blocks: [{ ...text, status: "done", content: { text: "Hello!" } }],
          events: [event("message:completed", { text: "Hello!" })]
        })
        assert.deepStrictEqual(second.map((e) => e.seq), [2])
        const record = Option.getOrThrow(yield* store.getChat(c.chatId))
        assert.strictEqual(record.turnStatus, "idle")
        assert.strictEqual(record.title, "Say hello")
        assert.strictEqual(record.lastSequenceNumber, 2)
        assert.strictEqual(record.updatedAt, at(41))
        const messages = yield* store.messages(c.chatId)
        assert.deepStrictEqual(messages.map((m) => [m.seq, m.role, m.status]), [[0, "user", "completed"], [1, "assistant", "completed"]])
        assert.deepStrictEqual(messages[1]!.blocks.map((b) => [b.status, b.content]), [["done", { text: "Hello!" }]])
        assert.strictEqual(messages[1]!.costMicrocents, 900)
        assert.deepStrictEqual((yield* store.events(c.chatId, 0)).map((e) => [e.seq, e.type, e.data]), [
          [1, "message:delta", { text: "Hel" }],
          [2, "message:completed", { text: "Hello!" }]
        ])
      }))

    it.effect("keeps blocks in position order and tool call ids and statuses", () =>
      Effect.gen(function* () {
        const store = yield* ChatStore
        const { chat: c } = yield* newChat()
        const answer = message(c.chatId, 0, { role: "assistant", model: "m" })
        const blocks = [
          block(answer.messageId, 2, { kind: "tool_call", callId: "call-2", status: "pending", content: { name: "write_file", args: { path: "b" } } }),
          block(answer.messageId, 0, { kind: "reasoning", content: { text: "think" } }),
          block(answer.messageId, 1, { kind: "tool_call", callId: "call-1", status: "ready", content: { name: "read_file", args: { path: "a" } } })
        ]
        yield* store.commit(c.chatId, { updatedAt: at(50), messages: [answer], blocks })
        const [read] = yield* store.messages(c.chatId)
        assert.deepStrictEqual(read!.blocks.map((b) => [b.position, b.kind, b.callId, b.status]), [
          [0, "reasoning", undefined, undefined],
          [1, "tool_call", "call-1", "ready"],
          [2, "tool_call", "call-2", "pending"]
        ])
        assert.deepStrictEqual(read!.blocks[2]!.content, { name: "write_file", args: { path: "b" } })
      }))

    it.effect("lists pending tool calls until they are decided", () =>
      Effect.gen(function* () {
        const store = yield* ChatStore
        const { chat: c } = yield* newChat()
        const answer = message(c.chatId, 0, { role: "assistant", model: "m" })
        const pending = block(answer.messageId, 0, { kind: "tool_call", callId: "call-9", status: "pending", content: { name: "run_command" } })
        yield* store.commit(c.chatId, { updatedAt: at(60), messages: [answer], blocks: [pending] })
        const mine = (yield* store.pendingToolCalls()).filter((p) => p.chatId === c.chatId)
        assert.deepStrictEqual(mine.map((p) => [p.block.callId, p.message.messageId]), [["call-9", answer.messageId]])
        assert.deepStrictEqual((yield* store.pendingToolCalls(c.chatId)).map((p) => p.block.blockId), [pending.blockId])
        yield* store.commit(c.chatId, { updatedAt: at(61), blocks: [{ ...pending, status: "allowed" }] })
        assert.deepStrictEqual(yield* store.pendingToolCalls(c.chatId), [])
      }))

    it.effect("sums tokens and cost per chat and model", () =>
      Effect.gen(function* () {
        const store = yield* ChatStore
        const { chat: a } = yield* newChat()
        const { chat: b } = yield* newChat()
        const assistant = (chatId: string, seq: number, model: string, cost: number) =>
          message(chatId, seq, { role: "assistant", model, inputTokens: 100, outputTokens: 10, costMicrocents: cost })
        yield* store.commit(a.chatId, {
          updatedAt: at(70),
          messages: [message(a.chatId, 0), assistant(a.chatId, 1, "claude-sonnet-4", 450), assistant(a.chatId, 2, "claude-sonnet-4", 550), assistant(a.chatId, 3, "gpt-5", 125)]
        })
        yield* store.commit(b.chatId, { updatedAt: at(71), messages: [assistant(b.chatId, 0, "gpt-5", 7)] })
        assert.deepStrictEqual(yield* store.usage(a.chatId), [
          { chatId: a.chatId, model: "claude-sonnet-4", inputTokens: 200, outputTokens: 20, costMicrocents: 1000, calls: 2 },
          { chatId: a.chatId, model: "gpt-5", inputTokens: 100, outputTokens: 10, costMicrocents: 125, calls: 1 }
        ])
        const all = (yield* store.usage()).filter((u) => u.chatId === a.chatId || u.chatId === b.chatId)
        assert.strictEqual(all.length, 3)
        assert.deepStrictEqual(all.find((u) => u.chatId === b.chatId), { chatId: b.chatId, model: "gpt-5", inputTokens: 100, outputTokens: 10, costMicrocents: 7, calls: 1 })
      }))

    it.effect("claims a turn once; a dead owner's claim is taken over; recovery sees running turns", () =>
      Effect.gen(function* () {
        const store = yield* ChatStore
        const { chat: c } = yield* newChat()
        assert.isTrue(yield* store.claimTurn(c.chatId, { owner: "host:1:a", expectedOwner: undefined, at: at(80) }))
        assert.isFalse(yield* store.claimTurn(c.chatId, { owner: "host:2:b", expectedOwner: undefined, at: at(80) }))
        yield* store.commit(c.chatId, { updatedAt: at(81), turnStatus: "running" })
        yield* store.heartbeat(c.chatId, "host:1:a", at(82))
        yield* store.heartbeat(c.chatId, "host:2:b", at(99))
        let record = Option.getOrThrow(yield* store.getChat(c.chatId))
        assert.strictEqual(record.turnOwner, "host:1:a")
        assert.strictEqual(record.turnHeartbeatAt, at(82))
        assert.include((yield* store.chatsToRecover()).map((r) => r.chatId), c.chatId)
        assert.isTrue(yield* store.claimTurn(c.chatId, { owner: "host:2:b", expectedOwner: "host:1:a", at: at(83) }))
        yield* store.releaseTurn(c.chatId, "host:1:a")
        assert.strictEqual(Option.getOrThrow(yield* store.getChat(c.chatId)).turnOwner, "host:2:b")
        yield* store.commit(c.chatId, { updatedAt: at(84), turnStatus: "interrupted" })
        yield* store.releaseTurn(c.chatId, "host:2:b")
        record = Option.getOrThrow(yield* store.getChat(c.chatId))
        assert.strictEqual(record.turnOwner, undefined)
        assert.strictEqual(record.turnHeartbeatAt, undefined)
        assert.notInclude((yield* store.chatsToRecover()).map((r) => r.chatId), c.chatId)
      }))

    it.effect("a commit to an unknown chat fails with ChatNotFound and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* ChatStore
        const chatId = id()
        const exit = yield* Effect.exit(
          store.commit(chatId, { updatedAt: at(90), messages: [message(chatId, 0)], events: [event("turn:started")] })
        )
        assert.isTrue(Exit.isFailure(exit))
        assert.include(String(exit), "ChatNotFound")
        assert.deepStrictEqual(yield* store.events(chatId), [])
        assert.deepStrictEqual(yield* store.messages(chatId), [])
      }))

    it.effect("concurrent commits to one chat number their events with no gap", () =>
      Effect.gen(function* () {
        const store = yield* ChatStore
        const { chat: c } = yield* newChat()
        yield* Effect.all(
          Array.from({ length: 20 }, (_, i) => store.commit(c.chatId, { updatedAt: at(100 + i), events: [event("message:delta", { i }), event("message:delta", { i })] })),
          { concurrency: "unbounded" }
        )
        const events = yield* store.events(c.chatId)
        assert.deepStrictEqual(events.map((e) => e.seq), Array.from({ length: 40 }, (_, i) => i))
        assert.strictEqual(Option.getOrThrow(yield* store.getChat(c.chatId)).lastSequenceNumber, 39)
      }))
  })

/**
 * Chats on SQLite and on the real Postgres: messages and their content blocks
 * are stored in order as the turn runs, cost is attributed per chat and per
 * model, and a follower replays the chat's log from the store with no gap.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Stream } from "effect"
import type { ChatStore, StoreError } from "@relavium/ports"
import { Cost, type Llm } from "@relavium/domain"
import { answer, scriptedModel, toolCall } from "../../core/test/harness.js"
import { ChatService } from "../src/index.js"
import { chatLayer, freshPgStore, gitRepo, read, sqliteStore, tempDir, turnOf } from "./support.js"
import * as Path from "node:path"

const price = new Cost.ModelPrice({ inputPerMTok: 300_000_000, outputPerMTok: 1_500_000_000 })
const costOf = (inputTokens: number, outputTokens: number) => Cost.costOf(price, { inputTokens, outputTokens })

const thinkThenWrite: ReadonlyArray<Llm.StreamChunk> = [
  { type: "reasoning_start", id: "r1" },
  { type: "reasoning_delta", id: "r1", text: "There are no notes yet; " },
  { type: "reasoning_delta", id: "r1", text: "I will write them." },
  { type: "reasoning_end", id: "r1" },
  { type: "text_delta", text: "Writing " },
  { type: "text_delta", text: "docs/notes.md." },
  ...toolCall("call-notes", "write_file", { path: "docs/notes.md", content: "# Notes\n\n- ship it\n" })
]

const persistence = (name: string, store: () => Layer.Layer<ChatStore, StoreError>) =>
  describe(`chats on ${name}`, () => {
    it.live("stores messages and blocks in order and attributes cost per chat and model", () => {
      const model = scriptedModel([thinkThenWrite, answer("Done: docs/notes.md lists one item."), answer("Hello from GPT-5.", { inputTokens: 40, outputTokens: 8 })])
      const repo = gitRepo({ "README.md": "hello\n" })
      return Effect.gen(function* () {
        const chat = yield* ChatService
        const project = yield* chat.createProject(repo)
        const a = yield* chat.createChat({ projectId: project.projectId, model: "anthropic/claude-sonnet-4", approvalMode: "auto" })
        const b = yield* chat.createChat({ projectId: project.projectId, model: "openai/gpt-5", approvalMode: "ask" })

        const turn = yield* chat.send(a.chatId, "Write the release notes")
        const streamed = [...(yield* turn.events.pipe(Stream.runCollect))]
        assert.strictEqual((yield* turn.outcome).status, "completed")
        assert.strictEqual((yield* turnOf(chat.send(b.chatId, "Say hello"))).answer, "Hello from GPT-5.")
        assert.strictEqual(read(repo, "docs/notes.md"), "# Notes\n\n- ship it\n")

        const detail = yield* chat.get(a.chatId)
        assert.strictEqual(detail.title, "Write the release notes")
        assert.deepStrictEqual(
          detail.messages.map((m) => [m.seq, m.role, m.status, m.blocks.map((x) => x.kind)]),
          [
            [0, "user", "completed", ["text"]],
            [1, "assistant", "completed", ["reasoning", "text", "tool_call"]],
            [2, "tool", "completed", ["tool_result", "file_patch"]],
            [3, "assistant", "completed", ["text"]]
          ]
        )
        const [reasoning, text] = detail.messages[1]!.blocks
        assert.deepInclude(reasoning, { text: "There are no notes yet; I will write them." })
        assert.deepInclude(text, { text: "Writing docs/notes.md." })
        assert.deepInclude(detail.messages[2]!.blocks[0], { kind: "tool_result", toolCallId: "call-notes", outcome: "ok" })
        assert.deepInclude(detail.messages[2]!.blocks[1], { kind: "file_patch", path: "docs/notes.md", operation: "write", content: "# Notes\n\n- ship it\n" })

        const firstCall = costOf(50, 10)
        const secondCall = costOf(100, 20)
        assert.deepStrictEqual(detail.usage, [
          { chatId: a.chatId, model: "claude-sonnet-4", inputTokens: 150, outputTokens: 30, costMicrocents: firstCall + secondCall, calls: 2 }
        ])
        assert.strictEqual(detail.costMicrocents, firstCall + secondCall)
        assert.deepStrictEqual(detail.messages.map((m) => m.costMicrocents), [0, firstCall, 0, secondCall])
        const all = yield* chat.usage()
        assert.deepStrictEqual(
          all.map((u) => [u.chatId, u.model, u.costMicrocents]).sort(),
          [
            [a.chatId, "claude-sonnet-4", firstCall + secondCall],
            [b.chatId, "gpt-5", costOf(40, 8)]
          ].sort()
        )
        const listed = yield* chat.list({ projectId: project.projectId })
        assert.deepStrictEqual(listed.map((c) => [c.chatId, c.model, c.costMicrocents]), [
          [b.chatId, "gpt-5", costOf(40, 8)],
          [a.chatId, "claude-sonnet-4", firstCall + secondCall]
        ])
        const costEvents = streamed.filter((e) => e.type === "cost:updated")
        assert.deepStrictEqual(costEvents.map((e) => (e as { chatCostMicrocents: number }).chatCostMicrocents), [firstCall, firstCall + secondCall])

        // Replay from the store: every event once, numbered from 0, the turn's events as they were streamed.
        const replayed = [...(yield* chat.events(a.chatId).pipe(Stream.take(detail.lastSequenceNumber + 1), Stream.runCollect))]
        assert.deepStrictEqual(replayed.map((e) => e.seq), Array.from({ length: detail.lastSequenceNumber + 1 }, (_, i) => i))
        assert.strictEqual(replayed[0]!.type, "chat:created")
        assert.deepStrictEqual(replayed.slice(1), streamed)
        assert.deepStrictEqual(
          replayed.filter((e) => e.type === "message:delta" || e.type === "reasoning:delta").map((e) => (e as { text: string }).text).join(""),
          "There are no notes yet; I will write them.Writing docs/notes.md.Done: docs/notes.md lists one item."
        )
      }).pipe(Effect.provide(chatLayer({ model: model.layer, store: store() })))
    })

    it.live("a follower that joins mid-chat gets the stored events, then the live ones, with no gap", () => {
      const model = scriptedModel([answer("First answer."), answer("Second answer.")])
      const repo = gitRepo({ "README.md": "hello\n" })
      return Effect.gen(function* () {
        const chat = yield* ChatService
        const project = yield* chat.createProject(repo)
        const created = yield* chat.createChat({ projectId: project.projectId })
        yield* turnOf(chat.send(created.chatId, "one"))
        const before = (yield* chat.get(created.chatId)).lastSequenceNumber
        const follower = yield* chat.events(created.chatId, 2).pipe(
          Stream.takeUntil((e) => e.type === "turn:completed" && e.seq > before),
          Stream.runCollect,
          Effect.fork
        )
        yield* turnOf(chat.send(created.chatId, "two"))
        const seen = [...(yield* follower.await.pipe(Effect.flatten))]
        assert.deepStrictEqual(seen.map((e) => e.seq), Array.from({ length: seen.length }, (_, i) => i + 3))
        assert.strictEqual(seen.filter((e) => e.type === "turn:started").length, 1)
        assert.strictEqual(seen.at(-1)!.type, "turn:completed")
      }).pipe(Effect.provide(chatLayer({ model: model.layer, store: store() })))
    })
  })

persistence("SQLite", () => sqliteStore())
persistence("Postgres", () => freshPgStore)

describe("chats on SQLite across a restart", () => {
  it.live("a second process on the same database sees the chat, its messages and its cost", () => {
    const filename = Path.join(tempDir("relavium-chat-restart-"), "relavium.db")
    const repo = gitRepo({ "README.md": "hello\n" })
    const first = scriptedModel([answer("Stored answer.")])
    return Effect.gen(function* () {
      const chatId = yield* Effect.gen(function* () {
        const chat = yield* ChatService
        const project = yield* chat.createProject(repo)
        const created = yield* chat.createChat({ projectId: project.projectId })
        yield* turnOf(chat.send(created.chatId, "remember this"))
        return created.chatId
      }).pipe(Effect.provide(chatLayer({ model: first.layer, store: sqliteStore(filename) })))

      const after = yield* Effect.gen(function* () {
        const chat = yield* ChatService
        return yield* chat.get(chatId)
      }).pipe(Effect.provide(chatLayer({ model: scriptedModel([]).layer, store: sqliteStore(filename) })))
      assert.deepStrictEqual(after.messages.map((m) => [m.role, m.blocks.map((b) => (b.kind === "text" ? b.text : b.kind))]), [
        ["user", ["remember this"]],
        ["assistant", ["Stored answer."]]
      ])
      assert.strictEqual(after.costMicrocents, costOf(100, 20))
      assert.isTrue(Option.isNone(Option.fromNullable(after.worktree)))
    })
  })
})

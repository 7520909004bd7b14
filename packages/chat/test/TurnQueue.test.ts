/**
 * Turns handed to workers (the distributed deployment's shape, in one process
 * on the memory queue): with a `ChatTurnQueue` the process that takes a
 * message stores it and offers a `ChatTurn` job; the consumer's chat service
 * takes the claim over and runs the turn, whose events and outcome the sender
 * follows from the log. A job whose claim moved on does nothing, and a job
 * carries ids only.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { ChatStore, ChatTurnJobs, type Job, RunQueue } from "@relavium/ports"
import { layerLocal } from "@relavium/daemon"
import { answer, flatPricing, scriptedModel, toolCall } from "../../core/test/harness.js"
import { ChatHub, ChatService, ChatTools, ChatTurnQueue, layer as chatServiceLayer, layerTurnJobs, Worktrees } from "../src/index.js"
import { gitRepo, read, tempDir } from "./support.js"

/** The chat service with a turn queue, the memory queue, and a consumer running `ChatTurn` jobs (recording each). */
const queued = (model: ReturnType<typeof scriptedModel>, jobs: Array<Job>) => {
  const services = Layer.mergeAll(ChatStore.layerMemory, ChatHub.layerMemory, model.layer, flatPricing, ChatTools.layer(({ workspace }) => layerLocal({ workspace })), Worktrees.layerGit)
  const chats = chatServiceLayer({ worktreesDir: tempDir("relavium-worktrees-") }).pipe(
    Layer.provideMerge(ChatTurnQueue.layerRunQueue),
    Layer.provideMerge(services)
  )
  const consumer = Layer.scopedDiscard(
    Effect.gen(function* () {
      const queue = yield* RunQueue
      const turns = yield* ChatTurnJobs
      yield* queue.consume((job) => Effect.zipRight(Effect.sync(() => jobs.push(job)), job._tag === "ChatTurn" ? turns.run(job) : Effect.void))
    })
  )
  return consumer.pipe(Layer.provideMerge(layerTurnJobs({ sweepEvery: "1 second" })), Layer.provideMerge(chats), Layer.provideMerge(RunQueue.layerMemory()))
}

describe("chat turns as queue jobs", () => {
  it.live("a message is stored, its turn runs as a ChatTurn job, and the sender follows its events to the outcome", () => {
    const model = scriptedModel([
      toolCall("call_1", "write_file", { path: "notes.txt", content: "queued\n" }),
      answer("notes.txt is written.")
    ])
    const jobs: Array<Job> = []
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId, approvalMode: "auto" })
      const turn = yield* chat.send(created.chatId, "write the notes")
      const outcome = yield* turn.outcome
      assert.strictEqual(outcome.status, "completed")
      assert.strictEqual(outcome.answer, "notes.txt is written.")
      assert.strictEqual(read(repo, "notes.txt"), "queued\n")
      // One job, carrying ids only; the claim was released when the turn rested.
      assert.deepStrictEqual(jobs.map((j) => Object.keys(j).sort()), [["_tag", "chatId", "claimedBy", "orgId", "turn"]])
      assert.strictEqual(JSON.stringify(jobs).includes("write the notes"), false)
      const record = Option.getOrThrow(yield* Effect.flatMap(ChatStore, (store) => store.getChat(created.chatId)))
      assert.strictEqual(record.turnOwner, undefined)
      assert.strictEqual(record.turnStatus, "idle")
      const types = (yield* chat.get(created.chatId)).messages.map((m) => m.role)
      assert.deepStrictEqual(types, ["user", "assistant", "tool", "assistant"])

      // The job again (a worker that died after taking it): the claim moved on, nothing runs.
      const before = (yield* chat.get(created.chatId)).lastSequenceNumber
      const job = jobs[0]!
      assert(job._tag === "ChatTurn")
      yield* chat.runTurnJob(job)
      assert.strictEqual((yield* chat.get(created.chatId)).lastSequenceNumber, before)
      assert.strictEqual(model.requests.length, 2)
    }).pipe(Effect.provide(queued(model, jobs)))
  })

  it.live("a second message while the queued turn waits for a decision is refused", () => {
    const model = scriptedModel([toolCall("call_1", "write_file", { path: "notes.txt", content: "x\n" })])
    const repo = gitRepo({ "README.md": "hello\n" })
    return Effect.gen(function* () {
      const chat = yield* ChatService
      const project = yield* chat.createProject(repo)
      const created = yield* chat.createChat({ projectId: project.projectId })
      const outcome = yield* Effect.flatMap(chat.send(created.chatId, "write"), (t) => t.outcome)
      assert.strictEqual(outcome.status, "awaiting_approval")
      assert.deepStrictEqual(outcome.pending.map((p) => p.toolCallId), ["call_1"])
      const refused = yield* Effect.flip(chat.send(created.chatId, "more"))
      assert.strictEqual(refused._tag, "ApprovalRequired")
    }).pipe(Effect.provide(queued(model, [])))
  })
})

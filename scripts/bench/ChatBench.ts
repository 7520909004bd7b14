/**
 * (7) Chat turn overhead, bundled apart (chat.mjs) like the store benchmarks: one chat on the
 * SQLite-durable ChatStore, each turn a scripted answer of N streamed text chunks (no tools), so
 * what is timed is the service — storing the user message, streaming, persisting the assistant
 * message and its blocks, publishing events — not a model. Figures: a whole turn (send → rest),
 * and per streamed chunk.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime, Option, Ref, Stream } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DaemonRouter, LlmProvider, ModelPricing } from "@relavium/ports"
import type { Llm } from "@relavium/domain"
import { ChatHub, ChatService, ChatTools, layer as chatServiceLayer, Worktrees } from "@relavium/chat"
import { Store } from "@relavium/store"
import { type BenchConfig, type Measurement, measured, type Outcome } from "./Harness.js"

/** Every call answers with `chunks` text deltas. */
const modelOf = (chunks: number) =>
  Layer.effect(
    LlmProvider,
    Effect.map(Ref.make(0), () =>
      LlmProvider.of({
        stream: () =>
          Stream.fromIterable<Llm.StreamChunk>([
            ...Array.from({ length: chunks }, (_, i): Llm.StreamChunk => ({ type: "text_delta", text: `token${i} ` })),
            { type: "stop", stopReason: "stop", usage: { inputTokens: 100, outputTokens: chunks } }
          ])
      })
    )
  )

const noPricing = Layer.succeed(ModelPricing, ModelPricing.of({ priceOf: () => Effect.succeed(Option.none()) }))

export const chatTurn = async (config: BenchConfig): Promise<Outcome> => {
  const out: Array<Measurement> = []
  const sizes = config.quick ? [50] : [50, 500]
  for (const chunks of sizes) {
    const dir = mkdtempSync(join(tmpdir(), "relavium-chat-bench-"))
    const runtime = ManagedRuntime.make(
      chatServiceLayer({ worktreesDir: join(dir, "worktrees") }).pipe(
        Layer.provideMerge(
          Layer.mergeAll(
            Store.layerSqlite({ filename: join(dir, "bench.db") }),
            ChatHub.layerMemory,
            modelOf(chunks),
            noPricing,
            ChatTools.layerRouter.pipe(Layer.provide(DaemonRouter.layerInProcess([]))),
            Worktrees.layerGit
          )
        ),
        Layer.provideMerge(NodeContext.layer)
      )
    )
    try {
      const warmups = 3
      const runs = (config.quick ? 5 : 30) * config.repeat
      const samples = await runtime.runPromise(
        Effect.gen(function* () {
          const chats = yield* ChatService
          const project = yield* chats.createProject(dir)
          const chat = yield* chats.createChat({ projectId: project.projectId, model: "openai/gpt-4o-mini", approvalMode: "auto", tools: [] })
          const turnMs: Array<number> = []
          for (let i = 0; i < warmups + runs; i++) {
            const started = performance.now()
            const turn = yield* chats.send(chat.chatId, `question ${i}`)
            const outcome = yield* turn.outcome
            if (outcome.status !== "completed") return yield* Effect.dieMessage(`turn ${i} ended ${outcome.status}`)
            if (i >= warmups) turnMs.push(performance.now() - started)
          }
          return turnMs
        })
      )
      out.push(
        {
          id: `chat.sqlite.turn.${chunks}`,
          label: `chat turn of ${chunks} streamed chunks (SQLite): whole turn`,
          unit: "ms",
          samples,
          sampleIs: "send → the turn at rest, wall time",
          warmups
        },
        {
          id: `chat.sqlite.turn.${chunks}.per-chunk`,
          label: `chat turn of ${chunks} streamed chunks (SQLite): per chunk`,
          unit: "µs",
          samples: samples.map((ms) => (ms * 1000) / chunks),
          sampleIs: "one turn's wall time / chunks",
          warmups
        }
      )
    } finally {
      await runtime.dispose()
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return measured(out)
}

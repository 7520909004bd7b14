/**
 * ModelCall scrubs known secrets from what a model streams even when a key
 * arrives one character per chunk across several coalesced batches: no batch
 * ever carries a piece of it, and the text, reasoning and tool arguments end
 * up with the key replaced.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import type { Llm } from "@relavium/domain"
import { KnownSecrets, LlmProvider, SCRUBBED } from "@relavium/ports"
import * as ModelCall from "../src/ModelCall.js"

const KEY = "sk-test-0123456789-abcdefghij"
const SHORT = "pw-12345678"

const providerOf = (chunks: ReadonlyArray<Llm.StreamChunk>): LlmProvider["Type"] =>
  LlmProvider.of({ stream: () => Stream.fromIterable(chunks) })

const request: Llm.LlmRequest = { provider: "test", model: "m", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }] }

const streamed = (chunks: ReadonlyArray<Llm.StreamChunk>) =>
  Effect.gen(function* () {
    const deltas: Array<string> = []
    const result = yield* ModelCall.stream(providerOf(chunks), request, (batch) =>
      Effect.sync(() => {
        for (const item of batch.items) if (item.type === "delta") deltas.push(`${item.kind}:${item.text}`)
      })
    )
    return { deltas, result }
  })

describe("ModelCall scrubbing", () => {
  it.effect("a key streamed one character per chunk over several batches never shows, not even in part", () =>
    Effect.gen(function* () {
      const text = `start ${KEY} middle ${SHORT} end ${KEY}`
      const chunks: Array<Llm.StreamChunk> = [
        { type: "reasoning_delta", id: "r1", text: `thinking about ${SHORT}` },
        ...[...text].map((c): Llm.StreamChunk => ({ type: "text_delta", text: c })),
        { type: "tool_call_start", id: "t1", name: "write_file" },
        { type: "tool_call_delta", id: "t1", argsJsonDelta: JSON.stringify({ path: "a", content: KEY }) },
        { type: "stop", stopReason: "stop", usage: { inputTokens: 1, outputTokens: 1 } }
      ]
      const { deltas, result } = yield* streamed(chunks).pipe(Effect.provide(KnownSecrets.layerMemory([KEY, SHORT, "short"])))
      assert.isAbove(deltas.length, 1)
      for (const delta of deltas) {
        assert.notInclude(delta, KEY.slice(0, 6))
        assert.notInclude(delta, SHORT.slice(0, 6))
      }
      assert.strictEqual(result.text, `start ${SCRUBBED} middle ${SCRUBBED} end ${SCRUBBED}`)
      assert.deepStrictEqual(result.parts.map((p) => p.kind), ["reasoning", "text"])
      assert.strictEqual(result.parts[0]!.text, `thinking about ${SCRUBBED}`)
      // What the batches handed over adds up to the final text: nothing is lost or doubled.
      assert.strictEqual(deltas.filter((d) => d.startsWith("text:")).map((d) => d.slice(5)).join(""), result.text)
      assert.deepStrictEqual(JSON.parse(result.toolCalls[0]!.argsJson), { path: "a", content: SCRUBBED })
      // Values too short to be keys are left alone.
      const plain = yield* streamed([{ type: "text_delta", text: "a short word" }]).pipe(Effect.provide(KnownSecrets.layerMemory(["short"])))
      assert.strictEqual(plain.result.text, "a short word")
    }))

  it.effect("tool output is scrubbed before it is bounded; without KnownSecrets nothing changes", () =>
    Effect.gen(function* () {
      const scrubbed = yield* ModelCall.toolOutput(`KEY=${KEY}\n`).pipe(Effect.provide(KnownSecrets.layerMemory([KEY])))
      assert.strictEqual(scrubbed, `KEY=${SCRUBBED}\n`)
      assert.strictEqual(yield* ModelCall.toolOutput(`KEY=${KEY}\n`), `KEY=${KEY}\n`)
      const { result } = yield* streamed([{ type: "text_delta", text: KEY }])
      assert.strictEqual(result.text, KEY)
    }))
})

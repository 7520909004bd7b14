/**
 * Live tool output (`tool:output`) is scrubbed of known secrets before it is
 * forwarded, even when a key is split across chunks, and the held-back end of
 * a chunk that only looked like the start of a key is sent at the end.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { KnownSecrets, SCRUBBED, type ToolOutputChunk } from "@relavium/ports"
import { makeOutputForwarder } from "../src/ToolOutputForward.js"

const KEY = "sk-live-0123456789-abcdefghij"

const forward = (pieces: ReadonlyArray<ToolOutputChunk>) =>
  Effect.gen(function* () {
    const sent: Array<ToolOutputChunk> = []
    const live = yield* makeOutputForwarder((chunk) => Effect.sync(() => sent.push(chunk)))
    for (const piece of pieces) yield* live.onOutput(piece)
    const beforeFlush = sent.length
    yield* live.flush
    return { sent, beforeFlush }
  })

const textOf = (sent: ReadonlyArray<ToolOutputChunk>, stream: ToolOutputChunk["stream"]) =>
  sent.filter((c) => c.stream === stream).map((c) => c.text).join("")

describe("live tool output forwarding", () => {
  it.effect("a key printed across chunks never shows, not even in part; everything else arrives in order", () =>
    Effect.gen(function* () {
      const out = `token=${KEY}\nnext line\n`
      const pieces: Array<ToolOutputChunk> = [...out].map((c) => ({ stream: "stdout", text: c }))
      pieces.splice(10, 0, { stream: "stderr", text: `warning: ${KEY.slice(0, 12)}` }, { stream: "stderr", text: `${KEY.slice(12)} done\n` })
      const { sent } = yield* forward(pieces).pipe(Effect.provide(KnownSecrets.layerMemory([KEY])))
      for (const chunk of sent) assert.notInclude(chunk.text, KEY.slice(0, 8))
      assert.strictEqual(textOf(sent, "stdout"), `token=${SCRUBBED}\nnext line\n`)
      assert.strictEqual(textOf(sent, "stderr"), `warning: ${SCRUBBED} done\n`)
    }))

  it.effect("only an end that could begin a key is held back, and it is sent at the end of the call", () =>
    Effect.gen(function* () {
      const { sent, beforeFlush } = yield* forward([
        { stream: "stdout", text: "line 1\n" },
        { stream: "stdout", text: "line 2\nsk-li" }
      ]).pipe(Effect.provide(KnownSecrets.layerMemory([KEY])))
      assert.deepStrictEqual(sent.slice(0, beforeFlush).map((c) => c.text), ["line 1\n", "line 2\n"])
      assert.strictEqual(textOf(sent, "stdout"), "line 1\nline 2\nsk-li")
    }))

  it.effect("without KnownSecrets chunks pass unchanged", () =>
    Effect.gen(function* () {
      const { sent, beforeFlush } = yield* forward([{ stream: "stdout", text: `a ${KEY}` }])
      assert.strictEqual(beforeFlush, 1)
      assert.deepStrictEqual(sent, [{ stream: "stdout", text: `a ${KEY}` }])
    }))

  it.effect("a chunk that cannot be stored is dropped with a warning; the tool call goes on", () =>
    Effect.gen(function* () {
      const live = yield* makeOutputForwarder(() => Effect.fail("the store is down"))
      yield* live.onOutput({ stream: "stdout", text: "x\n" })
      yield* live.flush
    }))
})

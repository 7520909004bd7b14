import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Coalescer, COALESCE_BYTES, LiveBound, type LiveChunk, MAX_LIVE_BYTES, MAX_LIVE_CHUNKS } from "../src/LiveOutput.js"
import { waitFor } from "./support.js"

const collecting = () => {
  const sent: Array<LiveChunk> = []
  return { sent, coalescer: new Coalescer((chunk) => sent.push(chunk)) }
}

describe("Coalescer", () => {
  it("joins pieces printed together into one chunk, sent when flushed", () => {
    const { sent, coalescer } = collecting()
    for (let i = 0; i < 100; i++) coalescer.push("stdout", `line ${i}\n`)
    assert.deepStrictEqual(sent, [])
    coalescer.flush()
    assert.deepStrictEqual(sent, [{ stream: "stdout", text: Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join("") }])
    coalescer.flush()
    assert.strictEqual(sent.length, 1, "nothing pending: nothing sent")
  })

  it("sends a chunk as soon as it reaches 8 KiB, and when the other stream prints", () => {
    const { sent, coalescer } = collecting()
    coalescer.push("stdout", "a".repeat(COALESCE_BYTES - 1))
    assert.strictEqual(sent.length, 0)
    coalescer.push("stdout", "bc")
    assert.deepStrictEqual(sent.map((c) => c.text.length), [COALESCE_BYTES, 1])
    coalescer.push("stdout", "out\n")
    coalescer.push("stderr", "err\n")
    coalescer.push("stdout", "more\n")
    coalescer.flush()
    assert.deepStrictEqual(sent.slice(2), [
      { stream: "stdout", text: "out\n" },
      { stream: "stderr", text: "err\n" },
      { stream: "stdout", text: "more\n" }
    ])
    coalescer.close()
  })

  it("a piece larger than a chunk goes out in chunks of at most 8 KiB, never splitting a character", () => {
    const { sent, coalescer } = collecting()
    const text = "€".repeat(7000)
    coalescer.push("stderr", text)
    assert.isAtLeast(sent.length, 3)
    for (const chunk of sent) assert.isAtMost(Buffer.byteLength(chunk.text), COALESCE_BYTES)
    assert.strictEqual(sent.map((c) => c.text).join(""), text)
    assert.isTrue(sent.every((c) => c.stream === "stderr"))
  })

  it.live("sends what is pending by itself after a short while (no flush needed)", () =>
    Effect.gen(function* () {
      const { sent, coalescer } = collecting()
      coalescer.push("stdout", "one\n")
      coalescer.push("stdout", "two\n")
      yield* waitFor(() => sent.length === 1, 2000, "the timed flush")
      assert.deepStrictEqual(sent, [{ stream: "stdout", text: "one\ntwo\n" }])
    }))

  it.live("close drops what is pending and stops the timer", () =>
    Effect.gen(function* () {
      const { sent, coalescer } = collecting()
      coalescer.push("stdout", "never\n")
      coalescer.close()
      coalescer.flush()
      assert.deepStrictEqual(sent, [])
    }))
})

describe("LiveBound", () => {
  it("forwards up to the cap, cuts the chunk that passes it (never inside a character), then one note and nothing", () => {
    const bound = new LiveBound(10)
    assert.deepStrictEqual(bound.admit({ stream: "stdout", text: "12345678" }), [{ stream: "stdout", text: "12345678" }])
    const cut = bound.admit({ stream: "stderr", text: "é€xyz" })
    assert.strictEqual(cut.length, 2)
    assert.deepStrictEqual(cut[0], { stream: "stderr", text: "é" })
    assert.match(cut[1]!.text, /\[live output truncated after 10 bytes; the command keeps running/)
    assert.deepStrictEqual(bound.admit({ stream: "stdout", text: "later" }), [])
  })

  it("at most maxChunks chunks are forwarded, the last one being the note", () => {
    const bound = new LiveBound(1024 * 1024, 5)
    const forwarded = Array.from({ length: 20 }, (_, i) => bound.admit({ stream: "stdout", text: `.${i}` })).flat()
    assert.strictEqual(forwarded.length, 5)
    assert.deepStrictEqual(forwarded.slice(0, 4).map((c) => c.text), [".0", ".1", ".2", ".3"])
    assert.match(forwarded[4]!.text, /\[live output truncated after 5 chunks/)
  })

  it("the default cap is the model's 50 KiB", () => {
    const bound = new LiveBound()
    assert.strictEqual(MAX_LIVE_BYTES, 50 * 1024)
    assert.strictEqual(MAX_LIVE_CHUNKS, 1000)
    assert.strictEqual(bound.admit({ stream: "stdout", text: "x".repeat(MAX_LIVE_BYTES) }).length, 1)
    assert.strictEqual(bound.admit({ stream: "stdout", text: "x" }).length, 1, "only the note")
  })
})

import { FileSystem } from "@effect/platform"
import { SystemError } from "@effect/platform/Error"
import { describe, it, assert } from "@effect/vitest"
import { KnownSecrets, LlmProvider } from "@relavium/ports"
import type { Llm } from "@relavium/domain"
import { Chunk, Effect, Either, Fiber, Layer, Stream, TestClock } from "effect"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Cassette } from "../src/index.js"

const usage = { inputTokens: 10, outputTokens: 4 }

const twoCalls: Llm.Cassette = {
  schema_version: "1.0",
  provider: "anthropic",
  model: "claude-sonnet-4",
  calls: [
    [
      { type: "text_delta", text: "Hello, " },
      { type: "text_delta", text: "world." },
      { type: "stop", stopReason: "stop", usage }
    ],
    [
      { type: "text_delta", text: "Second." },
      { type: "stop", stopReason: "stop", usage }
    ]
  ]
}

const request = (provider = "anthropic", model = "claude-sonnet-4"): Llm.LlmRequest => ({
  provider,
  model,
  messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }]
})

const textOf = (chunks: ReadonlyArray<Llm.StreamChunk>): string =>
  chunks.map((chunk) => (chunk.type === "text_delta" ? chunk.text : "")).join("")

const runCall = (req: Llm.LlmRequest = request()) =>
  Effect.flatMap(LlmProvider, (provider) => Stream.runCollect(provider.stream(req))).pipe(
    Effect.map(Chunk.toReadonlyArray)
  )

const decodeError = (text: string, source = "review.cassette.json") =>
  Effect.flip(Cassette.loadCassette(text, source))

describe("loadCassette", () => {
  it.effect("decodes a valid cassette", () =>
    Effect.gen(function*() {
      const cassette = yield* Cassette.loadCassette(JSON.stringify(twoCalls), "ok.json")
      assert.deepStrictEqual(cassette, twoCalls)
    }))

  it.effect("names line and column of invalid JSON", () =>
    Effect.gen(function*() {
      const error = yield* decodeError(`{\n  "schema_version": "1.0",\n  "provider" "x"\n}`)
      assert.strictEqual(error._tag, "CassetteError")
      assert.strictEqual(error.source, "review.cassette.json")
      assert.strictEqual(error.line, 3)
      assert.strictEqual(error.column, 14)
      assert.match(error.message, /^review\.cassette\.json:3:14: invalid JSON: /)
      assert.notInclude(error.message, "position")
    }))

  it.effect("places truncated JSON at the end of the text", () =>
    Effect.gen(function*() {
      const error = yield* decodeError(`{\n  "calls": [`)
      assert.strictEqual(error.line, 2)
      assert.strictEqual(error.column, 13)
    }))

  it.effect("says so when the file is empty", () =>
    Effect.gen(function*() {
      const error = yield* decodeError("  \n")
      assert.strictEqual(error.message, "review.cassette.json: the cassette is empty")
    }))

  it.effect("rejects another schema_version", () =>
    Effect.gen(function*() {
      const error = yield* decodeError(JSON.stringify({ ...twoCalls, schema_version: "2.0" }))
      assert.strictEqual(error.path, "schema_version")
      assert.strictEqual(error.message, `review.cassette.json: schema_version: expected "1.0", got "2.0"`)
    }))

  it.effect("locates a chunk of an unknown type and lists the allowed ones", () =>
    Effect.gen(function*() {
      const bad = { ...twoCalls, calls: [twoCalls.calls[0], [{ type: "text", text: "x" }]] }
      const error = yield* decodeError(JSON.stringify(bad))
      assert.strictEqual(error.path, "calls[1][0].type")
      assert.strictEqual(
        error.message,
        `review.cassette.json: calls[1][0].type: expected one of text_delta, tool_call_start, tool_call_delta, ` +
          `tool_call_end, reasoning_start, reasoning_delta, reasoning_end, stop, attempt, error, got "text"`
      )
    }))

  it.effect("locates a missing field and a bad stop reason", () =>
    Effect.gen(function*() {
      const missing = yield* decodeError(JSON.stringify({ ...twoCalls, calls: [[{ type: "text_delta" }]] }))
      assert.strictEqual(missing.message, "review.cassette.json: calls[0][0].text: required field is missing")
      const reason = yield* decodeError(
        JSON.stringify({ ...twoCalls, calls: [[{ type: "stop", stopReason: "done", usage }]] })
      )
      assert.strictEqual(reason.path, "calls[0][0].stopReason")
      assert.include(reason.message, "expected one of stop, length, tool_use, content_filter, error, got \"done\"")
    }))

  it.effect("describes a wrong shape briefly", () =>
    Effect.gen(function*() {
      const root = yield* decodeError("[1]")
      assert.strictEqual(root.path, "")
      assert.strictEqual(root.message, "review.cassette.json: expected an object, got [1]")
      const chunk = yield* decodeError(JSON.stringify({ ...twoCalls, calls: [["hello"]] }))
      assert.strictEqual(chunk.message, `review.cassette.json: calls[0][0]: expected an object, got "hello"`)
    }))
})

describe("layerCassette", () => {
  it.effect("replays the recorded calls in order", () =>
    Effect.gen(function*() {
      const first = yield* runCall()
      const second = yield* runCall()
      assert.deepStrictEqual(first, twoCalls.calls[0])
      assert.strictEqual(textOf(second), "Second.")
    }).pipe(Effect.provide(Cassette.layerCassette(twoCalls))))

  it.effect("gives concurrent calls distinct recordings", () =>
    Effect.gen(function*() {
      const texts = yield* Effect.all([runCall(), runCall()], { concurrency: "unbounded" }).pipe(
        Effect.map((calls) => calls.map(textOf).sort())
      )
      assert.deepStrictEqual(texts, ["Hello, world.", "Second."])
    }).pipe(Effect.provide(Cassette.layerCassette(twoCalls))))

  it.effect("turns an error chunk into an LlmError after the chunks before it", () =>
    Effect.gen(function*() {
      const cassette: Llm.Cassette = {
        schema_version: "1.0",
        provider: "openai",
        calls: [[
          { type: "text_delta", text: "partial" },
          {
            type: "error",
            error: { kind: "rate_limit", retryable: true, provider: "openai", message: "slow down" }
          },
          { type: "text_delta", text: "never" }
        ]]
      }
      const results = yield* Effect.flatMap(LlmProvider, (provider) =>
        Stream.runCollect(Stream.either(provider.stream(request("openai", "gpt-4o"))))
      ).pipe(Effect.provide(Cassette.layerCassette(cassette)), Effect.map(Chunk.toReadonlyArray))
      assert.strictEqual(results.length, 2)
      assert.deepStrictEqual(results[0], Either.right({ type: "text_delta", text: "partial" } as const))
      const failure = results[1]
      assert.isTrue(failure !== undefined && Either.isLeft(failure))
      if (failure !== undefined && Either.isLeft(failure)) {
        assert.strictEqual(failure.left._tag, "LlmError")
        assert.strictEqual(failure.left.kind, "rate_limit")
        assert.isTrue(failure.left.retryable)
        assert.strictEqual(failure.left.message, "slow down")
        assert.strictEqual(failure.left.model, "gpt-4o")
      }
    }))

  it.effect("fails a call beyond the recorded ones", () =>
    Effect.gen(function*() {
      yield* runCall()
      yield* runCall()
      const error = yield* Effect.flip(runCall())
      assert.strictEqual(error.kind, "bad_request")
      assert.isFalse(error.retryable)
      assert.strictEqual(error.message, "the cassette has only 2 recorded calls; call 3 was made")
    }).pipe(Effect.provide(Cassette.layerCassette(twoCalls))))

  it.effect("replays for another provider or model unless strict", () =>
    Effect.gen(function*() {
      const lenient = yield* runCall(request("openai", "gpt-4o")).pipe(
        Effect.provide(Cassette.layerCassette(twoCalls))
      )
      assert.strictEqual(textOf(lenient), "Hello, world.")

      const strict = Cassette.layerCassette(twoCalls, { strict: true })
      const wrongModel = yield* Effect.flip(runCall(request("anthropic", "claude-opus-4"))).pipe(
        Effect.provide(strict)
      )
      assert.strictEqual(wrongModel.kind, "bad_request")
      assert.include(wrongModel.message, "recorded for anthropic/claude-sonnet-4")
      assert.include(wrongModel.message, "anthropic/claude-opus-4")
      const matching = yield* runCall().pipe(Effect.provide(strict))
      assert.strictEqual(textOf(matching), "Hello, world.")
    }))

  it.effect("paces chunks by tokenDelayMs", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(runCall())
      yield* TestClock.adjust("20 millis")
      assert.isTrue((yield* Fiber.poll(fiber))._tag === "None")
      yield* TestClock.adjust("10 millis")
      const chunks = yield* Fiber.join(fiber)
      assert.strictEqual(chunks.length, 3)
    }).pipe(Effect.provide(Cassette.layerCassette(twoCalls, { tokenDelayMs: 10 }))))
})

describe("layerCassetteFile", () => {
  const fileSystem = (files: Readonly<Record<string, string>>) =>
    FileSystem.layerNoop({
      readFileString: (path) => {
        const text = files[path]
        return text === undefined
          ? Effect.fail(
            new SystemError({
              reason: "NotFound",
              module: "FileSystem",
              method: "readFileString",
              pathOrDescriptor: path,
              description: "no such file"
            })
          )
          : Effect.succeed(text)
      }
    })

  it.effect("replays a cassette read from a file", () =>
    Effect.gen(function*() {
      const chunks = yield* runCall()
      assert.strictEqual(textOf(chunks), "Hello, world.")
    }).pipe(
      Effect.provide(
        Cassette.layerCassetteFile("review.cassette.json").pipe(
          Layer.provide(fileSystem({ "review.cassette.json": JSON.stringify(twoCalls) }))
        )
      )
    ))

  it.effect("reports an unreadable file as a CassetteError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Layer.build(Cassette.layerCassetteFile("missing.json")).pipe(Effect.scoped, Effect.provide(fileSystem({})))
      )
      assert.strictEqual(error._tag, "CassetteError")
      assert.strictEqual(error.source, "missing.json")
      assert.match(error.message, /^missing\.json: cannot read the cassette: /)
    }))
})

describe("example cassettes", () => {
  const load = (name: string) =>
    Cassette.loadCassette(
      readFileSync(fileURLToPath(new URL(`../../../examples/cassettes/${name}`, import.meta.url)), "utf8"),
      name
    )

  const lastOf = (call: ReadonlyArray<Llm.StreamChunk> | undefined) => call?.[call.length - 1]

  it.effect("code-review: two text calls, each ending in a stop with usage", () =>
    Effect.gen(function*() {
      const cassette = yield* load("code-review.cassette.json")
      assert.strictEqual(cassette.calls.length, 2)
      for (const call of cassette.calls) {
        assert.isTrue(call.slice(0, -1).every((chunk) => chunk.type === "text_delta"))
        const stop = lastOf(call)
        assert.isTrue(stop?.type === "stop" && stop.stopReason === "stop" && stop.usage.outputTokens > 0)
      }
    }))

  it.effect("tool-agent: a read_file tool call, then an answer", () =>
    Effect.gen(function*() {
      const cassette = yield* load("tool-agent.cassette.json")
      assert.strictEqual(cassette.calls.length, 2)
      const first = cassette.calls[0] ?? []
      const args = first.flatMap((chunk) => (chunk.type === "tool_call_delta" ? [chunk.argsJsonDelta] : [])).join("")
      assert.deepStrictEqual(JSON.parse(args), { path: "notes.txt" })
      assert.isTrue(first.some((chunk) => chunk.type === "tool_call_start" && chunk.name === "read_file"))
      const firstStop = lastOf(first)
      assert.isTrue(firstStop?.type === "stop" && firstStop.stopReason === "tool_use")
      const secondStop = lastOf(cassette.calls[1])
      assert.isTrue(secondStop?.type === "stop" && secondStop.stopReason === "stop")
    }))
})

describe("layerRecording", () => {
  it.effect("writes each call's chunks, an error as its last chunk, and no known secret; the file replays the same", () =>
    Effect.gen(function*() {
      const written: Array<string> = []
      const files = FileSystem.layerNoop({
        writeFileString: (_path, text) => Effect.sync(() => void written.push(text))
      })
      const secret = "sk-recorded-secret-0123456789"
      const live: Llm.Cassette = {
        ...twoCalls,
        calls: [
          [{ type: "text_delta", text: `the key is ${secret}` }, { type: "stop", stopReason: "stop", usage }],
          [{ type: "error", error: { kind: "overloaded", retryable: false, provider: "anthropic", message: "busy" } }]
        ]
      }
      const recording = Cassette.layerRecording("out.cassette.json").pipe(
        Layer.provide(Layer.mergeAll(Cassette.layerCassette(live), files, KnownSecrets.layerMemory([secret])))
      )
      const [first, second] = yield* Effect.gen(function*() {
        const a = yield* runCall()
        const b = yield* Effect.either(runCall())
        return [a, b] as const
      }).pipe(Effect.provide(recording))
      assert.strictEqual(textOf(first), `the key is ${secret}`)
      assert.isTrue(Either.isLeft(second))
      const text = written.at(-1)!
      assert.notInclude(text, secret)
      const replayed = yield* Cassette.loadCassette(text, "out.cassette.json")
      assert.strictEqual(replayed.provider, "anthropic")
      assert.strictEqual(replayed.model, "claude-sonnet-4")
      assert.deepStrictEqual(replayed.calls[0], [
        { type: "text_delta", text: "the key is [redacted secret]" },
        { type: "stop", stopReason: "stop", usage }
      ])
      assert.deepStrictEqual(replayed.calls[1], [
        { type: "error", error: { kind: "overloaded", retryable: false, provider: "anthropic", message: "busy" } }
      ])
    }))
})

/**
 * The contract every `LlmProvider` layer must meet (the cassette replayer, and
 * the real provider layer speaking each vendor's wire format to a local fake
 * server). A layer is made from a script of provider-neutral turns — call N
 * answers with turn N — which each harness renders in its own medium
 * (cassette chunks, recorded-shape SSE frames). The stream a caller sees must
 * be the same: text deltas, tool calls as start / argument deltas / end, one
 * `stop` with the usage last, and failures as an `LlmError` that never holds a key.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, type Layer, Option, Schema, Stream } from "effect"
import { Llm } from "@relavium/domain"
import { LlmProvider } from "../LlmProvider.js"

export interface ContractToolCall {
  readonly id: string
  readonly name: string
  readonly args: Readonly<Record<string, unknown>>
}

/** One scripted model answer, provider-neutral. */
export type ContractTurn =
  | { readonly kind: "text"; readonly text: string; readonly usage: { readonly inputTokens: number; readonly outputTokens: number } }
  | {
      readonly kind: "tool_calls"
      readonly calls: ReadonlyArray<ContractToolCall>
      readonly usage: { readonly inputTokens: number; readonly outputTokens: number }
    }
  /** The provider refuses the key (HTTP 401 or its recorded equivalent). */
  | { readonly kind: "auth_error" }

export interface LlmProviderContractOptions {
  /** The provider and model the requests name. */
  readonly provider: string
  readonly model: string
  /** The key the layer sends, when it sends one: it must appear in no error. */
  readonly key?: string | undefined
}

const request = (options: LlmProviderContractOptions, text: string): Llm.LlmRequest => ({
  provider: options.provider,
  model: options.model,
  messages: [{ role: "user", content: [{ type: "text", text }] }],
  tools: [{ name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } } } }],
  maxAttempts: 1
})

const isStreamChunk = Schema.is(Llm.StreamChunk)

const collect = (stream: Stream.Stream<Llm.StreamChunk, Llm.LlmError>) =>
  Stream.runCollect(stream).pipe(Effect.map(Chunk.toReadonlyArray))

const textOf = (chunks: ReadonlyArray<Llm.StreamChunk>) =>
  chunks.flatMap((c) => (c.type === "text_delta" ? [c.text] : [])).join("")

/** The chunks a caller acts on (retry notices are the layer's business). */
const output = (chunks: ReadonlyArray<Llm.StreamChunk>) => chunks.filter((c) => c.type !== "attempt")

const weather = (id: string, city: string): ContractToolCall => ({ id, name: "get_weather", args: { city } })

export const contractTurns = {
  hello: { kind: "text", text: "Hello, world!", usage: { inputTokens: 1200, outputTokens: 300 } },
  twoTools: {
    kind: "tool_calls",
    calls: [weather("call_weather_paris", "Paris"), weather("call_weather_rome", "Rome")],
    usage: { inputTokens: 80, outputTokens: 40 }
  },
  authError: { kind: "auth_error" }
} satisfies Record<string, ContractTurn>

export const llmProviderContract = (
  name: string,
  make: (turns: ReadonlyArray<ContractTurn>) => Layer.Layer<LlmProvider, unknown>,
  options: LlmProviderContractOptions
) =>
  describe(`LlmProvider contract: ${name}`, () => {
    it.live("streams a text turn: the deltas join to the text, then one stop with the usage, last", () =>
      Effect.gen(function* () {
        const provider = yield* LlmProvider
        const chunks = output(yield* collect(provider.stream(request(options, "greet me"))))
        for (const chunk of chunks) assert.isTrue(isStreamChunk(chunk), `not a StreamChunk: ${JSON.stringify(chunk)}`)
        assert.strictEqual(textOf(chunks), "Hello, world!")
        const stops = chunks.filter((c) => c.type === "stop")
        assert.strictEqual(stops.length, 1)
        assert.strictEqual(chunks.at(-1), stops[0])
        const stop = stops[0] as Extract<Llm.StreamChunk, { type: "stop" }>
        assert.strictEqual(stop.stopReason, "stop")
        assert.strictEqual(stop.usage.inputTokens, 1200)
        assert.strictEqual(stop.usage.outputTokens, 300)
      }).pipe(Effect.provide(make([contractTurns.hello])), Effect.timeout("20 seconds")))

    it.live("streams tool calls: start, argument deltas and end per call id; the arguments parse; stop is tool_use", () =>
      Effect.gen(function* () {
        const provider = yield* LlmProvider
        const chunks = output(yield* collect(provider.stream(request(options, "weather in Paris and Rome?"))))
        const ids = chunks.flatMap((c) => (c.type === "tool_call_start" ? [c.id] : []))
        assert.strictEqual(ids.length, 2)
        assert.strictEqual(new Set(ids).size, 2)
        const cities = ids.map((id) => {
          const start = chunks.findIndex((c) => c.type === "tool_call_start" && c.id === id)
          const end = chunks.findIndex((c) => c.type === "tool_call_end" && c.id === id)
          assert.isAbove(end, start, `tool call ${id} ends after it starts`)
          const started = chunks[start] as Extract<Llm.StreamChunk, { type: "tool_call_start" }>
          assert.strictEqual(started.name, "get_weather")
          const json = chunks.flatMap((c) => (c.type === "tool_call_delta" && c.id === id ? [c.argsJsonDelta] : [])).join("")
          return (JSON.parse(json) as { city: string }).city
        })
        assert.deepStrictEqual(cities, ["Paris", "Rome"])
        const stop = chunks.at(-1)
        assert.strictEqual(stop?.type, "stop")
        assert.strictEqual((stop as Extract<Llm.StreamChunk, { type: "stop" }>).stopReason, "tool_use")
        assert.strictEqual((stop as Extract<Llm.StreamChunk, { type: "stop" }>).usage.outputTokens, 40)
      }).pipe(Effect.provide(make([contractTurns.twoTools])), Effect.timeout("20 seconds")))

    it.live("call N is answered with turn N", () =>
      Effect.gen(function* () {
        const provider = yield* LlmProvider
        const first = output(yield* collect(provider.stream(request(options, "one"))))
        const second = output(yield* collect(provider.stream(request(options, "two"))))
        assert.strictEqual(textOf(first), "Hello, world!")
        assert.isFalse(second.some((c) => c.type === "text_delta" && c.text.includes("Hello")))
        assert.strictEqual(second.filter((c) => c.type === "tool_call_start").length, 2)
      }).pipe(Effect.provide(make([contractTurns.hello, contractTurns.twoTools])), Effect.timeout("20 seconds")))

    it.live("a refused key fails the stream with an LlmError: auth, not retryable, naming the provider, holding no key", () =>
      Effect.gen(function* () {
        const provider = yield* LlmProvider
        const exit = yield* Effect.exit(collect(provider.stream(request(options, "hi"))))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        if (Option.isNone(error)) return assert.fail(`expected an LlmError, got ${String(exit)}`)
        const e = error.value
        assert.instanceOf(e, Llm.LlmError)
        assert.strictEqual(e.kind, "auth")
        assert.isFalse(e.retryable)
        assert.strictEqual(e.provider, options.provider)
        if (options.key !== undefined) {
          assert.notInclude(e.message, options.key)
          assert.notInclude(JSON.stringify(e), options.key)
        }
      }).pipe(Effect.provide(make([contractTurns.authError])), Effect.timeout("20 seconds")))
  })

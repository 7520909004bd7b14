/**
 * The live providers against local servers that replay recorded wire shapes:
 * streaming text, tools, structured output, reasoning, retries, fallback,
 * cuts, bad keys, timeouts and malformed chunks — and, last, a scan of every
 * chunk, error and log line for the keys the tests set.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { KeyStore, LlmProvider } from "@relavium/ports"
import { Llm } from "@relavium/domain"
import { Effect, Either, Layer, Logger, Stream } from "effect"
import { Providers } from "../src/index.js"
import { parseRetryAfter } from "../src/internal/errors.js"
import { type Reply, startServer } from "./fixtures/server.js"
import { anthropic, gemini, openAiChat, openAiResponses } from "./fixtures/wire.js"

const KEYS = {
  openai: "sk-test-OPENAI-7f3a9c1e5b2d4f60",
  anthropic: "sk-ant-api03-TESTKEY-anthropic-93be1f",
  gemini: "AIzaSyTEST-gemini-key-0123456789",
  deepseek: "sk-test-DEEPSEEK-2c4e6a8b"
}

/** Everything the tests saw, scanned for keys at the end. */
const seen: Array<string> = []
const logs: Array<string> = []
const captureLogs = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ annotations, cause, message }) => {
    logs.push(`${JSON.stringify(message)} ${JSON.stringify([...annotations])} ${String(cause)}`)
  })
)

const userPrompt: Array<Llm.LlmMessage> = [{ role: "user", content: [{ type: "text", text: "Hello?" }] }]

const providersAt = (baseUrls: Record<string, string>, config: Providers.ProvidersConfig = {}, keys: Record<string, string> = KEYS) =>
  Providers.layer({
    backoffBaseMs: 5,
    firstByteTimeoutMs: 2_000,
    ...config,
    providers: Object.fromEntries(Object.entries(baseUrls).map(([p, baseUrl]) => [p, { ...config.providers?.[p], baseUrl }]))
  }).pipe(Layer.provide(Layer.mergeAll(NodeHttpClient.layerUndici, KeyStore.layerMemory(keys))), Layer.provide(captureLogs))

/** Runs a request; returns the chunks that arrived and how the stream ended. */
const run = (request: Partial<Llm.LlmRequest> & { provider: string; model: string }, layer: Layer.Layer<LlmProvider>) =>
  Effect.gen(function* () {
    const llm = yield* LlmProvider
    const chunks: Array<Llm.StreamChunk> = []
    const result = yield* llm.stream({ messages: userPrompt, ...request }).pipe(
      Stream.runForEach((chunk) => Effect.sync(() => chunks.push(chunk))),
      Effect.either
    )
    seen.push(JSON.stringify(chunks))
    if (Either.isLeft(result)) seen.push(JSON.stringify(result.left), result.left.message)
    return { chunks, error: Either.isLeft(result) ? result.left : undefined }
  }).pipe(Effect.provide(Layer.merge(layer, captureLogs)))

const textOf = (chunks: ReadonlyArray<Llm.StreamChunk>) =>
  chunks.flatMap((c) => (c.type === "text_delta" ? [c.text] : [])).join("")
const ofType = <T extends Llm.StreamChunk["type"]>(chunks: ReadonlyArray<Llm.StreamChunk>, type: T) =>
  chunks.filter((c): c is Extract<Llm.StreamChunk, { type: T }> => c.type === type)
const stopOf = (chunks: ReadonlyArray<Llm.StreamChunk>) => ofType(chunks, "stop")[0]
const toolArgs = (chunks: ReadonlyArray<Llm.StreamChunk>) => {
  const calls = new Map<string, { name: string; args: string }>()
  for (const c of chunks) {
    if (c.type === "tool_call_start") calls.set(c.id, { name: c.name, args: "" })
    if (c.type === "tool_call_delta") calls.get(c.id)!.args += c.argsJsonDelta
  }
  return [...calls.entries()].map(([id, c]) => ({ id, name: c.name, args: JSON.parse(c.args) }))
}

const json = (status: number, body: string, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  frames: [body]
})

describe("OpenAI chat completions", () => {
  it.scopedLive("streams text with usage: cached and reasoning tokens", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: openAiChat.text() }])
      const { chunks, error } = yield* run({ provider: "openai", model: "gpt-4o-mini", maxTokens: 100, temperature: 0.2 }, providersAt({ openai: server.url }))
      assert.isUndefined(error)
      assert.strictEqual(textOf(chunks), "Hello, world!")
      assert.deepStrictEqual(stopOf(chunks), {
        type: "stop",
        stopReason: "stop",
        usage: { inputTokens: 1200, outputTokens: 300, cacheReadTokens: 1024, reasoningTokens: 128 }
      })
      const req = server.requests[0]!
      assert.strictEqual(req.url, "/chat/completions")
      assert.strictEqual(req.headers.authorization, `Bearer ${KEYS.openai}`)
      assert.deepStrictEqual(req.body.stream_options, { include_usage: true })
      assert.strictEqual(req.body.stream, true)
      assert.strictEqual(req.body.max_completion_tokens, 100)
    }))

  it.scopedLive("two tool calls in one turn, arguments streamed by index", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: openAiChat.twoTools() }])
      const tools = [{ name: "get_weather", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } }]
      const { chunks, error } = yield* run({ provider: "openai", model: "gpt-4o-mini", tools }, providersAt({ openai: server.url }))
      assert.isUndefined(error)
      assert.deepStrictEqual(toolArgs(chunks), [
        { id: "call_weather_paris", name: "get_weather", args: { city: "Paris" } },
        { id: "call_weather_rome", name: "get_weather", args: { city: "Rome" } }
      ])
      assert.strictEqual(ofType(chunks, "tool_call_end").length, 2)
      assert.strictEqual(stopOf(chunks)?.stopReason, "tool_use")
      assert.deepStrictEqual(server.requests[0]!.body.tools[0], { type: "function", function: tools[0] })
    }))

  it.scopedLive("structured output: json_schema response_format", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: openAiChat.json("{\"verdict\":\"approve\",\"score\":9}") }])
      const schema = { type: "object", properties: { verdict: { type: "string" }, score: { type: "integer" } }, required: ["verdict"] }
      const { chunks } = yield* run({ provider: "openai", model: "gpt-4o-mini", responseFormat: { type: "json", schema } }, providersAt({ openai: server.url }))
      assert.deepStrictEqual(JSON.parse(textOf(chunks)), { verdict: "approve", score: 9 })
      assert.deepStrictEqual(server.requests[0]!.body.response_format, { type: "json_schema", json_schema: { name: "output", schema, strict: false } })
    }))

  it.scopedLive("DeepSeek: reasoning_content becomes reasoning chunks; json_object for structured output", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: openAiChat.deepseekReasoning }])
      const { chunks } = yield* run(
        { provider: "deepseek", model: "deepseek-reasoner", responseFormat: { type: "json", schema: { type: "object" } } },
        providersAt({ deepseek: server.url })
      )
      assert.strictEqual(ofType(chunks, "reasoning_delta").map((c) => c.text).join(""), "The user wants a greeting.")
      assert.strictEqual(ofType(chunks, "reasoning_end").length, 1)
      assert.strictEqual(textOf(chunks), "Hi!")
      assert.deepStrictEqual(stopOf(chunks)?.usage, { inputTokens: 20, outputTokens: 45, cacheReadTokens: 0, reasoningTokens: 40 })
      assert.deepStrictEqual(server.requests[0]!.body.response_format, { type: "json_object" })
      assert.strictEqual(server.requests[0]!.body.max_completion_tokens, undefined)
    }))

  it.scopedLive("unknown model: 404 is a typed bad_request with provider, model and status, no retry", () =>
    Effect.gen(function* () {
      const server = yield* startServer([json(404, openAiChat.modelNotFoundBody)])
      const { error } = yield* run({ provider: "openai", model: "gpt-9-turbo" }, providersAt({ openai: server.url }))
      assert.include(error, { kind: "bad_request", provider: "openai", model: "gpt-9-turbo", status: 404, retryable: false })
      assert.strictEqual(server.requests.length, 1)
    }))

  it.scopedLive("a malformed JSON chunk is a typed error, not a crash or a hang", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: [openAiChat.text()[0]!, "data: {\"choices\": [{\"delta\": {\"content\": \"Hel\n\n"] }])
      const { error } = yield* run({ provider: "openai", model: "gpt-4o-mini" }, providersAt({ openai: server.url }))
      assert.include(error, { kind: "unknown", provider: "openai", model: "gpt-4o-mini", retryable: false })
      assert.match(error!.message, /malformed openai stream event/)
    }))
})

describe("OpenAI Responses API", () => {
  it.scopedLive("reasoning summary, text and a function call; usage from response.completed", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: openAiResponses.reasoningTextAndTool }])
      const { chunks, error } = yield* run(
        { provider: "openai-responses", model: "o4-mini", reasoningEffort: "medium", system: "Be brief.", tools: [{ name: "get_weather", parameters: { type: "object" } }] },
        providersAt({ "openai-responses": server.url }, {}, { openai: KEYS.openai })
      )
      assert.isUndefined(error)
      assert.deepStrictEqual(
        chunks.map((c) => c.type),
        ["reasoning_start", "reasoning_delta", "reasoning_end", "text_delta", "tool_call_start", "tool_call_delta", "tool_call_delta", "tool_call_end", "stop"]
      )
      assert.deepStrictEqual(toolArgs(chunks), [{ id: "call_Xy1", name: "get_weather", args: { city: "Paris" } }])
      assert.deepStrictEqual(stopOf(chunks), {
        type: "stop",
        stopReason: "tool_use",
        usage: { inputTokens: 310, outputTokens: 190, cacheReadTokens: 256, reasoningTokens: 128 }
      })
      const body = server.requests[0]!.body
      assert.strictEqual(server.requests[0]!.url, "/responses")
      assert.deepStrictEqual(body.reasoning, { effort: "medium", summary: "auto" })
      assert.strictEqual(body.instructions, "Be brief.")
      assert.strictEqual(server.requests[0]!.headers.authorization, `Bearer ${KEYS.openai}`)
    }))
})

describe("Anthropic messages", () => {
  it.scopedLive("thinking then text; cache reads counted in input", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: anthropic.thinkingThenText }])
      const { chunks, error } = yield* run({ provider: "anthropic", model: "claude-sonnet-4-5", reasoningEffort: "low", system: "sys" }, providersAt({ anthropic: server.url }))
      assert.isUndefined(error)
      assert.strictEqual(ofType(chunks, "reasoning_delta").map((c) => c.text).join(""), "The user greets me; answer briefly.")
      assert.strictEqual(textOf(chunks), "Hello there!")
      assert.deepStrictEqual(stopOf(chunks), { type: "stop", stopReason: "stop", usage: { inputTokens: 2025, outputTokens: 57, cacheReadTokens: 2000 } })
      const req = server.requests[0]!
      assert.strictEqual(req.url, "/messages")
      assert.strictEqual(req.headers["x-api-key"], KEYS.anthropic)
      assert.strictEqual(req.headers["anthropic-version"], "2023-06-01")
      assert.deepStrictEqual(req.body.thinking, { type: "enabled", budget_tokens: 1024 })
      assert.strictEqual(req.body.system, "sys")
    }))

  it.scopedLive("two tool_use blocks with input_json_delta; tool results go back as a user turn", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: anthropic.twoTools }])
      const messages: Array<Llm.LlmMessage> = [
        ...userPrompt,
        { role: "assistant", content: [{ type: "reasoning", text: "hidden" }, { type: "tool_call", id: "toolu_0", name: "get_weather", args: { city: "Oslo" } }] },
        { role: "tool", content: [{ type: "tool_result", id: "toolu_0", name: "get_weather", result: "snow" }] }
      ]
      const { chunks } = yield* run({ provider: "anthropic", model: "claude-sonnet-4-5", messages, tools: [{ name: "get_weather", parameters: { type: "object" } }] }, providersAt({ anthropic: server.url }))
      assert.strictEqual(textOf(chunks), "Checking both.")
      assert.deepStrictEqual(toolArgs(chunks), [
        { id: "toolu_01A", name: "get_weather", args: { city: "Paris" } },
        { id: "toolu_01B", name: "get_weather", args: { city: "Rome" } }
      ])
      assert.strictEqual(stopOf(chunks)?.stopReason, "tool_use")
      assert.deepStrictEqual(stopOf(chunks)?.usage, { inputTokens: 472, outputTokens: 89 })
      const sent = server.requests[0]!.body.messages
      assert.deepStrictEqual(sent[1], { role: "assistant", content: [{ type: "tool_use", id: "toolu_0", name: "get_weather", input: { city: "Oslo" } }] })
      assert.deepStrictEqual(sent[2], { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_0", content: "snow" }] })
    }))

  it.scopedLive("structured output through a forced tool, re-emitted as the answer text", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: anthropic.structured }])
      const schema = { properties: { verdict: { type: "string" }, score: { type: "integer" } } }
      const { chunks } = yield* run({ provider: "anthropic", model: "claude-sonnet-4-5", responseFormat: { type: "json", schema } }, providersAt({ anthropic: server.url }))
      assert.deepStrictEqual(JSON.parse(textOf(chunks)), { verdict: "approve", score: 9 })
      assert.strictEqual(stopOf(chunks)?.stopReason, "stop")
      assert.strictEqual(ofType(chunks, "tool_call_start").length, 0)
      assert.deepStrictEqual(server.requests[0]!.body.tool_choice, { type: "tool", name: "structured_output" })
    }))

  it.scopedLive("a stream cut midway: usage so far is emitted, then the error; no retry, no provider switch", () =>
    Effect.gen(function* () {
      const primary = yield* startServer([{ frames: anthropic.cutMidway, cut: true }])
      const fallback = yield* startServer([{ frames: openAiChat.text() }])
      const { chunks, error } = yield* run(
        { provider: "anthropic", model: "claude-sonnet-4-5", fallbacks: [{ provider: "openai", model: "gpt-4o-mini" }] },
        providersAt({ anthropic: primary.url, openai: fallback.url })
      )
      assert.strictEqual(textOf(chunks), "The first half of an ans")
      assert.deepStrictEqual(stopOf(chunks), { type: "stop", stopReason: "error", usage: { inputTokens: 900, outputTokens: 1 } })
      assert.include(error, { kind: "transport", provider: "anthropic", model: "claude-sonnet-4-5" })
      assert.strictEqual(ofType(chunks, "attempt").length, 0)
      assert.strictEqual(primary.requests.length, 1)
      assert.strictEqual(fallback.requests.length, 0)
    }))

  it.scopedLive("an overloaded error event before output is retried", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: anthropic.overloadedEvent }, { frames: anthropic.thinkingThenText }])
      const { chunks, error } = yield* run({ provider: "anthropic", model: "claude-sonnet-4-5" }, providersAt({ anthropic: server.url }))
      assert.isUndefined(error)
      assert.deepStrictEqual(ofType(chunks, "attempt").map((c) => [c.provider, c.attemptNumber, c.delayMs]), [["anthropic", 2, 5]])
      assert.match(ofType(chunks, "attempt")[0]!.reason, /overloaded/)
      assert.strictEqual(textOf(chunks), "Hello there!")
    }))

  it.scopedLive("invalid key (401): auth error at once, no retry, no fallback", () =>
    Effect.gen(function* () {
      const primary = yield* startServer([json(401, anthropic.authBody)])
      const fallback = yield* startServer([{ frames: openAiChat.text() }])
      const { chunks, error } = yield* run(
        { provider: "anthropic", model: "claude-sonnet-4-5", fallbacks: [{ provider: "openai", model: "gpt-4o-mini" }] },
        providersAt({ anthropic: primary.url, openai: fallback.url })
      )
      assert.include(error, { kind: "auth", provider: "anthropic", status: 401, retryable: false })
      assert.match(error!.message, /relavium keys set anthropic/)
      assert.match(error!.message, /RELAVIUM_ANTHROPIC_API_KEY/)
      assert.strictEqual(chunks.length, 0)
      assert.strictEqual(primary.requests.length, 1)
      assert.strictEqual(fallback.requests.length, 0)
    }))
})

describe("Gemini streamGenerateContent", () => {
  it.scopedLive("thoughts, text and two function calls; thoughts and cached tokens in usage", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: gemini.thoughtsTextAndTools }])
      const { chunks, error } = yield* run(
        { provider: "gemini", model: "gemini-2.5-flash", reasoningEffort: "medium", tools: [{ name: "get_weather", parameters: { type: "object" } }] },
        providersAt({ gemini: server.url })
      )
      assert.isUndefined(error)
      assert.match(ofType(chunks, "reasoning_delta")[0]!.text, /Planning/)
      assert.strictEqual(textOf(chunks), "Looking both up.")
      assert.deepStrictEqual(toolArgs(chunks).map((c) => c.args), [{ city: "Paris" }, { city: "Rome" }])
      assert.deepStrictEqual(stopOf(chunks), {
        type: "stop",
        stopReason: "tool_use",
        usage: { inputTokens: 1500, outputTokens: 90, cacheReadTokens: 1024, reasoningTokens: 60 }
      })
      const req = server.requests[0]!
      assert.strictEqual(req.url, "/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
      assert.strictEqual(req.headers["x-goog-api-key"], KEYS.gemini)
      assert.deepStrictEqual(req.body.generationConfig.thinkingConfig, { thinkingBudget: 4096, includeThoughts: true })
    }))

  it.scopedLive("structured output: responseMimeType + responseJsonSchema", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: gemini.json }])
      const schema = { type: "object", properties: { verdict: { type: "string" } } }
      const { chunks } = yield* run({ provider: "gemini", model: "gemini-2.5-flash", responseFormat: { type: "json", schema } }, providersAt({ gemini: server.url }))
      assert.deepStrictEqual(JSON.parse(textOf(chunks)), { verdict: "approve", score: 7 })
      assert.deepStrictEqual(server.requests[0]!.body.generationConfig, { responseMimeType: "application/json", responseJsonSchema: schema })
    }))

  it.scopedLive("invalid key (400 API_KEY_INVALID) is an auth error", () =>
    Effect.gen(function* () {
      const server = yield* startServer([json(400, gemini.badKeyBody)])
      const { error } = yield* run({ provider: "gemini", model: "gemini-2.5-flash" }, providersAt({ gemini: server.url }))
      assert.include(error, { kind: "auth", provider: "gemini", model: "gemini-2.5-flash", status: 400 })
      assert.strictEqual(server.requests.length, 1)
    }))
})

describe("retries and fallback", () => {
  it.scopedLive("429 with Retry-After (seconds) is waited out, then succeeds", () =>
    Effect.gen(function* () {
      const server = yield* startServer([json(429, openAiChat.rateLimitBody, { "retry-after": "1" }), { frames: openAiChat.text() }])
      const started = Date.now()
      const { chunks, error } = yield* run({ provider: "openai", model: "gpt-4o-mini" }, providersAt({ openai: server.url }))
      assert.isUndefined(error)
      const attempts = ofType(chunks, "attempt")
      assert.deepStrictEqual(attempts.map((a) => [a.provider, a.model, a.attemptNumber, a.delayMs]), [["openai", "gpt-4o-mini", 2, 1000]])
      assert.isAtLeast(Date.now() - started, 950)
      assert.strictEqual(textOf(chunks), "Hello, world!")
    }))

  it.scopedLive("Gemini RESOURCE_EXHAUSTED with a RetryInfo delay is retried", () =>
    Effect.gen(function* () {
      const server = yield* startServer([json(429, gemini.rateLimitBody), { frames: gemini.json }])
      const { chunks, error } = yield* run({ provider: "gemini", model: "gemini-2.5-flash" }, providersAt({ gemini: server.url }))
      assert.isUndefined(error)
      assert.strictEqual(ofType(chunks, "attempt")[0]?.delayMs, 1000)
    }))

  it("Retry-After as an HTTP-date", () => {
    const now = Date.parse("Wed, 21 Oct 2025 07:28:00 GMT")
    assert.strictEqual(parseRetryAfter({ "retry-after": "Wed, 21 Oct 2025 07:28:03 GMT" }, now), 3000)
    assert.strictEqual(parseRetryAfter({ "retry-after-ms": "150" }, now), 150)
    assert.strictEqual(parseRetryAfter({ "retry-after": "soon" }, now), undefined)
  })

  it.scopedLive("500s exhaust the primary's attempts, then the chain falls over to the next provider", () =>
    Effect.gen(function* () {
      const primary = yield* startServer([json(500, openAiChat.serverErrorBody), json(503, openAiChat.serverErrorBody)])
      const fallback = yield* startServer([{ frames: anthropic.thinkingThenText }])
      const messages: Array<Llm.LlmMessage> = [
        ...userPrompt,
        { role: "assistant", content: [{ type: "reasoning", text: "private chain of thought" }, { type: "text", text: "ok" }] },
        ...userPrompt
      ]
      const { chunks, error } = yield* run(
        { provider: "openai", model: "gpt-4o-mini", maxAttempts: 2, messages, fallbacks: [{ provider: "anthropic", model: "claude-sonnet-4-5" }] },
        providersAt({ openai: primary.url, anthropic: fallback.url })
      )
      assert.isUndefined(error)
      const attempts = ofType(chunks, "attempt")
      assert.deepStrictEqual(attempts.map((a) => [a.provider, a.model, a.attemptNumber]), [
        ["openai", "gpt-4o-mini", 2],
        ["anthropic", "claude-sonnet-4-5", 3]
      ])
      assert.match(attempts[1]!.reason, /falling back from openai\/gpt-4o-mini/)
      // Attempt chunks come before any output.
      assert.isTrue(chunks.findIndex((c) => c.type === "text_delta") > chunks.findIndex((c) => c.type === "attempt" && c.attemptNumber === 3))
      assert.strictEqual(textOf(chunks), "Hello there!")
      assert.strictEqual(primary.requests.length, 2)
      assert.notInclude(JSON.stringify(fallback.requests[0]!.body), "private chain of thought")
    }))

  it.scopedLive("a rate-limited target cools down: later calls start at their fallback until the cooldown ends", () =>
    Effect.gen(function* () {
      const primary = yield* startServer([json(429, openAiChat.rateLimitBody), { frames: openAiChat.text() }])
      const fallback = yield* startServer([{ frames: anthropic.thinkingThenText }, { frames: anthropic.thinkingThenText }])
      const layer = providersAt({ openai: primary.url, anthropic: fallback.url }, { rateLimitCooldownMs: 400 })
      const request = { provider: "openai", model: "gpt-4o-mini", maxAttempts: 1, fallbacks: [{ provider: "anthropic", model: "claude-sonnet-4-5" }] }
      const calls = yield* Effect.gen(function* () {
        const llm = yield* LlmProvider
        const call = llm.stream({ messages: userPrompt, ...request }).pipe(Stream.runCollect, Effect.map((c) => [...c]))
        const first = yield* call
        const second = yield* call
        yield* Effect.sleep("500 millis")
        const third = yield* call
        return [first, second, third]
      }).pipe(Effect.provide(Layer.merge(layer, captureLogs)))
      const [first, second, third] = calls as [Array<Llm.StreamChunk>, Array<Llm.StreamChunk>, Array<Llm.StreamChunk>]
      // The first call met the 429 and fell over; the second skipped openai without a request.
      assert.match(ofType(first, "attempt")[0]!.reason, /falling back from openai\/gpt-4o-mini after rate_limit/)
      assert.deepStrictEqual(ofType(second, "attempt").map((a) => [a.provider, a.model]), [["anthropic", "claude-sonnet-4-5"]])
      assert.match(ofType(second, "attempt")[0]!.reason, /skipping openai\/gpt-4o-mini: rate-limited, cooling down/)
      assert.strictEqual(textOf(second), "Hello there!")
      // After the cooldown the primary is called again, and answers.
      assert.lengthOf(ofType(third, "attempt"), 0)
      assert.strictEqual(textOf(third), "Hello, world!")
      assert.strictEqual(primary.requests.length, 2)
      assert.strictEqual(fallback.requests.length, 2)
    }))

  it.scopedLive("a cooling target with no fallback after it is still called", () =>
    Effect.gen(function* () {
      const server = yield* startServer([json(429, openAiChat.rateLimitBody), { frames: openAiChat.text() }])
      const layer = providersAt({ openai: server.url }, { rateLimitCooldownMs: 60_000 })
      const results = yield* Effect.gen(function* () {
        const llm = yield* LlmProvider
        const call = llm.stream({ messages: userPrompt, provider: "openai", model: "gpt-4o-mini", maxAttempts: 1 }).pipe(Stream.runCollect, Effect.either)
        return [yield* call, yield* call]
      }).pipe(Effect.provide(Layer.merge(layer, captureLogs)))
      assert.isTrue(Either.isLeft(results[0]!))
      assert.strictEqual(Either.isLeft(results[0]!) ? results[0].left.kind : "", "rate_limit")
      assert.isTrue(Either.isRight(results[1]!))
      assert.strictEqual(server.requests.length, 2)
    }))

  it.scopedLive("a missing key fails with kind auth, naming the key and how to set it; no request is sent", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: anthropic.thinkingThenText }])
      const { error } = yield* run({ provider: "anthropic", model: "claude-sonnet-4-5" }, providersAt({ anthropic: server.url }, {}, {}))
      assert.include(error, { kind: "auth", provider: "anthropic" })
      assert.strictEqual(error!.message, "no API key for anthropic is set: run `relavium keys set anthropic` or set RELAVIUM_ANTHROPIC_API_KEY")
      assert.strictEqual(server.requests.length, 0)
    }))

  it.scopedLive("invalid key (401) echoed by OpenAI: no retry, and the key is scrubbed from the message", () =>
    Effect.gen(function* () {
      const server = yield* startServer([json(401, openAiChat.invalidKeyBody(KEYS.openai))])
      const { error } = yield* run({ provider: "openai", model: "gpt-4o-mini" }, providersAt({ openai: server.url }))
      assert.include(error, { kind: "auth", status: 401, retryable: false })
      assert.notInclude(error!.message, KEYS.openai)
      assert.strictEqual(server.requests.length, 1)
    }))

  it.scopedLive("timeout: a server that never answers fails with kind timeout, retried then given up", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ hang: true }, { hang: true }])
      const { chunks, error } = yield* run({ provider: "openai", model: "gpt-4o-mini", maxAttempts: 2 }, providersAt({ openai: server.url }, { firstByteTimeoutMs: 300 }))
      assert.include(error, { kind: "timeout", provider: "openai", model: "gpt-4o-mini", retryable: true })
      assert.strictEqual(ofType(chunks, "attempt").length, 1)
      assert.strictEqual(server.requests.length, 2)
    }))

  it.scopedLive("a dropped connection before output is retried", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: [openAiChat.text()[0]!], cut: true }, { frames: openAiChat.text() }])
      const { chunks, error } = yield* run({ provider: "openai", model: "gpt-4o-mini" }, providersAt({ openai: server.url }))
      assert.isUndefined(error)
      assert.strictEqual(ofType(chunks, "attempt").length, 1)
      assert.strictEqual(textOf(chunks), "Hello, world!")
    }))

  it.scopedLive("base URL from RELAVIUM_<PROVIDER>_BASE_URL; unknown providers are a typed error", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: openAiChat.text("llama3.2") }])
      process.env.RELAVIUM_OLLAMA_BASE_URL = `${server.url}/v1`
      const { chunks } = yield* run({ provider: "ollama", model: "llama3.2" }, providersAt({}, {}, {})).pipe(
        Effect.ensuring(Effect.sync(() => delete process.env.RELAVIUM_OLLAMA_BASE_URL))
      )
      assert.strictEqual(textOf(chunks), "Hello, world!")
      assert.strictEqual(server.requests[0]!.url, "/v1/chat/completions")
      assert.isUndefined(server.requests[0]!.headers.authorization)
      const { error } = yield* run({ provider: "nope", model: "m" }, providersAt({}))
      assert.include(error, { kind: "bad_request", provider: "nope" })
    }))
})

describe("redaction", () => {
  it("no chunk, error or log line of the tests above contains a key", () => {
    assert.isAbove(seen.length, 20)
    assert.isAbove(logs.length, 3)
    const everything = [...seen, ...logs].join("\n")
    for (const key of Object.values(KEYS)) assert.notInclude(everything, key)
  })
})

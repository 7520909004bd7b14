/**
 * Managed mode's provider against a local fake of the gateway's OpenAI-compatible API (the real
 * chat-completions SSE frames, usage in the last chunk): what reaches the gateway (path, model,
 * token, include_usage), the run's streamed tokens and cost events exactly as in local mode, and
 * the documented errors for a gateway that is down, refuses the token, has no budget left or
 * rate-limits.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { WorkflowEngine } from "@relavium/core"
import { LlmProvider, WorkflowStore } from "@relavium/ports"
import { engineLayer } from "../../core/test/harness.js"
import { Cost, type Llm, type RunEvent as RE } from "@relavium/domain"
import { Chunk, Effect, Layer, Logger, Redacted, Stream } from "effect"
import { ManagedGateway, Pricing } from "../src/index.js"
import { startServer } from "./fixtures/server.js"
import { openAiChat } from "./fixtures/wire.js"

const TOKEN = "rlv_gw_test_7d3f0a9c41e2b85d"
const logs: Array<string> = []

const workflow = `
schema_version: '1.0'
workflow:
  id: weather-desk
  agents:
    - id: forecaster
      provider: openai-compatible
      model: local-model
      max_tokens: 1000
      system_prompt: You report the weather. Use the get_weather tool.
      tools: [get_weather]
  nodes:
    - { id: start, type: input }
    - { id: ask, type: agent, agent_ref: forecaster, prompt_template: "Weather in Paris and Rome?" }
    - { id: result, type: output }
  edges:
    - { from: start, to: ask }
    - { from: ask, to: result }
`

const getWeather = {
  definition: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
  run: (call: { readonly args: unknown }) => Effect.succeed({ output: `sunny in ${(call.args as { city: string }).city}` })
}

/** The same prices as the local end-to-end test, so the cost events must be the same. */
const pricing = Pricing.layerWithOverrides([
  { provider: "openai-compatible", model: "local-model", price: new Cost.ModelPrice({ inputPerMTok: 100_000_000, outputPerMTok: 200_000_000 }) }
])

const gateway = (url: string) =>
  ManagedGateway.layer({ url, token: Redacted.make(TOKEN), backoffBaseMs: 5 }).pipe(Layer.provide(NodeHttpClient.layerUndici))

const engineAt = (url: string) =>
  engineLayer({ model: gateway(url), pricing, tools: [getWeather] }).pipe(
    Layer.provideMerge(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(JSON.stringify(message)))))
  )

const runWorkflow = Effect.gen(function* () {
  const workflows = yield* WorkflowStore
  const engine = yield* WorkflowEngine
  const stored = yield* workflows.put({ name: "weather-desk", source: workflow, file: "weather.relavium.yaml" })
  const handle = yield* engine.start(stored.workflowId, {})
  return yield* engine.events(handle.runId).pipe(
    Stream.takeUntil((e) => e.type === "run:completed" || e.type === "run:failed" || e.type === "run:cancelled"),
    Stream.runCollect,
    Effect.map((c): Array<RE.RunEvent> => [...c])
  )
})

const ofType = <T extends RE.RunEvent["type"]>(events: ReadonlyArray<RE.RunEvent>, type: T) =>
  events.filter((e): e is Extract<RE.RunEvent, { type: T }> => e.type === type)

const request: Llm.LlmRequest = { provider: "openai", model: "gpt-4o-mini", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }] }

/** One call through the gateway at `url`: its chunks, or its error. */
const call = (url: string, req: Llm.LlmRequest = request) =>
  Effect.flatMap(LlmProvider, (provider) => Stream.runCollect(provider.stream(req))).pipe(
    Effect.map(Chunk.toArray),
    Effect.either,
    Effect.provide(gateway(url))
  )

const errorBody = (message: string, type: string) => [JSON.stringify({ error: { message, type, code: null } })]
const jsonHeaders = { "content-type": "application/json" }

describe("ManagedGateway", () => {
  it.scopedLive("a workflow's model calls go to the gateway with its token; tokens and cost events are as in local mode", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: openAiChat.twoTools("local-model") }, { frames: openAiChat.text("local-model") }])
      const events = yield* runWorkflow.pipe(Effect.provide(engineAt(server.url)))
      assert.strictEqual(events[events.length - 1]!.type, "run:completed")
      assert.strictEqual(ofType(events, "agent:token").map((e) => e.token).join(""), "Hello, world!")
      // 80 in × $1 + 40 out × $2 per MTok = 16,000 µ¢; then 1200 in + 300 out = 180,000 µ¢ (as local mode).
      assert.deepStrictEqual(ofType(events, "cost:updated").map((c) => [c.model, c.costMicrocents, c.cumulativeCostMicrocents, c.priced]), [
        ["local-model", 16_000, 16_000, true],
        ["local-model", 180_000, 196_000, true]
      ])
      assert.strictEqual(server.requests.length, 2)
      for (const sent of server.requests) {
        assert.strictEqual(sent.method, "POST")
        assert.strictEqual(sent.url, "/v1/chat/completions")
        assert.strictEqual(sent.headers.authorization, `Bearer ${TOKEN}`)
        assert.strictEqual(sent.body.model, "openai-compatible/local-model")
        assert.strictEqual(sent.body.stream, true)
        assert.deepStrictEqual(sent.body.stream_options, { include_usage: true })
      }
      assert.notInclude(JSON.stringify(events), TOKEN)
      assert.notInclude(logs.join("\n"), TOKEN)
    }))

  it.scopedLive("a gateway that is down fails at once with the documented message, retrying nothing", () =>
    Effect.gen(function* () {
      const result = yield* call("http://127.0.0.1:1")
      assert.isTrue(result._tag === "Left")
      if (result._tag !== "Left") return
      assert.strictEqual(result.left.kind, "transport")
      assert.isFalse(result.left.retryable)
      assert.include(result.left.message, "cannot reach the Relavium gateway at http://127.0.0.1:1")
      assert.include(result.left.message, "RELAVIUM_GATEWAY_URL")
      assert.notInclude(result.left.message, TOKEN)
    }))

  it.scopedLive("401 is the token, 402 the budget: each fails once with its message", () =>
    Effect.gen(function* () {
      const server = yield* startServer([
        { status: 401, headers: jsonHeaders, frames: errorBody("invalid token", "authentication_error") },
        { status: 402, headers: jsonHeaders, frames: errorBody("the org's monthly budget is spent", "budget_exceeded") }
      ])
      const unauthorized = yield* call(server.url)
      assert.isTrue(unauthorized._tag === "Left" && unauthorized.left.kind === "auth")
      if (unauthorized._tag === "Left") assert.include(unauthorized.left.message, "refused the token (HTTP 401): check RELAVIUM_GATEWAY_TOKEN")
      const broke = yield* call(server.url)
      assert.isTrue(broke._tag === "Left" && !broke.left.retryable && broke.left.status === 402)
      if (broke._tag === "Left") {
        assert.include(broke.left.message, "managed inference budget is spent")
        assert.include(broke.left.message, "the org's monthly budget is spent")
      }
      assert.strictEqual(server.requests.length, 2)
    }))

  it.scopedLive("429 with a short Retry-After is retried; a long one fails with the rate-limit message", () =>
    Effect.gen(function* () {
      const server = yield* startServer([
        { status: 429, headers: { ...jsonHeaders, "retry-after-ms": "10" }, frames: errorBody("slow down", "rate_limit") },
        { frames: openAiChat.text() },
        { status: 429, headers: { ...jsonHeaders, "retry-after": "120" }, frames: errorBody("slow down", "rate_limit") }
      ])
      const retried = yield* call(server.url)
      assert.isTrue(retried._tag === "Right")
      if (retried._tag === "Right") {
        assert.deepStrictEqual(retried.right.filter((c) => c.type === "attempt").map((c) => c.type), ["attempt"])
        assert.strictEqual(retried.right.flatMap((c) => (c.type === "text_delta" ? [c.text] : [])).join(""), "Hello, world!")
      }
      const limited = yield* call(server.url)
      assert.isTrue(limited._tag === "Left" && limited.left.kind === "rate_limit")
      if (limited._tag === "Left") assert.include(limited.left.message, "rate-limited this org or token (HTTP 429): retry in 120 s")
      assert.strictEqual(server.requests.length, 3)
    }))
})

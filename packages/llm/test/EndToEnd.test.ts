/**
 * An agent workflow run through the core engine against the local
 * OpenAI-compatible test server: two tool calls routed through an in-process
 * tool, cost:updated events priced from a user overlay, and a budget stop.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { WorkflowEngine } from "@relavium/core"
import { KeyStore, WorkflowStore } from "@relavium/ports"
import { engineLayer } from "../../core/test/harness.js"
import { Cost, type RunEvent as RE } from "@relavium/domain"
import { Effect, Layer, Logger, Stream } from "effect"
import { Pricing, Providers } from "../src/index.js"
import { startServer } from "./fixtures/server.js"
import { openAiChat } from "./fixtures/wire.js"

const KEY = "sk-test-COMPAT-e2e-41d09b7a"
const logs: Array<string> = []

const workflow = (budget: number) => `
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
  budget: { max_cost_microcents: ${budget}, on_exceed: fail }
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

/** $1 in / $2 out per million tokens for the local model (the shipped table does not know it). */
const pricing = Pricing.layerWithOverrides([
  { provider: "openai-compatible", model: "local-model", price: new Cost.ModelPrice({ inputPerMTok: 100_000_000, outputPerMTok: 200_000_000 }) }
])

const engineAt = (baseUrl: string) =>
  engineLayer({
    model: Providers.layer({ providers: { "openai-compatible": { baseUrl } }, backoffBaseMs: 5 }).pipe(
      Layer.provide(Layer.mergeAll(NodeHttpClient.layerUndici, KeyStore.layerMemory({ "openai-compatible": KEY })))
    ),
    pricing,
    tools: [getWeather]
  }).pipe(
    // Capture every log line, so the redaction check can scan them.
    Layer.provideMerge(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(JSON.stringify(message)))))
  )

const runWorkflow = (yaml: string) =>
  Effect.gen(function* () {
    const workflows = yield* WorkflowStore
    const engine = yield* WorkflowEngine
    const stored = yield* workflows.put({ name: "weather-desk", source: yaml, file: "weather.relavium.yaml" })
    const handle = yield* engine.start(stored.workflowId, {})
    return yield* engine.events(handle.runId).pipe(
      Stream.takeUntil((e) => e.type === "run:completed" || e.type === "run:failed" || e.type === "run:cancelled"),
      Stream.runCollect,
      Effect.map((c): Array<RE.RunEvent> => [...c])
    )
  })

const ofType = <T extends RE.RunEvent["type"]>(events: ReadonlyArray<RE.RunEvent>, type: T) =>
  events.filter((e): e is Extract<RE.RunEvent, { type: T }> => e.type === type)

describe("an agent workflow end to end against the OpenAI-compatible test server", () => {
  it.scopedLive("tool calls, cost events, completion; the key never appears", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: openAiChat.twoTools("local-model") }, { frames: openAiChat.text("local-model") }])
      const events = yield* runWorkflow(workflow(10_000_000)).pipe(Effect.provide(engineAt(`${server.url}/v1`)))
      const last = events[events.length - 1]!
      assert.strictEqual(last.type, "run:completed")
      assert.deepStrictEqual(
        ofType(events, "agent:tool_result").map((e) => e.outputSummary),
        ["sunny in Paris", "sunny in Rome"]
      )
      const costs = ofType(events, "cost:updated")
      // 80 in × $1 + 40 out × $2 per MTok = 16,000 µ¢; then 1200 in + 300 out = 180,000 µ¢.
      assert.deepStrictEqual(costs.map((c) => [c.costMicrocents, c.cumulativeCostMicrocents, c.priced]), [
        [16_000, 16_000, true],
        [180_000, 196_000, true]
      ])
      assert.strictEqual(ofType(events, "agent:token").map((e) => e.token).join(""), "Hello, world!")
      // The second call carried the tool results back in the OpenAI shape.
      const second = server.requests[1]!.body
      assert.deepStrictEqual(second.messages.filter((m: { role: string }) => m.role === "tool").map((m: { content: string }) => m.content), [
        "sunny in Paris",
        "sunny in Rome"
      ])
      assert.strictEqual(server.requests[0]!.headers.authorization, `Bearer ${KEY}`)
      assert.notInclude(JSON.stringify(events), KEY)
      assert.notInclude(logs.join("\n"), KEY)
    }))

  it.scopedLive("a budget stop: the second call would exceed the cap, so the run fails with budget_exceeded", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: openAiChat.twoTools("local-model") }, { frames: openAiChat.text("local-model") }])
      // First call: 0 spent + 1000 × $2/MTok = 200,000 ≤ 210,000. Second: 16,000 + 200,000 > 210,000.
      const events = yield* runWorkflow(workflow(210_000)).pipe(Effect.provide(engineAt(`${server.url}/v1`)))
      const last = events[events.length - 1]!
      assert.strictEqual(last.type, "run:failed")
      assert.strictEqual((last as RE.RunEventOf<"run:failed">).error.code, "budget_exceeded")
      assert.strictEqual(ofType(events, "cost:updated").length, 1)
      assert.strictEqual(server.requests.length, 1)
      assert.notInclude(JSON.stringify(events), KEY)
    }))
})

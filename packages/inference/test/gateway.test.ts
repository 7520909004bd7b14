/**
 * The gateway through the official `openai` SDK, in front of a fake provider speaking the real
 * wire formats (OpenAI chat completions SSE with usage, Anthropic messages SSE with cumulative
 * usage): answers, streams, tool calls, structured output, the models list, typed errors, and the
 * metering of every way a call can end, exactly once and equal to the upstream's own usage.
 */
import { Cost } from "@relavium/domain"
import { Pricing } from "@relavium/llm"
import OpenAI from "openai"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { anthropic, openAiChat } from "../../llm/test/fixtures/wire.js"
import { Gateway } from "../src/index.js"
import { MANAGED_ANTHROPIC, MANAGED_OPENAI, rateLimited, startGateway } from "./support/gateway.js"
import { startUpstream, type Upstream } from "./support/upstream.js"

const PROMPT = "PROMPT-MARKER-7f3a: summarise the quarterly numbers"

let upstream: Upstream
let gw: Awaited<ReturnType<typeof startGateway>>

beforeAll(async () => {
  upstream = await startUpstream()
  gw = await startGateway(upstream, { maxBodyBytes: 64 * 1024 })
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
})

beforeEach(() => {
  upstream.seen.length = 0
  gw.limiter.refuse = undefined
})

const client = (token = gw.tokenA) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: token, maxRetries: 0 })

const priceOf = (provider: string, model: string) => Pricing.lookup(provider, model).pipe((o) => (o._tag === "Some" ? o.value.price : undefined))!

/** Ledger rows of org a written after `before` rows. */
const rowsAfter = async (before: number) => (await gw.ledger(gw.orgA)).slice(before)

/** Waits (bounded) for the ledger to hold `count` rows: a cancelled stream settles as its request scope closes. */
const waitForRows = async (orgId: string, count: number) => {
  for (let i = 0; i < 200; i++) {
    const rows = await gw.ledger(orgId)
    if (rows.length >= count) return rows
    await new Promise((r) => setTimeout(r, 10))
  }
  return gw.ledger(orgId)
}

const errorOf = async (response: Response) => ((await response.json()) as { error: Record<string, unknown> }).error

const post = (body: string, token = gw.tokenA) =>
  fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body })

describe("answers through the SDK", () => {
  it("non-streamed: the completion, the upstream's usage metered exactly, the managed key upstream", async () => {
    const before = (await gw.ledger(gw.orgA)).length
    upstream.script({ frames: openAiChat.text("gpt-4o-mini") })
    const { data, response } = await client()
      .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "system", content: "be brief" }, { role: "user", content: PROMPT }], max_tokens: 500 })
      .withResponse()
    expect(data.object).toBe("chat.completion")
    expect(data.choices[0]!.message.content).toBe("Hello, world!")
    expect(data.choices[0]!.finish_reason).toBe("stop")
    expect(data.usage).toMatchObject({ prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500 })
    expect(Number(response.headers.get(Gateway.OVERHEAD_HEADER))).toBeGreaterThanOrEqual(0)
    expect(upstream.seen).toHaveLength(1)
    expect(upstream.seen[0]!.authorization).toBe(`Bearer ${MANAGED_OPENAI}`)
    expect(upstream.seen[0]!.body).toMatchObject({ model: "gpt-4o-mini", max_completion_tokens: 500, messages: [{ role: "system", content: "be brief" }, { role: "user", content: PROMPT }] })
    const rows = await rowsAfter(before)
    expect(rows).toHaveLength(1)
    const usage = { inputTokens: 1200, outputTokens: 300 }
    expect(rows[0]).toMatchObject({ provider: "openai", model: "gpt-4o-mini", ...usage, status: "ok", orgId: gw.orgA })
    // The cost counts the upstream's cached and reasoning tokens too (1024 cached, 128 reasoning).
    expect(rows[0]!.costMicrocents).toBe(Cost.costOf(priceOf("openai", "gpt-4o-mini"), { ...usage, cacheReadTokens: 1024, reasoningTokens: 128 }))
    expect(data.usage).toMatchObject({ prompt_tokens_details: { cached_tokens: 1024 }, completion_tokens_details: { reasoning_tokens: 128 } })
  })

  it("streamed: OpenAI's chunks, the usage chunk last, [DONE], metered once", async () => {
    const before = (await gw.ledger(gw.orgA)).length
    upstream.script({ frames: openAiChat.text("gpt-4o-mini") })
    const stream = await client().chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: PROMPT }],
      stream: true,
      stream_options: { include_usage: true }
    })
    let text = ""
    const chunks: Array<OpenAI.Chat.Completions.ChatCompletionChunk> = []
    for await (const chunk of stream) {
      chunks.push(chunk)
      text += chunk.choices[0]?.delta.content ?? ""
    }
    expect(text).toBe("Hello, world!")
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true)
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant")
    const last = chunks[chunks.length - 1]!
    expect(last.choices).toEqual([])
    expect(last.usage).toMatchObject({ prompt_tokens: 1200, completion_tokens: 300 })
    expect(chunks[chunks.length - 2]!.choices[0]!.finish_reason).toBe("stop")
    const rows = await rowsAfter(before)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ inputTokens: 1200, outputTokens: 300, status: "ok" })
  })

  it("the raw stream ends with data: [DONE]", async () => {
    upstream.script({ frames: openAiChat.text("gpt-4o-mini") })
    const response = await post(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream: true }))
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toContain("text/event-stream")
    const text = await response.text()
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true)
    expect(Number(response.headers.get(Gateway.OVERHEAD_HEADER))).toBeGreaterThanOrEqual(0)
    // Without include_usage no usage field and no usage chunk.
    expect(text).not.toContain("\"usage\"")
  })

  it("tool calls, non-streamed (OpenAI upstream): ids, names, arguments; the tool result goes back upstream", async () => {
    upstream.script({ frames: openAiChat.twoTools("gpt-4o-mini") })
    const tools: Array<OpenAI.Chat.Completions.ChatCompletionTool> = [
      { type: "function", function: { name: "get_weather", description: "weather of a city", parameters: { type: "object", properties: { city: { type: "string" } } } } }
    ]
    const data = await client().chat.completions.create({
      model: "gpt-4o-mini",
      tools,
      messages: [
        { role: "user", content: "weather?" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_0", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Oslo\"}" } }] },
        { role: "tool", tool_call_id: "call_0", content: "rain" }
      ]
    })
    const message = data.choices[0]!.message
    expect(data.choices[0]!.finish_reason).toBe("tool_calls")
    expect(message.content).toBeNull()
    expect(message.tool_calls).toEqual([
      { id: "call_weather_paris", type: "function", function: { name: "get_weather", arguments: "{\"city\": \"Paris\"}" } },
      { id: "call_weather_rome", type: "function", function: { name: "get_weather", arguments: "{\"city\": \"Rome\"}" } }
    ])
    const sent = upstream.seen[0]!.body
    expect(sent.tools[0].function.name).toBe("get_weather")
    expect(sent.messages[2]).toMatchObject({ role: "tool", tool_call_id: "call_0", content: "rain" })
  })

  it("tool calls, streamed (Anthropic upstream, cumulative usage): deltas by index, usage not added up", async () => {
    const before = (await gw.ledger(gw.orgA)).length
    upstream.script({ frames: anthropic.twoTools })
    const stream = await client().chat.completions.create({
      model: "claude-sonnet",
      messages: [{ role: "user", content: PROMPT }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
      stream: true,
      stream_options: { include_usage: true }
    })
    const calls = new Map<number, { id?: string; name?: string; args: string }>()
    let text = ""
    let usage: OpenAI.CompletionUsage | null | undefined
    let finish: string | null | undefined
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage
      const choice = chunk.choices[0]
      if (choice === undefined) continue
      finish = choice.finish_reason ?? finish
      text += choice.delta.content ?? ""
      for (const call of choice.delta.tool_calls ?? []) {
        const entry = calls.get(call.index) ?? { args: "" }
        if (call.id) entry.id = call.id
        if (call.function?.name) entry.name = call.function.name
        entry.args += call.function?.arguments ?? ""
        calls.set(call.index, entry)
      }
    }
    expect(text).toBe("Checking both.")
    expect(finish).toBe("tool_calls")
    expect([...calls.values()]).toEqual([
      { id: "toolu_01A", name: "get_weather", args: "{\"city\": \"Paris\"}" },
      { id: "toolu_01B", name: "get_weather", args: "{\"city\": \"Rome\"}" }
    ])
    expect(usage).toMatchObject({ prompt_tokens: 472, completion_tokens: 89 })
    expect(upstream.seen[0]!.path).toBe("/v1/messages")
    expect(upstream.seen[0]!.apiKey).toBe(MANAGED_ANTHROPIC)
    expect(upstream.seen[0]!.body.max_tokens).toBe(2048)
    const rows = await rowsAfter(before)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ provider: "anthropic", model: "claude-sonnet-4-5", inputTokens: 472, outputTokens: 89, status: "ok" })
    expect(rows[0]!.costMicrocents).toBe(Cost.costOf(priceOf("anthropic", "claude-sonnet-4-5"), { inputTokens: 472, outputTokens: 89 }))
  })

  it("structured output: response_format json_schema reaches the upstream, the answer parses", async () => {
    const answer = "{\"verdict\":\"approve\",\"score\":9}"
    upstream.script({ frames: openAiChat.json(answer, "gpt-4o-mini") })
    const schema = { type: "object", properties: { verdict: { type: "string" }, score: { type: "integer" } }, required: ["verdict", "score"] }
    const data = await client().chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "review" }],
      response_format: { type: "json_schema", json_schema: { name: "review", schema, strict: true } }
    })
    expect(JSON.parse(data.choices[0]!.message.content!)).toEqual({ verdict: "approve", score: 9 })
    expect(upstream.seen[0]!.body.response_format).toMatchObject({ type: "json_schema", json_schema: { schema } })
    expect(data.usage).toMatchObject({ prompt_tokens: 50, completion_tokens: 12 })
  })

  it("models.list: the models whose provider the org holds a key for", async () => {
    const a = (await client().models.list()).data.map((m) => m.id).sort()
    expect(a).toEqual(["claude-sonnet", "gpt-4o", "gpt-4o-mini", "house-model"])
    const b = (await client(gw.tokenB).models.list()).data.map((m) => m.id).sort()
    expect(b).toEqual(["gpt-4o", "gpt-4o-mini", "house-model"])
  })

  it("serves managed mode's <provider>/<model> names (ManagedGateway)", async () => {
    upstream.script({ frames: openAiChat.text("gpt-4.1-mini") })
    const data = await client().chat.completions.create({ model: "openai/gpt-4.1-mini", messages: [{ role: "user", content: "hi" }] })
    expect(data.model).toBe("openai/gpt-4.1-mini")
    expect(upstream.seen[0]!.body.model).toBe("gpt-4.1-mini")
    expect(upstream.seen[0]!.authorization).toBe(`Bearer ${MANAGED_OPENAI}`)
  })

  it("follows the configured fallback when the upstream fails before any output", async () => {
    const before = (await gw.ledger(gw.orgA)).length
    upstream.script({ status: 500, body: openAiChat.serverErrorBody }, { frames: openAiChat.text("house-1") })
    const { data, response } = await client()
      .chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
      .withResponse()
    expect(data.choices[0]!.message.content).toBe("Hello, world!")
    expect(data.model).toBe("house-model")
    expect(response.headers.get("x-relavium-served-by")).toBe("house-model")
    expect(upstream.seen.map((s) => s.body.model)).toEqual(["gpt-4o", "house-1"])
    const rows = await rowsAfter(before)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ model: "house-1", inputTokens: 1200, outputTokens: 300, status: "ok" })
    // house-model's configured price: $1 / $2 per million tokens.
    expect(rows[0]!.costMicrocents).toBe(Cost.costOf(new Cost.ModelPrice({ inputPerMTok: 100_000_000, outputPerMTok: 200_000_000 }), { inputTokens: 1200, outputTokens: 300 }))
  })
})

describe("concurrent calls", () => {
  it("twenty at once, streamed and not, are each metered once with the upstream's usage", async () => {
    const before = (await gw.ledger(gw.orgA)).length
    upstream.script(...Array.from({ length: 20 }, () => ({ frames: openAiChat.text("gpt-4o-mini") })))
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        if (i % 2 === 0) {
          const data = await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: `hi ${i}` }] })
          expect(data.choices[0]!.message.content).toBe("Hello, world!")
        } else {
          let text = ""
          for await (const chunk of await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: `hi ${i}` }], stream: true })) {
            text += chunk.choices[0]?.delta.content ?? ""
          }
          expect(text).toBe("Hello, world!")
        }
      })
    )
    const rows = await rowsAfter(before)
    expect(rows).toHaveLength(20)
    expect(new Set(rows.map((r) => r.requestId)).size).toBe(20)
    expect(rows.every((r) => r.status === "ok" && r.inputTokens === 1200 && r.outputTokens === 300)).toBe(true)
  })
})

describe("orgs apart upstream", () => {
  it("one org rate-limited on its own key does not send another org's calls to the fallback", async () => {
    upstream.script(
      { status: 429, body: openAiChat.rateLimitBody },
      { frames: openAiChat.text("house-1") },
      { frames: openAiChat.text("gpt-4o") }
    )
    const a = await client().chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
    expect(a.model).toBe("house-model")
    const b = await client(gw.tokenB).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
    expect(b.model).toBe("gpt-4o")
    expect(upstream.seen.map((s) => [s.body.model, s.authorization])).toEqual([
      ["gpt-4o", `Bearer ${MANAGED_OPENAI}`],
      ["house-1", `Bearer ${MANAGED_OPENAI}`],
      ["gpt-4o", "Bearer sk-managed-openai-org-b-0123456789"]
    ])
  })
})

describe("typed errors", () => {
  it("a wrong token is an AuthenticationError (401), nothing reaches the upstream", async () => {
    const error = await client("rlv_" + "x".repeat(43)).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError)
    expect(error.status).toBe(401)
    expect(error.code).toBe("invalid_api_key")
    expect(upstream.seen).toHaveLength(0)
  })

  it("a viewer's token is a PermissionDeniedError (403)", async () => {
    const error = await client(gw.viewerTokenA).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError)
  })

  it("the org's spent budget is a 402, a token's a 429; nothing reaches the upstream, nothing is metered", async () => {
    const before = (await gw.ledger(gw.orgA)).length
    await gw.setBudget(gw.orgA, { scope: "org", monthlyMicrocents: 1 })
    const orgError = await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    await gw.setBudget(gw.orgA, { scope: "org", monthlyMicrocents: undefined })
    expect(orgError).toBeInstanceOf(OpenAI.APIError)
    expect(orgError.status).toBe(402)
    expect(orgError.code).toBe("budget_exceeded")
    await gw.setBudget(gw.orgA, { scope: "token", tokenId: gw.memberTokenIdA, monthlyMicrocents: 1 })
    const tokenError = await client(gw.memberTokenA).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    await gw.setBudget(gw.orgA, { scope: "token", tokenId: gw.memberTokenIdA, monthlyMicrocents: undefined })
    expect(tokenError).toBeInstanceOf(OpenAI.RateLimitError)
    expect(tokenError.code).toBe("token_budget_exceeded")
    expect(upstream.seen).toHaveLength(0)
    expect(await rowsAfter(before)).toEqual([])
  })

  it("a rate limit is a RateLimitError (429) with Retry-After", async () => {
    gw.limiter.refuse = rateLimited(2500)
    const error = await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    expect(error.headers.get("retry-after")).toBe("3")
    expect(error.code).toBe("rate_limit_exceeded")
    expect(upstream.seen).toHaveLength(0)
  })

  it("an upstream failure is an APIError (502) without the provider's text; the hold is released as an error row", async () => {
    const before = (await gw.ledger(gw.orgA)).length
    upstream.script({ status: 500, body: openAiChat.serverErrorBody })
    const error = await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    expect(error).toBeInstanceOf(OpenAI.APIError)
    expect(error.status).toBe(502)
    expect(error.error).toMatchObject({ type: "upstream_error", code: "upstream_failed" })
    expect(error.message).not.toContain("Sorry about that")
    const rows = await rowsAfter(before)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ status: "error", inputTokens: 0, outputTokens: 0, costMicrocents: 0 })
  })
})

describe("an upstream that fails before any output, streamed", () => {
  it("is an HTTP error (502), settled as error with the usage the upstream reported", async () => {
    const before = (await gw.ledger(gw.orgA)).length
    upstream.script({ frames: anthropic.overloadedEvent })
    const error = await client()
      .chat.completions.create({ model: "claude-sonnet", messages: [{ role: "user", content: PROMPT }], stream: true })
      .catch((e) => e)
    expect(error).toBeInstanceOf(OpenAI.InternalServerError)
    expect(error.status).toBe(502)
    const rows = await rowsAfter(before)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ status: "error", inputTokens: 10, outputTokens: 1 })
  })
})

describe("streams that do not finish", () => {
  it("an upstream cut midway is metered as cut with the tokens that arrived", async () => {
    const before = (await gw.ledger(gw.orgA)).length
    upstream.script({ frames: anthropic.cutMidway, cut: true })
    const stream = await client().chat.completions.create({ model: "claude-sonnet", messages: [{ role: "user", content: PROMPT }], stream: true })
    let text = ""
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ""
    })().catch((e) => e)
    expect(text).toBe("The first half of an ans")
    expect(error).toBeInstanceOf(OpenAI.APIError)
    const rows = await rowsAfter(before)
    expect(rows).toHaveLength(1)
    // message_start counted 900 input tokens and 1 output token before the connection died.
    expect(rows[0]).toMatchObject({ provider: "anthropic", status: "cut", inputTokens: 900, outputTokens: 1 })
    expect(rows[0]!.costMicrocents).toBe(Cost.costOf(priceOf("anthropic", "claude-sonnet-4-5"), { inputTokens: 900, outputTokens: 1 }))
  })

  it("a client that leaves midway cancels the upstream call and is metered once, as cancelled", async () => {
    const before = (await gw.ledger(gw.orgA)).length
    upstream.script({ frames: openAiChat.text("gpt-4o-mini").slice(0, 2), hold: true })
    const abort = new AbortController()
    const response = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${gw.tokenA}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: PROMPT }], stream: true }),
      signal: abort.signal
    })
    expect(response.status).toBe(200)
    const reader = response.body!.getReader()
    await reader.read()
    abort.abort()
    await reader.cancel().catch(() => undefined)
    await upstream.seen[0]!.closed
    expect(upstream.seen[0]!.closedEarly).toBe(true)
    const rows = (await waitForRows(gw.orgA, before + 1)).slice(before)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ status: "cancelled", model: "gpt-4o-mini" })
    expect(rows[0]!.inputTokens).toBeGreaterThan(0)
  })
})

describe("a client that leaves a non-streamed call", () => {
  it("cancels the upstream call and is metered once, as cancelled", async () => {
    const before = (await gw.ledger(gw.orgA)).length
    upstream.script({ frames: openAiChat.text("gpt-4o-mini").slice(0, 3), hold: true })
    const abort = new AbortController()
    const pending = client()
      .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: PROMPT }] }, { signal: abort.signal })
      .catch((e) => e)
    while (upstream.seen.length === 0) await new Promise((r) => setTimeout(r, 5))
    abort.abort()
    expect(await pending).toBeInstanceOf(OpenAI.APIUserAbortError)
    await upstream.seen[0]!.closed
    expect(upstream.seen[0]!.closedEarly).toBe(true)
    const rows = (await waitForRows(gw.orgA, before + 1)).slice(before)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ status: "cancelled", model: "gpt-4o-mini" })
  })
})

describe("bad input: OpenAI-shaped errors, nothing sent upstream, nothing metered", () => {
  it("malformed JSON, an unknown model, a model without the org's key, an oversized body, a bad field", async () => {
    const beforeA = (await gw.ledger(gw.orgA)).length
    const beforeB = (await gw.ledger(gw.orgB)).length

    const malformed = await post("{\"model\": \"gpt-4o-mini\", ")
    expect(malformed.status).toBe(400)
    expect(await errorOf(malformed)).toMatchObject({ type: "invalid_request_error", code: "invalid_json", param: null })

    const unknown = await client().chat.completions.create({ model: "gpt-9", messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError)
    expect(unknown.error).toMatchObject({ code: "model_not_found", param: "model" })

    const noKey = await client(gw.tokenB).chat.completions.create({ model: "claude-sonnet", messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    expect(noKey).toBeInstanceOf(OpenAI.BadRequestError)
    expect(noKey.error).toMatchObject({ code: "model_not_enabled", param: "model" })

    const huge = await post(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x".repeat(100 * 1024) }] }))
    expect(huge.status).toBe(413)
    expect(await errorOf(huge)).toMatchObject({ code: "request_too_large" })

    const badField = await post(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: 42 }] }))
    expect(badField.status).toBe(400)
    const badBody = await errorOf(badField)
    expect(badBody).toMatchObject({ type: "invalid_request_error", param: "messages[0].content" })

    const badArgs = await post(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "assistant", tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{nope" } }] }] }))
    expect(await errorOf(badArgs)).toMatchObject({ param: "messages[0].tool_calls[0].function.arguments" })

    const many = await post(JSON.stringify({ model: "gpt-4o-mini", n: 2, messages: [{ role: "user", content: "hi" }] }))
    expect(await errorOf(many)).toMatchObject({ code: "invalid_value", param: "n" })
    const forced = await post(JSON.stringify({ model: "gpt-4o-mini", tool_choice: "required", messages: [{ role: "user", content: "hi" }] }))
    expect(await errorOf(forced)).toMatchObject({ code: "invalid_value", param: "tool_choice" })
    const orphan = await post(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "tool", tool_call_id: "nope", content: "x" }] }))
    expect(await errorOf(orphan)).toMatchObject({ param: "messages[0].tool_call_id" })

    const wrongPath = await fetch(`${gw.url}/v1/completions`, { method: "POST", headers: { authorization: `Bearer ${gw.tokenA}` } })
    expect(wrongPath.status).toBe(404)
    expect(await errorOf(wrongPath)).toMatchObject({ code: "unknown_url" })

    expect(upstream.seen).toHaveLength(0)
    expect((await gw.ledger(gw.orgA)).length).toBe(beforeA)
    expect((await gw.ledger(gw.orgB)).length).toBe(beforeB)
  })
})

describe("no content in logs", () => {
  it("the captured logs hold counts and statuses, never the prompt, the completion or a key", async () => {
    // Its own calls (streamed and not), beside everything the file did before.
    upstream.script({ frames: openAiChat.text("gpt-4o-mini") }, { frames: anthropic.twoTools })
    await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: PROMPT }] })
    for await (const _ of await client().chat.completions.create({ model: "claude-sonnet", messages: [{ role: "user", content: PROMPT }], stream: true })) void _
    expect(gw.logs.some((line) => line.includes("status=ok") && line.includes("input_tokens=1200"))).toBe(true)
    expect(gw.logs.some((line) => line.includes("status=ok") && line.includes("input_tokens=472") && line.includes("output_tokens=89"))).toBe(true)
    for (const secret of [PROMPT, "PROMPT-MARKER", "Hello, world", "first half of an ans", "Paris", "approve", MANAGED_OPENAI, MANAGED_ANTHROPIC, "Sorry about that"]) {
      expect(gw.logs.filter((line) => line.includes(secret))).toEqual([])
    }
  })
})

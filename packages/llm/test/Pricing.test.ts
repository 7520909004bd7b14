import { describe, it, assert } from "@effect/vitest"
import { ModelPricing } from "@relavium/ports"
import { Cost } from "@relavium/domain"
import { Effect, Option } from "effect"
import { Pricing } from "../src/index.js"

const priceOf = (provider: string, model: string) =>
  Effect.flatMap(ModelPricing, (pricing) => pricing.priceOf(provider, model))

const inputPrice = (provider: string, model: string) =>
  Effect.map(priceOf(provider, model), Option.map((price) => price.inputPerMTok))

describe("the shipped table", () => {
  it("holds integer micro-cent prices, one row per provider and model", () => {
    const keys = new Set<string>()
    for (const row of Pricing.table) {
      const key = `${row.provider}/${row.model}`
      assert.isFalse(keys.has(key), `duplicate row ${key}`)
      keys.add(key)
      assert.isTrue(Number.isInteger(row.price.inputPerMTok) && Number.isInteger(row.price.outputPerMTok))
      // A canonical id must normalise to itself, or the row could never be found.
      assert.strictEqual(Pricing.normalizeModelId(row.model), row.model)
    }
  })

  it("prices Claude Sonnet 4 at $3 in / $15 out / $0.30 cached", () => {
    const row = Option.getOrThrow(Pricing.lookup("anthropic", "claude-sonnet-4"))
    assert.strictEqual(row.price.inputPerMTok, 300_000_000)
    assert.strictEqual(row.price.outputPerMTok, 1_500_000_000)
    assert.strictEqual(row.price.cachedInputPerMTok, 30_000_000)
  })
})

describe("normalizeModelId", () => {
  it("strips one snapshot suffix and resolves -0 aliases", () => {
    assert.strictEqual(Pricing.normalizeModelId("claude-sonnet-4-20250514"), "claude-sonnet-4")
    assert.strictEqual(Pricing.normalizeModelId("claude-3-5-haiku-latest"), "claude-3-5-haiku")
    assert.strictEqual(Pricing.normalizeModelId("claude-opus-4-0"), "claude-opus-4")
    assert.strictEqual(Pricing.normalizeModelId("gpt-4o-mini-2024-07-18"), "gpt-4o-mini")
    assert.strictEqual(Pricing.normalizeModelId("models/gemini-2.0-flash-001"), "gemini-2.0-flash")
    assert.strictEqual(Pricing.normalizeModelId(" GPT-4.1 "), "gpt-4.1")
  })

  it("leaves distinct models and previews alone", () => {
    assert.strictEqual(Pricing.normalizeModelId("claude-sonnet-4-5"), "claude-sonnet-4-5")
    assert.strictEqual(Pricing.normalizeModelId("gemini-2.5-flash-preview-05-20"), "gemini-2.5-flash-preview-05-20")
    assert.strictEqual(Pricing.normalizeModelId("gpt-4o-audio-preview"), "gpt-4o-audio-preview")
  })
})

describe("layerStatic", () => {
  it.effect("finds models by alias and by dated snapshot", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* inputPrice("anthropic", "claude-sonnet-4-20250514"), Option.some(300_000_000))
      assert.deepStrictEqual(yield* inputPrice("openai", "gpt-4o-2024-08-06"), Option.some(250_000_000))
      assert.deepStrictEqual(yield* inputPrice("openai", "gpt-4o-mini-2024-07-18"), Option.some(15_000_000))
      assert.deepStrictEqual(yield* inputPrice("anthropic", "claude-opus-4-5-20251101"), Option.some(500_000_000))
      assert.deepStrictEqual(yield* inputPrice("anthropic", "claude-opus-4-1-20250805"), Option.some(1_500_000_000))
      assert.deepStrictEqual(yield* inputPrice("gemini", "models/gemini-2.5-pro"), Option.some(125_000_000))
      assert.deepStrictEqual(yield* inputPrice("deepseek", "deepseek-reasoner"), Option.some(28_000_000))
    }).pipe(Effect.provide(Pricing.layerStatic)))

  it.effect("returns none for unknown models, previews and other providers", () =>
    Effect.gen(function*() {
      assert.isTrue(Option.isNone(yield* priceOf("openai", "gpt-9-ultra")))
      assert.isTrue(Option.isNone(yield* priceOf("openai", "gpt-4o-audio-preview")))
      assert.isTrue(Option.isNone(yield* priceOf("gemini", "gemini-2.5-flash-preview-05-20")))
      // The same id behind another provider is not billed at the vendor's list price.
      assert.isTrue(Option.isNone(yield* priceOf("openrouter", "gpt-4o")))
    }).pipe(Effect.provide(Pricing.layerStatic)))
})

describe("layerWithOverrides", () => {
  const userPrice = new Cost.ModelPrice({ inputPerMTok: 1_000, outputPerMTok: 2_000 })
  const layer = Pricing.layerWithOverrides([
    { provider: "ollama", model: "llama3.1:8b", price: userPrice },
    { provider: "openai", model: "gpt-4o", price: userPrice },
    { provider: "openai", model: "ft:gpt-4o-mini:acme", price: userPrice }
  ])

  it.effect("prices models the table does not know", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* priceOf("ollama", "llama3.1:8b"), Option.some(userPrice))
      assert.deepStrictEqual(yield* priceOf("openai", "FT:GPT-4O-MINI:ACME"), Option.some(userPrice))
      assert.isTrue(Option.isNone(yield* priceOf("ollama", "llama3.1:70b")))
    }).pipe(Effect.provide(layer)))

  it.effect("never lets a user price win over a shipped one", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* inputPrice("openai", "gpt-4o"), Option.some(250_000_000))
      assert.deepStrictEqual(yield* inputPrice("openai", "gpt-4o-2024-11-20"), Option.some(250_000_000))
    }).pipe(Effect.provide(layer)))
})

describe("Cost.costOf with shipped prices", () => {
  it("bills cached input at the cache-read price", () => {
    const sonnet = Option.getOrThrow(Pricing.lookup("anthropic", "claude-sonnet-4")).price
    // 6,000 fresh input × $3 + 4,000 cached × $0.30 + 2,000 output × $15 (per MTok)
    const cost = Cost.costOf(sonnet, { inputTokens: 10_000, cacheReadTokens: 4_000, outputTokens: 2_000 })
    assert.strictEqual(cost, 1_800_000 + 120_000 + 3_000_000)
    assert.strictEqual(Cost.formatUsd(cost), "$0.049200")
  })

  it("bills reasoning tokens as output unless the price splits them out", () => {
    const o3 = Option.getOrThrow(Pricing.lookup("openai", "o3")).price
    const usage = { inputTokens: 1_000, outputTokens: 800, reasoningTokens: 500 }
    // 1,000 × $2 + 800 × $8 per MTok: reasoning is already inside the 800 output tokens.
    assert.strictEqual(Cost.costOf(o3, usage), 200_000 + 640_000)
    const split = new Cost.ModelPrice({ ...o3, reasoningPerMTok: 400_000_000 })
    assert.strictEqual(Cost.costOf(split, usage), 200_000 + 240_000 + 200_000)
  })

  it("rounds once per token class", () => {
    const mini = Option.getOrThrow(Pricing.lookup("openai", "gpt-4o-mini")).price
    // 3 tokens × 15,000,000 / 1e6 = 45; 1 cached × 7,500,000 / 1e6 = 7.5 → 8; 1 output × 60,000,000 / 1e6 = 60
    assert.strictEqual(Cost.costOf(mini, { inputTokens: 4, cacheReadTokens: 1, outputTokens: 1 }), 45 + 8 + 60)
  })
})

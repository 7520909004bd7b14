/**
 * The routes file: a good one becomes routes (keys named after the provider, prices from the
 * shipped list or the file, the output cap, fallbacks in order); a bad one is refused with the
 * file and the place that is wrong.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { Routing } from "../src/index.js"

const parse = (file: unknown) => Routing.parse(JSON.stringify(file), "routes.json")

const messageOf = (result: ReturnType<typeof parse>) => (Either.isLeft(result) ? result.left.message : "accepted")

describe("the routes file", () => {
  it("resolves providers, keys, prices, caps and fallbacks", () => {
    const result = parse({
      providers: { house: { wire: "openai-chat", base_url: "http://127.0.0.1:9000/v1", key_name: "house-key" } },
      models: {
        mini: { provider: "openai", model: "gpt-4o-mini" },
        sonnet: { provider: "anthropic", model: "claude-sonnet-4-5", max_output_tokens: 1000 },
        house: { provider: "house", model: "h1", price: { input_usd_per_mtok: 0.5, output_usd_per_mtok: 1.5 } }
      },
      fallbacks: { sonnet: ["mini", "house"] },
      default_max_output_tokens: 2000
    })
    if (Either.isLeft(result)) throw new Error(result.left.message)
    const routes = result.right
    expect(routes.routes.get("mini")).toMatchObject({ provider: "openai", keyName: "openai", keyRequired: true, maxOutputTokens: 2000 })
    expect(routes.routes.get("sonnet")).toMatchObject({ keyName: "anthropic", maxOutputTokens: 1000 })
    expect(routes.routes.get("house")).toMatchObject({ keyName: "house-key", price: { inputPerMTok: 50_000_000, outputPerMTok: 150_000_000 } })
    expect(routes.fallbacks.get("sonnet")!.map((r) => r.name)).toEqual(["mini", "house"])
    expect(routes.providers.providers?.house).toMatchObject({ wire: "openai-chat", baseUrl: "http://127.0.0.1:9000/v1", keyName: "house-key" })
    expect(routes.providers.maxAttempts).toBe(1)
    // Managed mode's `<provider>/<model>` names: a route of the file, or one made for a priced model of a known provider.
    expect(routes.resolve("openai/gpt-4o-mini")?.name).toBe("mini")
    expect(routes.resolve("anthropic/claude-haiku-4-5")).toMatchObject({ name: "anthropic/claude-haiku-4-5", provider: "anthropic", model: "claude-haiku-4-5", keyName: "anthropic", maxOutputTokens: 2000 })
    expect(routes.resolve("house/h1")?.name).toBe("house")
    expect(routes.resolve("openai/gpt-unpriced")).toBeUndefined()
    expect(routes.resolve("nowhere/gpt-4o")).toBeUndefined()
    expect(routes.resolve("gpt-4o")).toBeUndefined()
    expect(routes.resolve("openai/")).toBeUndefined()
    expect(Routing.parse(JSON.stringify({ models: { local: { provider: "ollama", model: "llama3", price: { input_usd_per_mtok: 0, output_usd_per_mtok: 0 } } } }), "r").pipe(Either.map((r) => r.routes.get("local")!.keyRequired))).toEqual(Either.right(false))
  })

  it("refuses a bad file, saying where", () => {
    expect(messageOf(Routing.parse("{ nope", "routes.json"))).toMatch(/^routes\.json: not JSON/)
    expect(messageOf(parse({ models: { a: { provider: "openai" } } }))).toMatch(/^routes\.json at models\.a\.model: /)
    expect(messageOf(parse({ models: {}, extra: 1 }))).toMatch(/^routes\.json at extra: /)
    expect(messageOf(parse({ models: { a: { provider: "nowhere", model: "m" } } }))).toContain("models.a.provider: unknown provider 'nowhere'")
    expect(messageOf(parse({ models: { a: { provider: "openai", model: "gpt-unknown" } } }))).toContain("models.a.price: openai/gpt-unknown is not in the shipped price list")
    expect(messageOf(parse({ models: { a: { provider: "openai", model: "gpt-4o" } }, fallbacks: { a: ["b"], c: ["a"] } }))).toMatch(
      /fallbacks\.a\[0\]: no model 'b'.*fallbacks\.c: no model of that name/
    )
    expect(messageOf(parse({ models: { a: { provider: "openai", model: "gpt-4o" } }, fallbacks: { a: ["a"] } }))).toContain("cannot fall back to itself")
    expect(messageOf(parse({ providers: { mine: { base_url: "http://x" } }, models: {} }))).toContain("providers.mine: a provider that is not built in needs both wire and base_url")
    expect(messageOf(parse({ providers: { openai: { base_url: "ftp://x" } }, models: {} }))).toMatch(/at providers\.openai\.base_url: a base URL is http/)
  })
})

/**
 * The shipped price list for well-known models and the `ModelPricing` layers
 * built on it. Prices are integer micro-cents per million tokens (1 USD =
 * 100,000,000 micro-cents, so $3 / MTok = 300_000_000), taken from each
 * vendor's public list price for the standard (non-batch, short-context) tier.
 *
 * Static prices win over a user overlay for any model they know
 * (docs/workflow-format.md, "Budgets"), so a user cannot silently misprice a shipped model; the
 * overlay only prices models the table does not know.
 */
import { FileSystem } from "@effect/platform"
import { ModelPricing } from "@relavium/ports"
import { Cost } from "@relavium/domain"
import { Data, Effect, Either, Layer, Option, ParseResult, Schema } from "effect"

/** One row of the price list, also what `relavium models` shows. */
export interface PricedModel {
  readonly provider: string
  /** Canonical id: the undated alias a workflow names. */
  readonly model: string
  readonly displayName: string
  readonly contextWindowTokens: number
  readonly price: Cost.ModelPrice
}

/** A user-supplied price, for models the shipped table does not know. */
export interface PriceOverride {
  readonly provider: string
  readonly model: string
  readonly price: Cost.ModelPrice
}

/** When the list prices below were last checked against the vendors' pages. */
export const pricesCheckedOn = "2025-11"

/** Dollars per million tokens → integer micro-cents per million tokens. */
const usd = (perMTok: number): number => Math.round(perMTok * Cost.MICROCENTS_PER_USD)

const row = (
  provider: string,
  model: string,
  displayName: string,
  contextWindowTokens: number,
  prices: { readonly input: number; readonly output: number; readonly cachedInput: number }
): PricedModel => ({
  provider,
  model,
  displayName,
  contextWindowTokens,
  // The class constructor validates, so a typo that yields a fraction fails at load, not in a bill.
  price: new Cost.ModelPrice({
    inputPerMTok: usd(prices.input),
    outputPerMTok: usd(prices.output),
    cachedInputPerMTok: usd(prices.cachedInput)
  })
})

/**
 * The shipped price list, grouped by provider. Reasoning tokens are billed as
 * output tokens by every vendor listed, so no row sets `reasoningPerMTok`.
 * Anthropic's cache-write surcharge is not modelled (`Cost.costOf` bills
 * cache writes as ordinary input).
 */
export const table: ReadonlyArray<PricedModel> = [
  // OpenAI — cached input is the automatic prompt-cache read price.
  row("openai", "gpt-5", "GPT-5", 400_000, { input: 1.25, output: 10, cachedInput: 0.125 }),
  row("openai", "gpt-5-mini", "GPT-5 mini", 400_000, { input: 0.25, output: 2, cachedInput: 0.025 }),
  row("openai", "gpt-5-nano", "GPT-5 nano", 400_000, { input: 0.05, output: 0.4, cachedInput: 0.005 }),
  row("openai", "gpt-4.1", "GPT-4.1", 1_047_576, { input: 2, output: 8, cachedInput: 0.5 }),
  row("openai", "gpt-4.1-mini", "GPT-4.1 mini", 1_047_576, { input: 0.4, output: 1.6, cachedInput: 0.1 }),
  row("openai", "gpt-4.1-nano", "GPT-4.1 nano", 1_047_576, { input: 0.1, output: 0.4, cachedInput: 0.025 }),
  row("openai", "gpt-4o", "GPT-4o", 128_000, { input: 2.5, output: 10, cachedInput: 1.25 }),
  row("openai", "gpt-4o-mini", "GPT-4o mini", 128_000, { input: 0.15, output: 0.6, cachedInput: 0.075 }),
  row("openai", "o3", "o3", 200_000, { input: 2, output: 8, cachedInput: 0.5 }),
  row("openai", "o3-mini", "o3-mini", 200_000, { input: 1.1, output: 4.4, cachedInput: 0.55 }),
  row("openai", "o4-mini", "o4-mini", 200_000, { input: 1.1, output: 4.4, cachedInput: 0.275 }),
  // Anthropic — cached input is the cache-read price (0.1× input).
  row("anthropic", "claude-opus-4-5", "Claude Opus 4.5", 200_000, { input: 5, output: 25, cachedInput: 0.5 }),
  row("anthropic", "claude-opus-4-1", "Claude Opus 4.1", 200_000, { input: 15, output: 75, cachedInput: 1.5 }),
  row("anthropic", "claude-opus-4", "Claude Opus 4", 200_000, { input: 15, output: 75, cachedInput: 1.5 }),
  row("anthropic", "claude-sonnet-4-5", "Claude Sonnet 4.5", 200_000, { input: 3, output: 15, cachedInput: 0.3 }),
  row("anthropic", "claude-sonnet-4", "Claude Sonnet 4", 200_000, { input: 3, output: 15, cachedInput: 0.3 }),
  row("anthropic", "claude-3-7-sonnet", "Claude Sonnet 3.7", 200_000, { input: 3, output: 15, cachedInput: 0.3 }),
  row("anthropic", "claude-haiku-4-5", "Claude Haiku 4.5", 200_000, { input: 1, output: 5, cachedInput: 0.1 }),
  row("anthropic", "claude-3-5-haiku", "Claude Haiku 3.5", 200_000, { input: 0.8, output: 4, cachedInput: 0.08 }),
  // Gemini — the ≤200K-token prompt tier for Pro; text/image/video input for Flash.
  row("gemini", "gemini-2.5-pro", "Gemini 2.5 Pro", 1_048_576, { input: 1.25, output: 10, cachedInput: 0.125 }),
  row("gemini", "gemini-2.5-flash", "Gemini 2.5 Flash", 1_048_576, { input: 0.3, output: 2.5, cachedInput: 0.03 }),
  row("gemini", "gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", 1_048_576, {
    input: 0.1,
    output: 0.4,
    cachedInput: 0.01
  }),
  row("gemini", "gemini-2.0-flash", "Gemini 2.0 Flash", 1_048_576, { input: 0.1, output: 0.4, cachedInput: 0.025 }),
  // DeepSeek — both aliases serve V3.2 at one price; cached input is the cache-hit price.
  row("deepseek", "deepseek-chat", "DeepSeek V3.2 (chat)", 128_000, { input: 0.28, output: 0.42, cachedInput: 0.028 }),
  row("deepseek", "deepseek-reasoner", "DeepSeek V3.2 (reasoner)", 128_000, {
    input: 0.28,
    output: 0.42,
    cachedInput: 0.028
  })
]

// ---------------------------------------------------------------------------
// Model id normalisation

/**
 * Snapshot suffixes that name the same model at the same price as its alias:
 * Anthropic `-20250514`, OpenAI `-2024-08-06`, Anthropic `-latest`, Gemini
 * stable versions `-001`. Only one suffix, only at the end.
 *
 * Deliberately not stripped: `-preview-MM-DD` / `-exp-…` (Gemini previews
 * were priced differently from the GA model), and nothing is ever matched by
 * prefix — `gpt-4o-mini` must never fall back to `gpt-4o`, nor
 * `gpt-4o-audio-preview` (its own price) to `gpt-4o`.
 */
const SNAPSHOT_SUFFIX = /-(?:20\d{6}|20\d{2}-\d{2}-\d{2}|latest|\d{3})$/

/**
 * Anthropic's `-0` aliases (`claude-sonnet-4-0`) mean the first release of
 * that major version; they cannot be stripped by pattern because
 * `claude-sonnet-4-5` is a different model.
 */
const ALIASES: ReadonlyMap<string, string> = new Map([
  ["claude-sonnet-4-0", "claude-sonnet-4"],
  ["claude-opus-4-0", "claude-opus-4"]
])

/** Case-folded id without Gemini's `models/` resource prefix: the form every table is keyed by. */
const canonicalForm = (model: string): string => {
  const lower = model.trim().toLowerCase()
  return lower.startsWith("models/") ? lower.slice("models/".length) : lower
}

/**
 * The canonical id a model is priced under: case-folded, `models/` dropped,
 * one snapshot suffix (see above) removed, then `-0` aliases resolved.
 * `claude-sonnet-4-20250514` → `claude-sonnet-4`, `gpt-4o-2024-08-06` →
 * `gpt-4o`, `models/gemini-2.0-flash-001` → `gemini-2.0-flash`.
 */
export const normalizeModelId = (model: string): string => {
  const stripped = canonicalForm(model).replace(SNAPSHOT_SUFFIX, "")
  return ALIASES.get(stripped) ?? stripped
}

/** Ids to try, most specific first, so an exact (even dated) entry beats its alias. */
const candidateIds = (model: string): ReadonlyArray<string> => {
  const exact = canonicalForm(model)
  const normalized = normalizeModelId(model)
  return exact === normalized ? [exact] : [exact, normalized]
}

const keyOf = (provider: string, model: string): string => `${provider.trim().toLowerCase()}/${model}`

interface Index<A> {
  readonly get: (provider: string, model: string) => Option.Option<A>
}

/**
 * Entries are keyed by provider as well as model: the same id served by
 * another provider (a proxy, a self-hosted OpenAI-compatible server) is not
 * billed at the vendor's list price, so it is unpriced unless the user prices it.
 */
const indexOf = <A extends { readonly provider: string; readonly model: string }>(entries: Iterable<A>): Index<A> => {
  const byKey = new Map<string, A>()
  for (const entry of entries) byKey.set(keyOf(entry.provider, canonicalForm(entry.model)), entry)
  return {
    get: (provider, model) => {
      for (const id of candidateIds(model)) {
        const entry = byKey.get(keyOf(provider, id))
        if (entry !== undefined) return Option.some(entry)
      }
      return Option.none()
    }
  }
}

const staticIndex = indexOf(table)

/** The shipped row for a model, after normalisation; `none` when the table does not know it. */
export const lookup = (provider: string, model: string): Option.Option<PricedModel> => staticIndex.get(provider, model)

const staticPrice = (provider: string, model: string): Option.Option<Cost.ModelPrice> =>
  Option.map(staticIndex.get(provider, model), (entry) => entry.price)

/** `ModelPricing` from the shipped table alone. */
export const layerStatic: Layer.Layer<ModelPricing> = Layer.succeed(
  ModelPricing,
  ModelPricing.of({ priceOf: (provider, model) => Effect.succeed(staticPrice(provider, model)) })
)

/**
 * `ModelPricing` from the shipped table plus user prices. A user price for a
 * model the table knows is ignored (static wins); one for an unknown model
 * makes it priced, so budgets can enforce it.
 */
export const layerWithOverrides = (overrides: Iterable<PriceOverride>): Layer.Layer<ModelPricing> => {
  const overlay = indexOf(overrides)
  // Static first: the overlay is consulted only for models the table does not know.
  const priceOf = (provider: string, model: string): Option.Option<Cost.ModelPrice> =>
    Option.orElse(staticPrice(provider, model), () => Option.map(overlay.get(provider, model), (entry) => entry.price))
  return Layer.succeed(
    ModelPricing,
    ModelPricing.of({ priceOf: (provider, model) => Effect.succeed(priceOf(provider, model)) })
  )
}

/** The price table as people read it (USD per million tokens): `relavium models` and `GET /models`. */
export const listing = () =>
  table.map((row) => ({
    provider: row.provider,
    model: row.model,
    name: row.displayName,
    contextWindowTokens: row.contextWindowTokens,
    inputPerMTokUsd: row.price.inputPerMTok / Cost.MICROCENTS_PER_USD,
    outputPerMTokUsd: row.price.outputPerMTok / Cost.MICROCENTS_PER_USD,
    cachedInputPerMTokUsd:
      row.price.cachedInputPerMTok === undefined ? null : row.price.cachedInputPerMTok / Cost.MICROCENTS_PER_USD
  }))

/** A price file that cannot be read or does not match its schema; the message locates the problem. */
export class PricingError extends Data.TaggedError("PricingError")<{ readonly message: string }> {}

const UsdPerMTok = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())

/**
 * The user's price file (`prices.json` in the data directory, or
 * `$RELAVIUM_PRICES`): prices in US dollars per million tokens for models
 * the shipped table does not know (a fine-tune, a self-hosted model).
 *
 * ```json
 * { "prices": [{ "provider": "ollama", "model": "llama3.1:8b",
 *                "input_per_mtok_usd": 0.1, "output_per_mtok_usd": 0.2 }] }
 * ```
 */
export const PriceFile = Schema.Struct({
  prices: Schema.Array(
    Schema.Struct({
      provider: Schema.NonEmptyTrimmedString,
      model: Schema.NonEmptyTrimmedString,
      input_per_mtok_usd: UsdPerMTok,
      output_per_mtok_usd: UsdPerMTok,
      cached_input_per_mtok_usd: Schema.optional(UsdPerMTok),
      reasoning_per_mtok_usd: Schema.optional(UsdPerMTok)
    })
  )
})

/** Decodes a price file's text; every problem is reported as `file: path.to.field: message`. */
export const parsePriceFile = (text: string, file: string): Either.Either<ReadonlyArray<PriceOverride>, PricingError> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Either.left(new PricingError({ message: `${file}: not valid JSON: ${(e as Error).message}` }))
  }
  return Schema.decodeUnknownEither(PriceFile, { errors: "all", onExcessProperty: "error" })(json).pipe(
    Either.mapLeft((error) => {
      const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
      const lines = issues.map((i) => `${file}: ${i.path.length === 0 ? "(top level)" : i.path.join(".")}: ${i.message}`)
      return new PricingError({ message: lines.join("\n") })
    }),
    Either.map((decoded) =>
      decoded.prices.map((p) => ({
        provider: p.provider,
        model: p.model,
        price: new Cost.ModelPrice({
          inputPerMTok: usd(p.input_per_mtok_usd),
          outputPerMTok: usd(p.output_per_mtok_usd),
          ...(p.cached_input_per_mtok_usd === undefined ? {} : { cachedInputPerMTok: usd(p.cached_input_per_mtok_usd) }),
          ...(p.reasoning_per_mtok_usd === undefined ? {} : { reasoningPerMTok: usd(p.reasoning_per_mtok_usd) })
        })
      }))
    )
  )
}

/** Reads the user's price file; a missing file is no prices. */
export const loadPriceFile = (file: string): Effect.Effect<ReadonlyArray<PriceOverride>, PricingError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const exists = yield* fs.exists(file).pipe(Effect.orElseSucceed(() => false))
    if (!exists) return []
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((e) => new PricingError({ message: `${file}: cannot read the price file: ${e.message}` }))
    )
    return yield* parsePriceFile(text, file)
  })

/** The shipped table plus the user's price file (if it exists). */
export const layerFile = (file: string): Layer.Layer<ModelPricing, PricingError, FileSystem.FileSystem> =>
  Layer.unwrapEffect(Effect.map(loadPriceFile(file), layerWithOverrides))

/** Of the user's prices, the ones the shipped table already prices (and so are not used). */
export const shadowed = (overrides: ReadonlyArray<PriceOverride>): ReadonlyArray<PriceOverride> =>
  overrides.filter((o) => Option.isSome(staticIndex.get(o.provider, o.model)))

/**
 * The models `GET /models` and `relavium models --json` list: the shipped price list, then the models the user's price file
 * prices that the list does not know (the same rule as the engine: a shipped price wins).
 */
export const catalog = (overrides: ReadonlyArray<PriceOverride> = []) => {
  const shipped = listing().map((row) => ({ ...row, source: "shipped" as const }))
  const seen = new Set<string>()
  const user = overrides
    .filter((o) => Option.isNone(lookup(o.provider, o.model)))
    .filter((o) => {
      const key = `${o.provider}/${o.model}`
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
    .map((o) => ({
      provider: o.provider,
      model: o.model,
      name: o.model,
      contextWindowTokens: null,
      inputPerMTokUsd: o.price.inputPerMTok / Cost.MICROCENTS_PER_USD,
      outputPerMTokUsd: o.price.outputPerMTok / Cost.MICROCENTS_PER_USD,
      cachedInputPerMTokUsd: o.price.cachedInputPerMTok === undefined ? null : o.price.cachedInputPerMTok / Cost.MICROCENTS_PER_USD,
      source: "user" as const
    }))
  return [...shipped, ...user]
}

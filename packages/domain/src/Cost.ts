/**
 * Money is counted in integer micro-cents: 1 USD = 100 cents = 100,000,000 micro-cents.
 * Integers keep sums exact across thousands of calls.
 */
import { Schema } from "effect"

export const Microcents = Schema.Int.pipe(Schema.nonNegative())
export type Microcents = typeof Microcents.Type

export const MICROCENTS_PER_USD = 100_000_000

/** Price of one model, per million tokens, in micro-cents. */
export class ModelPrice extends Schema.Class<ModelPrice>("ModelPrice")({
  inputPerMTok: Microcents,
  outputPerMTok: Microcents,
  cachedInputPerMTok: Schema.optional(Microcents),
  reasoningPerMTok: Schema.optional(Microcents)
}) {}

export interface TokenCounts {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly cacheReadTokens?: number | undefined
  readonly reasoningTokens?: number | undefined
}

/**
 * Cost of one call: each token class times its price, rounded once per class.
 * Reasoning tokens are counted inside output tokens, so they are billed there
 * unless the model prices them separately.
 */
export const costOf = (price: ModelPrice, usage: TokenCounts): number => {
  const cached = Math.min(usage.cacheReadTokens ?? 0, usage.inputTokens)
  const uncachedInput = usage.inputTokens - cached
  const reasoning = price.reasoningPerMTok === undefined ? 0 : Math.min(usage.reasoningTokens ?? 0, usage.outputTokens)
  const plainOutput = usage.outputTokens - reasoning
  const part = (tokens: number, perMTok: number) => Math.round((tokens * perMTok) / 1_000_000)
  return (
    part(uncachedInput, price.inputPerMTok) +
    part(cached, price.cachedInputPerMTok ?? price.inputPerMTok) +
    part(plainOutput, price.outputPerMTok) +
    part(reasoning, price.reasoningPerMTok ?? price.outputPerMTok)
  )
}

export const formatUsd = (microcents: number): string => `$${(microcents / MICROCENTS_PER_USD).toFixed(6)}`

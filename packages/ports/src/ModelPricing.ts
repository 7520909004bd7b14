/**
 * Prices per model, used for `cost:updated` and budget checks. A model with no
 * price is allowed and reported as unpriced.
 */
import type { Effect, Option } from "effect"
import { Context } from "effect"
import type { Cost } from "@relavium/domain"

export class ModelPricing extends Context.Tag("@relavium/ports/ModelPricing")<
  ModelPricing,
  {
    readonly priceOf: (provider: string, model: string) => Effect.Effect<Option.Option<Cost.ModelPrice>>
  }
>() {}

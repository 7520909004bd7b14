/**
 * Which upstream serves a model name: the gateway's routes file (docs/inference.md, "Routing").
 *
 * - `models`: each public model name → a provider (a built-in one of @relavium/llm's
 *   `builtinProviders`, or one declared under `providers`) and the provider's model id, with a
 *   price when the shipped price list does not know the model (every route is priced, so every
 *   request can be held against a budget);
 * - `fallbacks`: a model name → other model names tried in order when the upstream fails before
 *   any output (never once output has reached the client);
 * - `providers`: base URLs (and key names, wire formats) overriding or adding providers.
 *
 * The file is decoded with a schema; a bad one is refused with the place that is wrong, and the
 * process does not start.
 */
import { Cost } from "@relavium/domain"
import { Pricing, Providers } from "@relavium/llm"
import { Data, Either, Option, ParseResult, Schema } from "effect"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const Usd = Schema.Number.pipe(Schema.nonNegative())

const ProviderEntry = Schema.Struct({
  wire: Schema.optional(Schema.Literal("openai-chat", "openai-responses", "anthropic", "gemini")),
  base_url: Schema.optional(Schema.String.pipe(Schema.pattern(/^https?:\/\/\S+$/, { message: () => "a base URL is http(s)://host[:port][/path]" }))),
  key_name: Schema.optional(Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9._-]{0,63}$/))),
  key_required: Schema.optional(Schema.Boolean),
  dialect: Schema.optional(Schema.Literal("openai", "deepseek", "compatible"))
})

const Price = Schema.Struct({
  input_usd_per_mtok: Usd,
  output_usd_per_mtok: Usd,
  cached_input_usd_per_mtok: Schema.optional(Usd)
})

const ModelEntry = Schema.Struct({
  provider: Schema.String.pipe(Schema.minLength(1)),
  model: Schema.String.pipe(Schema.minLength(1)),
  price: Schema.optional(Price),
  /** The output cap sent (and reserved) when a request sets none; else the file's default. */
  max_output_tokens: Schema.optional(PositiveInt)
})

export const RoutesFile = Schema.Struct({
  providers: Schema.optional(Schema.Record({ key: Schema.String, value: ProviderEntry })),
  models: Schema.Record({ key: Schema.String.pipe(Schema.minLength(1)), value: ModelEntry }),
  fallbacks: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) })),
  /** The output cap of a request that sets none and whose model sets none (default 4096). */
  default_max_output_tokens: Schema.optional(PositiveInt),
  /** Attempts on each upstream before following the fallbacks (default 1: clients retry themselves). */
  max_attempts: Schema.optional(PositiveInt)
})
export type RoutesFile = typeof RoutesFile.Type

export class RoutesError extends Data.TaggedError("RoutesError")<{ readonly message: string }> {}

/** One model the gateway serves. */
export interface Route {
  /** The name clients send as `model`. */
  readonly name: string
  readonly provider: string
  /** The provider's model id. */
  readonly model: string
  /** The key store entry holding the org's managed key for this provider. */
  readonly keyName: string
  readonly keyRequired: boolean
  readonly price: Cost.ModelPrice
  readonly maxOutputTokens: number
}

export interface Routes {
  /** The routes the file names, by model name. */
  readonly routes: ReadonlyMap<string, Route>
  /**
   * The route of a model name: a name of the file, else `<provider>/<model>` (what managed mode's
   * `ManagedGateway` sends) — a route of the file with that provider and model, or, for a provider
   * of the file or a built-in one and a model of the shipped price list, a route made for it.
   */
  readonly resolve: (name: string) => Route | undefined
  /** Model name → the routes tried after it, in order. */
  readonly fallbacks: ReadonlyMap<string, ReadonlyArray<Route>>
  /** What `Providers.layer` needs to reach every provider of the file. */
  readonly providers: Providers.ProvidersConfig
}

const usd = (perMTok: number) => Math.round(perMTok * Cost.MICROCENTS_PER_USD)

const decodeFile = Schema.decodeUnknownEither(RoutesFile, { errors: "first", onExcessProperty: "error" })

/** A decoded routes file checked as a whole: known providers, priced models, fallbacks naming models. */
export const fromFile = (file: RoutesFile): Either.Either<Routes, RoutesError> => {
  const problems: Array<string> = []
  const defaultCap = file.default_max_output_tokens ?? 4096
  const settings = (provider: string) => {
    const own = file.providers?.[provider]
    const builtin = Providers.builtinProviders[provider]
    return {
      known: builtin !== undefined || (own?.wire !== undefined && own.base_url !== undefined),
      keyName: own?.key_name ?? builtin?.keyName ?? provider,
      keyRequired: own?.key_required ?? builtin?.keyRequired ?? true
    }
  }
  for (const [name, own] of Object.entries(file.providers ?? {})) {
    if (Providers.builtinProviders[name] === undefined && (own.wire === undefined || own.base_url === undefined)) {
      problems.push(`providers.${name}: a provider that is not built in needs both wire and base_url`)
    }
  }
  const routes = new Map<string, Route>()
  for (const [name, entry] of Object.entries(file.models)) {
    const provider = settings(entry.provider)
    if (!provider.known) {
      problems.push(`models.${name}.provider: unknown provider '${entry.provider}' (built in: ${Object.keys(Providers.builtinProviders).join(", ")}; or declare it under providers)`)
      continue
    }
    const price = entry.price
      ? Option.some(
          new Cost.ModelPrice({
            inputPerMTok: usd(entry.price.input_usd_per_mtok),
            outputPerMTok: usd(entry.price.output_usd_per_mtok),
            ...(entry.price.cached_input_usd_per_mtok !== undefined ? { cachedInputPerMTok: usd(entry.price.cached_input_usd_per_mtok) } : {})
          })
        )
      : Option.map(Pricing.lookup(entry.provider, entry.model), (row) => row.price)
    if (Option.isNone(price)) {
      problems.push(`models.${name}.price: ${entry.provider}/${entry.model} is not in the shipped price list; give its price (input_usd_per_mtok, output_usd_per_mtok)`)
      continue
    }
    routes.set(name, {
      name,
      provider: entry.provider,
      model: entry.model,
      keyName: provider.keyName,
      keyRequired: provider.keyRequired,
      price: price.value,
      maxOutputTokens: entry.max_output_tokens ?? defaultCap
    })
  }
  const fallbacks = new Map<string, ReadonlyArray<Route>>()
  for (const [name, alternates] of Object.entries(file.fallbacks ?? {})) {
    if (!(name in file.models)) problems.push(`fallbacks.${name}: no model of that name under models`)
    const chain: Array<Route> = []
    alternates.forEach((alternate, i) => {
      const route = routes.get(alternate)
      if (route === undefined) problems.push(`fallbacks.${name}[${i}]: no model '${alternate}' under models`)
      else if (alternate === name) problems.push(`fallbacks.${name}[${i}]: a model cannot fall back to itself`)
      else chain.push(route)
    })
    fallbacks.set(name, chain)
  }
  if (problems.length > 0) return Either.left(new RoutesError({ message: problems.join("; ") }))
  const providers: Record<string, Partial<Providers.ProviderSettings>> = {}
  for (const [name, own] of Object.entries(file.providers ?? {})) {
    providers[name] = {
      ...(own.wire !== undefined ? { wire: own.wire } : {}),
      ...(own.base_url !== undefined ? { baseUrl: own.base_url } : {}),
      ...(own.key_name !== undefined ? { keyName: own.key_name } : {}),
      ...(own.key_required !== undefined ? { keyRequired: own.key_required } : {}),
      ...(own.dialect !== undefined ? { dialect: own.dialect } : {})
    }
  }
  const resolve = (name: string): Route | undefined => {
    const named = routes.get(name)
    if (named !== undefined) return named
    const slash = name.indexOf("/")
    if (slash <= 0 || slash === name.length - 1) return undefined
    const provider = name.slice(0, slash)
    const model = name.slice(slash + 1)
    for (const route of routes.values()) if (route.provider === provider && route.model === model) return route
    const known = settings(provider)
    if (!known.known) return undefined
    return Option.match(Pricing.lookup(provider, model), {
      onNone: () => undefined,
      onSome: (row) => ({ name, provider, model, keyName: known.keyName, keyRequired: known.keyRequired, price: row.price, maxOutputTokens: defaultCap })
    })
  }
  return Either.right({ routes, fallbacks, resolve, providers: { providers, maxAttempts: file.max_attempts ?? 1 } })
}

/** The routes file's text (JSON) → routes, or an error naming the file and the place that is wrong. */
export const parse = (text: string, source: string): Either.Either<Routes, RoutesError> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Either.left(new RoutesError({ message: `${source}: not JSON: ${(e as Error).message}` }))
  }
  return decodeFile(json).pipe(
    Either.mapLeft((error) => {
      const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
      const at = issue === undefined || issue.path.length === 0 ? "" : ` at ${issue.path.map(String).join(".")}`
      return new RoutesError({ message: `${source}${at}: ${issue?.message ?? "not a routes file"}` })
    }),
    Either.flatMap(fromFile),
    Either.mapLeft((e) => (e.message.startsWith(source) ? e : new RoutesError({ message: `${source}: ${e.message}` })))
  )
}

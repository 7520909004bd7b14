/**
 * The live `LlmProvider`: routes `request.provider` to a wire adapter, reads
 * the key from `KeyStore` on every call (Redacted until the HTTP header),
 * and applies the retry and fallback policy of docs/workflow-format.md
 * ("Model calls: retries and fallback"):
 *
 * - transient errors (429 honouring Retry-After, 5xx/overloaded, timeouts,
 *   dropped connections) are retried on the same target with exponential
 *   backoff from 250 ms, then the call fails over along `request.fallbacks`;
 * - a target that answered "rate limited" cools down for 30 s (or its
 *   Retry-After, if longer): calls in that window start at the next target
 *   of their chain that is not cooling down; a target with nothing left
 *   after it is still tried, and a success ends its cooldown;
 * - an `attempt` chunk precedes every retry and every switch;
 * - once text, a tool call or reasoning has streamed, nothing is retried or
 *   switched: the error ends the stream (after a `stop` chunk with the usage
 *   counted so far, when there is any);
 * - auth errors and other non-retryable errors stop at once;
 * - reasoning parts are dropped from the history when switching provider.
 *
 * What comes from Effect AI: the OpenAI chat / Responses and Anthropic
 * request bodies are typed by the generated OpenAPI types of
 * @effect/ai-openai and @effect/ai-anthropic, Anthropic stream events are
 * decoded with @effect/ai-anthropic's `MessageStreamEvent` schema, and SSE
 * framing is @effect/experimental's `Sse` channel (the one those clients
 * use). Their clients themselves are not used: they skip undecodable frames
 * silently (a malformed chunk must be an error here), surface errors as
 * `AiError` without the Retry-After header, bind one key per client (ours
 * is read per call), and the Responses event schema embeds the full
 * `Response` object, so a `response.completed` missing any of its many
 * required fields would be dropped with its usage. Gemini has no Effect 3
 * package; OpenAI-compatible servers need a base URL and tolerate the
 * vendor extensions (`reasoning_content`) the generated schemas drop.
 */
import { HttpClient } from "@effect/platform"
import { KeyStore, LlmProvider } from "@relavium/ports"
import { Llm } from "@relavium/domain"
import { Clock, Config, Duration, Effect, Layer, Option, Stream } from "effect"
import * as AnthropicAdapter from "./adapters/Anthropic.js"
import * as GeminiAdapter from "./adapters/Gemini.js"
import * as OpenAiChat from "./adapters/OpenAiChat.js"
import * as OpenAiResponses from "./adapters/OpenAiResponses.js"
import { type Adapter, runAttempt, type Target } from "./internal/Adapter.js"
import { envBaseUrlVar, howToSetKey, llmError } from "./internal/errors.js"

export { envBaseUrlVar, envKeyVar } from "./internal/errors.js"

/** The wire format a provider speaks. */
export type Wire = "openai-chat" | "openai-responses" | "anthropic" | "gemini"

export interface ProviderSettings {
  readonly wire: Wire
  readonly baseUrl: string
  /** The KeyStore entry holding its key (default: the provider name). */
  readonly keyName?: string | undefined
  /** Whether a call without a key fails (false for local servers). */
  readonly keyRequired?: boolean | undefined
  /** Body dialect for `openai-chat`. */
  readonly dialect?: OpenAiChat.Dialect | undefined
}

/** Providers known out of the box; any of them can be overridden, and new ones added, in the config. */
export const builtinProviders: Readonly<Record<string, ProviderSettings>> = {
  openai: { wire: "openai-chat", baseUrl: "https://api.openai.com/v1", dialect: "openai" },
  "openai-responses": { wire: "openai-responses", baseUrl: "https://api.openai.com/v1", keyName: "openai" },
  anthropic: { wire: "anthropic", baseUrl: "https://api.anthropic.com/v1" },
  gemini: { wire: "gemini", baseUrl: "https://generativelanguage.googleapis.com/v1beta" },
  deepseek: { wire: "openai-chat", baseUrl: "https://api.deepseek.com", dialect: "deepseek" },
  openrouter: { wire: "openai-chat", baseUrl: "https://openrouter.ai/api/v1", dialect: "compatible" },
  // Local servers: no key needed, base URL on loopback by default.
  "openai-compatible": { wire: "openai-chat", baseUrl: "http://127.0.0.1:8000/v1", dialect: "compatible", keyRequired: false },
  ollama: { wire: "openai-chat", baseUrl: "http://127.0.0.1:11434/v1", dialect: "compatible", keyRequired: false },
  lmstudio: { wire: "openai-chat", baseUrl: "http://127.0.0.1:1234/v1", dialect: "compatible", keyRequired: false },
  vllm: { wire: "openai-chat", baseUrl: "http://127.0.0.1:8000/v1", dialect: "compatible", keyRequired: false }
}

export interface ProvidersConfig {
  /** Per-provider overrides (e.g. `{ anthropic: { baseUrl } }`) and extra providers. Config wins over env. */
  readonly providers?: Readonly<Record<string, Partial<ProviderSettings>>> | undefined
  /** Until the response headers arrive (default 120 s). */
  readonly firstByteTimeoutMs?: number | undefined
  /** Longest silence between two streamed events (default: the first-byte timeout). */
  readonly idleTimeoutMs?: number | undefined
  /** Attempts on the primary target when the request sets none (default 3). */
  readonly maxAttempts?: number | undefined
  /** First retry delay; doubles each retry (default 250 ms). */
  readonly backoffBaseMs?: number | undefined
  /** Cap of the backoff (default 8 s). */
  readonly backoffMaxMs?: number | undefined
  /** A Retry-After longer than this is not waited out: the call fails over instead (default 30 s). */
  readonly maxRetryAfterMs?: number | undefined
  /** How long a rate-limited target is skipped by later calls that have a fallback (default 30 s). */
  readonly rateLimitCooldownMs?: number | undefined
}

const adapters: Readonly<Record<Wire, (settings: ProviderSettings) => Adapter>> = {
  "openai-chat": (s) => OpenAiChat.adapter(s.dialect ?? "compatible"),
  "openai-responses": () => OpenAiResponses.adapter,
  anthropic: () => AnthropicAdapter.adapter,
  gemini: () => GeminiAdapter.adapter
}

const isOutput = (chunk: Llm.StreamChunk): boolean =>
  chunk.type === "text_delta" ||
  chunk.type === "tool_call_start" ||
  chunk.type === "tool_call_delta" ||
  chunk.type === "tool_call_end" ||
  chunk.type === "reasoning_start" ||
  chunk.type === "reasoning_delta" ||
  chunk.type === "reasoning_end"

/** Drops reasoning parts (and messages left empty) — another provider cannot read them. */
export const stripReasoning = (request: Llm.LlmRequest): Llm.LlmRequest => ({
  ...request,
  messages: request.messages
    .map((m) => ({ ...m, content: m.content.filter((p) => p.type !== "reasoning") }))
    .filter((m) => m.content.length > 0)
})

interface PlannedTarget {
  readonly provider: string
  readonly model: string
  readonly maxAttempts: number
}

/** `LlmProvider` over the real provider APIs. Needs an `HttpClient` and a `KeyStore`. */
export const layer = (config: ProvidersConfig = {}): Layer.Layer<LlmProvider, never, HttpClient.HttpClient | KeyStore> =>
  Layer.effect(
    LlmProvider,
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      const keys = yield* KeyStore
      const firstByteMs = config.firstByteTimeoutMs ?? 120_000
      const timeouts = { firstByteMs, idleMs: config.idleTimeoutMs ?? firstByteMs }
      const baseMs = config.backoffBaseMs ?? 250
      const maxBackoffMs = config.backoffMaxMs ?? 8_000
      const maxRetryAfterMs = config.maxRetryAfterMs ?? 30_000
      const cooldownMs = config.rateLimitCooldownMs ?? 30_000
      /** `provider/model` → when its rate-limit cooldown ends (epoch ms). */
      const coolingUntil = new Map<string, number>()
      const targetKey = (t: { readonly provider: string; readonly model: string }) => `${t.provider}/${t.model}`
      const coolDown = (t: PlannedTarget, error: Llm.LlmError) =>
        error.kind === "rate_limit"
          ? Clock.currentTimeMillis.pipe(
              Effect.map((now) => {
                coolingUntil.set(targetKey(t), now + Math.max(cooldownMs, error.retryAfterMs ?? 0))
              })
            )
          : Effect.void
      /** Milliseconds of cooldown left for a target (0 when it may be called). */
      const coolingLeft = (t: PlannedTarget, now: number) => {
        const until = coolingUntil.get(targetKey(t))
        if (until === undefined) return 0
        if (until <= now) {
          coolingUntil.delete(targetKey(t))
          return 0
        }
        return until - now
      }

      /** Settings, base URL and key for one target; fails with a typed error when it cannot be called. */
      const resolve = (provider: string, model: string) =>
        Effect.gen(function* () {
          const override = config.providers?.[provider]
          const builtin = builtinProviders[provider]
          const fromEnv = yield* Config.option(Config.string(envBaseUrlVar(provider))).pipe(
            Effect.map(Option.filter((url) => url.trim() !== "")),
            Effect.orElseSucceed(() => Option.none<string>())
          )
          const wire = override?.wire ?? builtin?.wire ?? (Option.isSome(fromEnv) ? "openai-chat" : undefined)
          if (wire === undefined) {
            return yield* llmError(
              { provider, model, keyName: provider },
              "bad_request",
              `unknown provider '${provider}': known are ${Object.keys(builtinProviders).join(", ")}, or set ${envBaseUrlVar(provider)} for an OpenAI-compatible server`
            )
          }
          const settings: ProviderSettings = {
            wire,
            baseUrl: override?.baseUrl ?? Option.getOrUndefined(fromEnv) ?? builtin?.baseUrl ?? "",
            keyName: override?.keyName ?? builtin?.keyName ?? provider,
            keyRequired: override?.keyRequired ?? builtin?.keyRequired ?? true,
            dialect: override?.dialect ?? builtin?.dialect
          }
          const keyName = settings.keyName ?? provider
          const where = { provider, model, keyName }
          const key = yield* keys.get(keyName).pipe(
            Effect.mapError((e) => llmError(where, "unknown", `cannot read the ${keyName} key: ${e.message}`, { retryable: false }))
          )
          if (Option.isNone(key) && settings.keyRequired !== false) {
            return yield* llmError(where, "auth", `no API key for ${keyName} is set: ${howToSetKey(keyName)}`)
          }
          const target: Target = { ...where, baseUrl: settings.baseUrl, key }
          return { target, adapter: adapters[wire](settings) }
        })

      const stream = (request: Llm.LlmRequest): Stream.Stream<Llm.StreamChunk, Llm.LlmError> => {
        const plan: ReadonlyArray<PlannedTarget> = [
          { provider: request.provider, model: request.model, maxAttempts: Math.max(1, request.maxAttempts ?? config.maxAttempts ?? 3) },
          ...(request.fallbacks ?? []).map((f) => ({ provider: f.provider, model: f.model, maxAttempts: Math.max(1, f.maxAttempts ?? 1) }))
        ]
        let attemptNumber = 1

        const fail = (error: Llm.LlmError, usage: Llm.Usage | undefined): Stream.Stream<Llm.StreamChunk, Llm.LlmError> =>
          usage !== undefined && usage.inputTokens + usage.outputTokens > 0
            ? Stream.concat(Stream.make<Array<Llm.StreamChunk>>({ type: "stop", stopReason: "error", usage }), Stream.fail(error))
            : Stream.fail(error)

        /** An `attempt` chunk announcing the next try on `to`, then that try. */
        const attempt = (
          to: PlannedTarget,
          reason: string,
          delayMs: number,
          then: Stream.Stream<Llm.StreamChunk, Llm.LlmError>
        ): Stream.Stream<Llm.StreamChunk, Llm.LlmError> => {
          attemptNumber += 1
          const chunk: Llm.StreamChunk = { type: "attempt", provider: to.provider, model: to.model, attemptNumber, reason, delayMs }
          return Stream.concat(Stream.make(chunk), then)
        }

        const next = (
          error: Llm.LlmError,
          index: number,
          tries: number,
          usage: Llm.Usage | undefined
        ): Stream.Stream<Llm.StreamChunk, Llm.LlmError> => {
          const current = plan[index]!
          if (error.kind === "auth" || !error.retryable) return fail(error, usage)
          return Stream.unwrap(Effect.as(coolDown(current, error), retryOrSwitch(error, index, tries, usage)))
        }

        const retryOrSwitch = (
          error: Llm.LlmError,
          index: number,
          tries: number,
          usage: Llm.Usage | undefined
        ): Stream.Stream<Llm.StreamChunk, Llm.LlmError> => {
          const current = plan[index]!
          const waitTooLong = error.retryAfterMs !== undefined && error.retryAfterMs > maxRetryAfterMs
          if (tries < current.maxAttempts && !waitTooLong) {
            const backoff = Math.min(maxBackoffMs, baseMs * 2 ** (tries - 1))
            const delayMs = Math.max(backoff, error.retryAfterMs ?? 0)
            return attempt(
              current,
              `retrying after ${error.kind}: ${error.message}`,
              delayMs,
              Stream.unwrap(
                Effect.logWarning(`${current.provider}/${current.model}: ${error.message}; retrying in ${delayMs} ms`).pipe(
                  Effect.zipRight(Effect.sleep(Duration.millis(delayMs))),
                  Effect.as(run(index, tries + 1))
                )
              )
            )
          }
          const fallback = plan[index + 1]
          if (fallback === undefined) return fail(error, usage)
          return attempt(
            fallback,
            `falling back from ${current.provider}/${current.model} after ${error.kind}: ${error.message}`,
            0,
            Stream.unwrap(
              Effect.logWarning(`${current.provider}/${current.model}: ${error.message}; falling back to ${fallback.provider}/${fallback.model}`).pipe(
                Effect.as(enter(index + 1))
              )
            )
          )
        }

        /** The first attempt on a target: skipped while it cools down, if a later target is free. */
        const enter = (index: number): Stream.Stream<Llm.StreamChunk, Llm.LlmError> =>
          Stream.unwrap(
            Clock.currentTimeMillis.pipe(
              Effect.map((now) => {
                const planned = plan[index]!
                const left = coolingLeft(planned, now)
                const free = plan.findIndex((t, i) => i > index && coolingLeft(t, now) === 0)
                if (left === 0 || free === -1) return run(index, 1)
                return attempt(
                  plan[free]!,
                  `skipping ${targetKey(planned)}: rate-limited, cooling down for ${Math.ceil(left / 1000)} s more`,
                  0,
                  run(free, 1)
                )
              })
            )
          )

        const run = (index: number, tries: number): Stream.Stream<Llm.StreamChunk, Llm.LlmError> => {
          const planned = plan[index]!
          const base: Llm.LlmRequest = { ...request, provider: planned.provider, model: planned.model }
          const prepared = planned.provider === request.provider ? base : stripReasoning(base)
          return Stream.unwrap(
            resolve(planned.provider, planned.model).pipe(
              Effect.map(({ adapter, target }) => {
                const attempt = runAttempt(client, adapter(prepared, target), target, timeouts)
                let streamed = false
                return attempt.chunks.pipe(
                  Stream.tap((chunk) =>
                    Effect.sync(() => {
                      if (isOutput(chunk)) streamed = true
                      if (chunk.type === "stop") coolingUntil.delete(targetKey(planned))
                    })
                  ),
                  Stream.catchAll((error) =>
                    // Never retry or switch once output has reached the caller.
                    streamed ? fail(error, attempt.usage()) : next(error, index, tries, attempt.usage())
                  )
                )
              }),
              Effect.catchAll((error) => Effect.succeed(next(error, index, tries, undefined)))
            )
          )
        }

        return Stream.suspend(() => enter(0))
      }

      return LlmProvider.of({ stream })
    })
  )

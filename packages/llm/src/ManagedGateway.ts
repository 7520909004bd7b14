/**
 * Managed mode's `LlmProvider`: every model call goes to a Relavium inference gateway's
 * OpenAI-compatible API (`POST {gatewayUrl}/v1/chat/completions`, streamed, with
 * `stream_options.include_usage`) under the org's gateway token, instead of to the providers
 * with the user's keys. The engine is unchanged: the same stream chunks, so the same events,
 * `cost:updated` (priced by the engine from the usage the gateway streams back, for the
 * provider and model the workflow named) and budgets.
 *
 * - The model is sent as `<provider>/<model>` (the workflow's provider and model); the gateway
 *   routes it and calls the provider with the org's managed key.
 * - No `KeyStore` is read: this layer has no access to the user's provider keys. The token stays
 *   `Redacted` until the `Authorization` header, and is scrubbed from any error text.
 * - What the gateway answers is told apart (docs/inference.md, "Execution modes"):
 *   unreachable → `transport`, not retried (the run fails at once, naming the URL); 401/403 →
 *   `auth` (the token); 402 → the org's budget is spent (not retried); 429 → `rate_limit`,
 *   retried after its Retry-After when that is short; 5xx and timeouts are retried with backoff,
 *   then the request's fallbacks are tried (through the gateway too), as with local providers.
 *   Nothing is retried once output has streamed.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { LlmProvider } from "@relavium/ports"
import { Llm } from "@relavium/domain"
import { Duration, Effect, Layer, Option, type Redacted, Stream } from "effect"
import * as OpenAiChat from "./adapters/OpenAiChat.js"
import { type Adapter, joinUrl, runAttempt, type Target } from "./internal/Adapter.js"
import { stripReasoning } from "./Providers.js"

export interface ManagedGatewayOptions {
  /** The gateway's base URL (`https://gateway.example.com`); calls go to `{url}/v1/chat/completions`. */
  readonly url: string
  /** The org's gateway token (`RELAVIUM_GATEWAY_TOKEN`). */
  readonly token: Redacted.Redacted<string>
  /** Until the response headers arrive (default 120 s). */
  readonly firstByteTimeoutMs?: number | undefined
  /** Longest silence between two streamed events (default: the first-byte timeout). */
  readonly idleTimeoutMs?: number | undefined
  /** Attempts per target when the request sets none (default 3). */
  readonly maxAttempts?: number | undefined
  /** First retry delay, doubling (default 250 ms, capped at 8 s). */
  readonly backoffBaseMs?: number | undefined
  /** A Retry-After longer than this is not waited out (default 30 s). */
  readonly maxRetryAfterMs?: number | undefined
}

/** The model name the gateway is asked for. */
export const gatewayModel = (provider: string, model: string): string => `${provider}/${model}`

/** The messages of the errors managed mode fails with (documented in docs/inference.md). */
export const messages = {
  unreachable: (url: string, detail: string) =>
    `cannot reach the Relavium gateway at ${url} (${detail}): managed mode sends every model call there and never to a provider directly; check RELAVIUM_GATEWAY_URL, or run with --mode local to use your own keys`,
  unauthorized: (url: string, status: number) =>
    `the Relavium gateway at ${url} refused the token (HTTP ${status}): check RELAVIUM_GATEWAY_TOKEN`,
  budgetSpent: (url: string, detail: string) =>
    `the org's managed inference budget is spent (HTTP 402 from the Relavium gateway at ${url}: ${detail}): raise the budget or wait for next month`,
  rateLimited: (url: string, retryAfterMs: number | undefined) =>
    `the Relavium gateway at ${url} rate-limited this org or token (HTTP 429)${retryAfterMs === undefined ? "" : `: retry in ${Math.ceil(retryAfterMs / 1000)} s`}`
} as const

const isOutput = (chunk: Llm.StreamChunk): boolean =>
  chunk.type !== "stop" && chunk.type !== "attempt" && chunk.type !== "error"

/** What the gateway said after the generic status text (`unexpected HTTP 402: <detail>`). */
const detailOf = (message: string): string => {
  const at = message.indexOf(": ")
  return at < 0 ? message : message.slice(at + 2)
}

/** `LlmProvider` through a Relavium gateway. Needs an `HttpClient`; reads no key. */
export const layer = (options: ManagedGatewayOptions): Layer.Layer<LlmProvider, never, HttpClient.HttpClient> =>
  Layer.effect(
    LlmProvider,
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      const url = options.url.replace(/\/+$/, "")
      const firstByteMs = options.firstByteTimeoutMs ?? 120_000
      const timeouts = { firstByteMs, idleMs: options.idleTimeoutMs ?? firstByteMs }
      const baseMs = options.backoffBaseMs ?? 250
      const maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000

      const adapter: Adapter = (request, target) => ({
        request: HttpClientRequest.post(joinUrl(url, "/v1/chat/completions")).pipe(
          HttpClientRequest.bodyUnsafeJson({ ...OpenAiChat.body(request, "openai"), model: gatewayModel(request.provider, request.model) }),
          HttpClientRequest.setHeader("accept", "text/event-stream"),
          HttpClientRequest.bearerToken(options.token)
        ),
        decoder: OpenAiChat.decoder(target)
      })

      /** The generic error of one attempt → what managed mode says about it. */
      const explain = (error: Llm.LlmError, target: Target): Llm.LlmError => {
        const at = { provider: target.provider, model: target.model, status: error.status }
        if (error.status === 401 || error.status === 403) {
          return new Llm.LlmError({ ...at, kind: "auth", retryable: false, message: messages.unauthorized(url, error.status) })
        }
        if (error.status === 402) {
          return new Llm.LlmError({ ...at, kind: "bad_request", retryable: false, message: messages.budgetSpent(url, detailOf(error.message)) })
        }
        if (error.status === 429) {
          return new Llm.LlmError({
            ...at,
            kind: "rate_limit",
            retryable: true,
            retryAfterMs: error.retryAfterMs,
            message: messages.rateLimited(url, error.retryAfterMs)
          })
        }
        if (error.kind === "transport" && error.status === undefined && error.message.startsWith("cannot reach")) {
          return new Llm.LlmError({ ...at, kind: "transport", retryable: false, message: messages.unreachable(url, detailOf(error.message)) })
        }
        return error
      }

      const stream = (request: Llm.LlmRequest): Stream.Stream<Llm.StreamChunk, Llm.LlmError> => {
        const plan = [
          { provider: request.provider, model: request.model, maxAttempts: Math.max(1, request.maxAttempts ?? options.maxAttempts ?? 3) },
          ...(request.fallbacks ?? []).map((f) => ({ provider: f.provider, model: f.model, maxAttempts: Math.max(1, f.maxAttempts ?? 1) }))
        ]
        let attemptNumber = 1

        const announce = (index: number, reason: string, delayMs: number, then: Stream.Stream<Llm.StreamChunk, Llm.LlmError>) => {
          attemptNumber += 1
          const target = plan[index]!
          const chunk: Llm.StreamChunk = { type: "attempt", provider: target.provider, model: target.model, attemptNumber, reason, delayMs }
          return Stream.concat(Stream.make(chunk), then)
        }

        const fail = (error: Llm.LlmError, usage: Llm.Usage | undefined): Stream.Stream<Llm.StreamChunk, Llm.LlmError> =>
          usage !== undefined && usage.inputTokens + usage.outputTokens > 0
            ? Stream.concat(Stream.make<Array<Llm.StreamChunk>>({ type: "stop", stopReason: "error", usage }), Stream.fail(error))
            : Stream.fail(error)

        const run = (index: number, tries: number): Stream.Stream<Llm.StreamChunk, Llm.LlmError> => {
          const planned = plan[index]!
          const target: Target = {
            provider: planned.provider,
            model: planned.model,
            keyName: "RELAVIUM_GATEWAY_TOKEN",
            baseUrl: url,
            key: Option.some(options.token)
          }
          const base: Llm.LlmRequest = { ...request, provider: planned.provider, model: planned.model }
          const prepared = planned.provider === request.provider ? base : stripReasoning(base)
          const attempt = runAttempt(client, adapter(prepared, target), target, timeouts)
          let streamed = false
          return attempt.chunks.pipe(
            Stream.tap((chunk) => Effect.sync(() => (streamed ||= isOutput(chunk)))),
            Stream.catchAll((raw) => {
              const error = explain(raw, target)
              if (streamed || !error.retryable) return fail(error, attempt.usage())
              const tooLong = error.retryAfterMs !== undefined && error.retryAfterMs > maxRetryAfterMs
              if (tries < planned.maxAttempts && !tooLong) {
                const delayMs = Math.max(Math.min(8_000, baseMs * 2 ** (tries - 1)), error.retryAfterMs ?? 0)
                return announce(
                  index,
                  `retrying after ${error.kind}: ${error.message}`,
                  delayMs,
                  Stream.unwrap(Effect.as(Effect.sleep(Duration.millis(delayMs)), run(index, tries + 1)))
                )
              }
              if (index + 1 < plan.length) {
                return announce(index + 1, `falling back from ${planned.provider}/${planned.model} after ${error.kind}: ${error.message}`, 0, run(index + 1, 1))
              }
              return fail(error, attempt.usage())
            })
          )
        }
        return Stream.suspend(() => run(0, 1))
      }

      return LlmProvider.of({ stream })
    })
  )


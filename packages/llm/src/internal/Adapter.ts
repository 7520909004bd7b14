/**
 * What every wire adapter provides: an HTTP request for a provider-neutral
 * `LlmRequest`, and a decoder — a small state machine from the provider's
 * server-sent events to our `StreamChunk`s — plus the transport that drives
 * both over @effect/platform's HttpClient.
 */
import * as Sse from "@effect/experimental/Sse"
import { HttpClient, type HttpClientRequest } from "@effect/platform"
import { Llm } from "@relavium/domain"
import { Duration, Effect, type Option, type Redacted, Stream } from "effect"
import { fromHttpStatus, llmError, scrubError, type Where } from "./errors.js"

export interface Target extends Where {
  readonly baseUrl: string
  readonly key: Option.Option<Redacted.Redacted<string>>
}

export type Decoded = ReadonlyArray<Llm.StreamChunk> | Llm.LlmError

export interface Decoder {
  /** One server-sent event → the chunks it means, or the error it reports. */
  readonly onEvent: (event: Sse.Event) => Decoded
  /** The body ended: the final `stop`, or an error when the provider never finished. */
  readonly onEnd: () => Decoded
  /** Usage counted so far (for a stream cut midway). */
  readonly usage: () => Llm.Usage | undefined
}

export interface AdapterCall {
  readonly request: HttpClientRequest.HttpClientRequest
  readonly decoder: Decoder
}

export type Adapter = (request: Llm.LlmRequest, target: Target) => AdapterCall

export interface Timeouts {
  /** Until the response headers arrive. */
  readonly firstByteMs: number
  /** Between two server-sent events once streaming. */
  readonly idleMs: number
}

/** The decoded stream of one attempt, and a view of its usage so far. */
export interface Attempt {
  readonly chunks: Stream.Stream<Llm.StreamChunk, Llm.LlmError>
  readonly usage: () => Llm.Usage | undefined
}

const MAX_ERROR_BODY = 64 * 1024

const headerRecord = (headers: Readonly<Record<string, string>>): Record<string, string> => ({ ...headers })

const fromDecoded = (decoded: Decoded): Effect.Effect<ReadonlyArray<Llm.StreamChunk>, Llm.LlmError> =>
  decoded instanceof Llm.LlmError ? Effect.fail(decoded) : Effect.succeed(decoded)

/** Sends one request and decodes its event stream; every failure becomes an `LlmError`. */
export const runAttempt = (
  client: HttpClient.HttpClient,
  call: AdapterCall,
  target: Target,
  timeouts: Timeouts
): Attempt => {
  const timedOut = (what: string, ms: number) =>
    llmError(target, "timeout", `no ${what} from ${target.provider} within ${Duration.format(Duration.millis(ms))}`)
  const chunks = Stream.unwrapScoped(
    Effect.gen(function* () {
      const response = yield* client.execute(call.request).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(timeouts.firstByteMs),
          onTimeout: () => timedOut("response", timeouts.firstByteMs)
        }),
        Effect.catchTags({
          RequestError: (error) =>
            Effect.fail(
              llmError(
                target,
                "transport",
                `cannot reach ${target.provider} at ${target.baseUrl}: ${error.cause instanceof Error ? error.cause.message : error.message}`
              )
            ),
          ResponseError: (error) =>
            Effect.fail(llmError(target, "transport", `bad response from ${target.provider}: ${error.message}`, { status: error.response.status }))
        })
      )
      if (response.status >= 400) {
        const body = yield* response.text.pipe(
          Effect.timeout(Duration.millis(timeouts.idleMs)),
          Effect.map((text) => text.slice(0, MAX_ERROR_BODY)),
          Effect.orElseSucceed(() => "")
        )
        return yield* (fromHttpStatus(target, response.status, body, headerRecord(response.headers)))
      }
      return response.stream.pipe(
        Stream.mapError(() =>
          llmError(target, "transport", `the connection to ${target.provider} dropped while streaming`)
        ),
        Stream.decodeText(),
        Stream.pipeThroughChannel(Sse.makeChannel<Llm.LlmError, unknown>()),
        Stream.timeoutFail(() => timedOut("data", timeouts.idleMs), Duration.millis(timeouts.idleMs)),
        Stream.mapConcatEffect((event) => fromDecoded(call.decoder.onEvent(event))),
        Stream.concat(Stream.fromIterableEffect(Effect.suspend(() => fromDecoded(call.decoder.onEnd()))))
      )
    })
  ).pipe(Stream.mapError((error) => scrubError(error, target.key)))
  return { chunks, usage: call.decoder.usage }
}

/** JSON.parse that reports failure as `undefined` plus a flag. */
export const parseData = (data: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false } => {
  try {
    return { ok: true, value: JSON.parse(data) }
  } catch {
    return { ok: false }
  }
}

/** The one base-URL join: `https://x/v1` + `/chat/completions`. */
export const joinUrl = (base: string, path: string): string => `${base.replace(/\/+$/, "")}${path}`

/** Reasoning parts cannot be replayed to a provider (no signatures), so adapters drop them from history. */
export const withoutReasoning = (content: ReadonlyArray<Llm.ContentPart>) => content.filter((p) => p.type !== "reasoning")

export const textOf = (content: ReadonlyArray<Llm.ContentPart>): string =>
  content.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("")

export const resultText = (result: unknown): string => (typeof result === "string" ? result : JSON.stringify(result ?? null))

/** Effort → a thinking budget in tokens (Anthropic, Gemini). */
export const thinkingBudget = (effort: Llm.LlmRequest["reasoningEffort"]): number | undefined => {
  switch (effort) {
    case "low":
      return 1024
    case "medium":
      return 4096
    case "high":
      return 16384
    case "max":
      return 32768
    default:
      return undefined
  }
}

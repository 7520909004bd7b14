/**
 * Turning what a provider sends back into one `LlmError`: HTTP status and
 * body, in-stream error events, Retry-After, and key scrubbing so a key that
 * a provider echoes in an error message never leaves the adapter.
 */
import { Llm } from "@relavium/domain"
import { Redacted } from "effect"
import type { Option } from "effect"

export interface Where {
  /** The provider name the request was routed to. */
  readonly provider: string
  readonly model: string
  /** The key store entry the key came from (for auth messages). */
  readonly keyName: string
}

/** `openai-compatible` → `RELAVIUM_OPENAI_COMPATIBLE_API_KEY` (the same rule as @relavium/keys). */
export const envKeyVar = (name: string): string => `RELAVIUM_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_API_KEY`
export const envBaseUrlVar = (name: string): string =>
  `RELAVIUM_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_BASE_URL`
export const howToSetKey = (name: string): string =>
  `run \`relavium keys set ${name}\` or set ${envKeyVar(name)}`

export const llmError = (
  where: Where,
  kind: Llm.LlmErrorKind,
  message: string,
  extra: { readonly status?: number | undefined; readonly retryAfterMs?: number | undefined; readonly retryable?: boolean } = {}
): Llm.LlmError =>
  new Llm.LlmError({
    kind,
    retryable: extra.retryable ?? Llm.RetryableLlmErrorKinds.has(kind),
    provider: where.provider,
    model: where.model,
    status: extra.status,
    retryAfterMs: extra.retryAfterMs === undefined ? undefined : Math.max(0, Math.round(extra.retryAfterMs)),
    message
  })

const KEY_SHAPES = [/sk-[A-Za-z0-9_\-*.]{6,}/g, /AIza[0-9A-Za-z_\-]{10,}/g, /Bearer\s+[A-Za-z0-9_\-.~+/]{8,}=*/g]

/** Removes the key (and anything shaped like a key) from text a provider sent back. */
export const scrub = (text: string, key: Option.Option<Redacted.Redacted<string>>): string => {
  let out = text
  if (key._tag === "Some") {
    const value = Redacted.value(key.value)
    if (value.length >= 4) out = out.split(value).join("[redacted]")
  }
  for (const shape of KEY_SHAPES) out = out.replace(shape, "[redacted]")
  return out
}

export const scrubError = (error: Llm.LlmError, key: Option.Option<Redacted.Redacted<string>>): Llm.LlmError => {
  const message = scrub(error.message, key)
  return message === error.message ? error : new Llm.LlmError({ ...error, message })
}

const truncate = (text: string, max = 300): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text)

/** Seconds, or an HTTP-date, or OpenAI's `retry-after-ms`; undefined when absent or unreadable. */
export const parseRetryAfter = (
  headers: Readonly<Record<string, string | undefined>>,
  now: number = Date.now()
): number | undefined => {
  const ms = headers["retry-after-ms"]
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms.trim())) return Number(ms)
  const value = headers["retry-after"]?.trim()
  if (value === undefined || value === "") return undefined
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** Gemini puts the delay in the body: `details: [{ "@type": "...RetryInfo", retryDelay: "30s" }]`. */
const retryDelayInBody = (body: unknown): number | undefined => {
  const details = (body as { error?: { details?: unknown } } | undefined)?.error?.details
  if (!Array.isArray(details)) return undefined
  for (const detail of details) {
    const delay = (detail as { retryDelay?: unknown }).retryDelay
    if (typeof delay === "string" && /^\d+(\.\d+)?s$/.test(delay)) return Number(delay.slice(0, -1)) * 1000
  }
  return undefined
}

interface ProviderErrorBody {
  readonly message: string | undefined
  readonly type: string | undefined
  readonly code: string | undefined
}

/** OpenAI `{error:{message,type,code}}`, Anthropic `{type:"error",error:{type,message}}`, Gemini `{error:{code,message,status}}` (sometimes in an array). */
export const readErrorBody = (body: unknown): ProviderErrorBody => {
  const root = Array.isArray(body) ? body[0] : body
  const error = (root as { error?: unknown } | undefined)?.error
  if (typeof error === "string") return { message: error, type: undefined, code: undefined }
  if (typeof error !== "object" || error === null) {
    const message = (root as { message?: unknown } | undefined)?.message
    return { message: typeof message === "string" ? message : undefined, type: undefined, code: undefined }
  }
  const e = error as { message?: unknown; type?: unknown; code?: unknown; status?: unknown }
  return {
    message: typeof e.message === "string" ? e.message : undefined,
    type: typeof e.type === "string" ? e.type : typeof e.status === "string" ? e.status : undefined,
    code: typeof e.code === "string" ? e.code : undefined
  }
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** An HTTP error response → `LlmError` with provider, model, status and what to do. */
export const fromHttpStatus = (
  where: Where,
  status: number,
  bodyText: string,
  headers: Readonly<Record<string, string | undefined>>
): Llm.LlmError => {
  const body = parseJson(bodyText)
  const detail = readErrorBody(body)
  const said = truncate(detail.message ?? (bodyText.trim() === "" ? `HTTP ${status}` : bodyText.trim()))
  const tag = `${detail.type ?? ""} ${detail.code ?? ""}`.toLowerCase()
  const badKey = /api[_ ]key[_ ](not[_ ]valid|invalid)|invalid[_ ]api[_ ]key/i.test(bodyText)
  if (status === 401 || status === 403 || badKey || tag.includes("authentication") || tag.includes("permission")) {
    return llmError(
      where,
      "auth",
      `the ${where.keyName} API key was rejected (${said}); ${howToSetKey(where.keyName)}`,
      { status }
    )
  }
  if (status === 429 || tag.includes("rate_limit") || tag.includes("resource_exhausted")) {
    if (tag.includes("insufficient_quota")) {
      return llmError(where, "rate_limit", `the ${where.keyName} account has no quota left: ${said}`, {
        status,
        retryable: false
      })
    }
    return llmError(where, "rate_limit", `rate limited: ${said}`, {
      status,
      retryAfterMs: parseRetryAfter(headers) ?? retryDelayInBody(body)
    })
  }
  if (status === 408) return llmError(where, "timeout", `the request timed out: ${said}`, { status })
  if (status === 404) {
    return llmError(where, "bad_request", `unknown model or endpoint '${where.model}': ${said}`, { status })
  }
  if (status >= 500 || status === 529 || tag.includes("overloaded")) {
    return llmError(where, "overloaded", `the provider is unavailable: ${said}`, {
      status,
      retryAfterMs: parseRetryAfter(headers)
    })
  }
  if (status === 400 || status === 413 || status === 422) {
    const filtered = tag.includes("content_filter") || tag.includes("content_policy") || /safety|content polic/i.test(said)
    return llmError(where, filtered ? "content_filter" : "bad_request", `the request was refused: ${said}`, { status })
  }
  return llmError(where, "unknown", `unexpected HTTP ${status}: ${said}`, { status })
}

/** An error event inside a 200 stream (Anthropic `error`, OpenAI/OpenRouter `{error}`, Gemini `{error}`). */
export const fromStreamError = (where: Where, body: unknown): Llm.LlmError => {
  const detail = readErrorBody(body)
  const tag = `${detail.type ?? ""} ${detail.code ?? ""}`.toLowerCase()
  const said = truncate(detail.message ?? "the provider reported an error mid-stream")
  const numeric = (Array.isArray(body) ? body[0] : (body as { error?: { code?: unknown } }))?.error?.code
  const status = typeof numeric === "number" ? numeric : undefined
  if (status !== undefined) return fromHttpStatus(where, status, JSON.stringify(body), {})
  if (tag.includes("overloaded") || tag.includes("api_error") || tag.includes("server_error") || tag.includes("unavailable")) {
    return llmError(where, "overloaded", `the provider failed mid-stream: ${said}`)
  }
  if (tag.includes("rate_limit")) return llmError(where, "rate_limit", `rate limited mid-stream: ${said}`)
  if (tag.includes("authentication") || tag.includes("permission")) {
    return llmError(where, "auth", `the ${where.keyName} API key was rejected: ${said}; ${howToSetKey(where.keyName)}`)
  }
  if (tag.includes("invalid_request") || tag.includes("request_too_large")) return llmError(where, "bad_request", said)
  return llmError(where, "unknown", `the provider reported an error mid-stream: ${said}`)
}

export const malformed = (where: Where, what: string, data: string): Llm.LlmError =>
  llmError(where, "unknown", `malformed ${where.provider} stream event (${what}): ${truncate(data, 120)}`, {
    retryable: false
  })

/**
 * OpenAI Responses API over SSE: `response.output_item.added` opens a
 * function call or reasoning item, `response.output_text.delta`,
 * `response.function_call_arguments.delta` and
 * `response.reasoning_summary_text.delta` stream it, `response.completed`
 * (or `.incomplete` / `.failed`) carries the usage. The request body is typed
 * by @effect/ai-openai's generated `CreateResponse`; events are read by hand
 * (see the note in Providers.ts on why not with its `ResponseStreamEvent`).
 */
import type * as Generated from "@effect/ai-openai/Generated"
import { HttpClientRequest } from "@effect/platform"
import type { Llm } from "@relavium/domain"
import { Option } from "effect"
import { type Adapter, type Decoded, joinUrl, parseData, resultText, textOf, withoutReasoning } from "../internal/Adapter.js"
import { fromStreamError, llmError, malformed, type Where } from "../internal/errors.js"

type ResponseRequest = typeof Generated.CreateResponse.Encoded

const inputOf = (request: Llm.LlmRequest): Array<unknown> => {
  const out: Array<unknown> = []
  for (const message of request.messages) {
    const content = withoutReasoning(message.content)
    if (message.role === "user") {
      out.push({ role: "user", content: [{ type: "input_text", text: textOf(content) }] })
    } else if (message.role === "assistant") {
      const text = textOf(content)
      if (text !== "") out.push({ role: "assistant", content: text })
      for (const p of content) {
        if (p.type === "tool_call") {
          out.push({ type: "function_call", call_id: p.id, name: p.name, arguments: JSON.stringify(p.args ?? {}) })
        }
      }
    } else {
      for (const p of content) {
        if (p.type === "tool_result") out.push({ type: "function_call_output", call_id: p.id, output: resultText(p.result) })
      }
    }
  }
  return out
}

export const body = (request: Llm.LlmRequest): ResponseRequest => {
  const format = request.responseFormat
  const effort = request.reasoningEffort
  return {
    model: request.model,
    input: inputOf(request) as ResponseRequest["input"],
    store: false,
    ...(request.system !== undefined ? { instructions: request.system } : {}),
    ...(request.tools && request.tools.length > 0
      ? {
          tools: request.tools.map((t) => ({
            type: "function" as const,
            name: t.name,
            description: t.description ?? null,
            parameters: t.parameters,
            strict: false
          }))
        }
      : {}),
    ...(format?.type === "json"
      ? {
          text: {
            format:
              format.schema !== undefined
                ? { type: "json_schema" as const, name: "output", schema: format.schema, strict: false }
                : { type: "json_object" as const }
          }
        }
      : {}),
    ...(request.maxTokens !== undefined ? { max_output_tokens: request.maxTokens } : {}),
    ...(request.temperature !== undefined && (effort === undefined || effort === "off") ? { temperature: request.temperature } : {}),
    ...(effort !== undefined && effort !== "off"
      ? { reasoning: { effort: effort === "max" ? "high" : effort, summary: "auto" as const } }
      : {})
  } as ResponseRequest
}

interface EventShape {
  readonly type?: unknown
  readonly delta?: unknown
  readonly item_id?: unknown
  readonly item?: { readonly type?: unknown; readonly id?: unknown; readonly call_id?: unknown; readonly name?: unknown }
  readonly response?: {
    readonly status?: unknown
    readonly error?: unknown
    readonly incomplete_details?: { readonly reason?: unknown } | null
    readonly usage?: {
      readonly input_tokens?: unknown
      readonly output_tokens?: unknown
      readonly input_tokens_details?: { readonly cached_tokens?: unknown } | null
      readonly output_tokens_details?: { readonly reasoning_tokens?: unknown } | null
    } | null
  }
}

const nat = (n: unknown): number | undefined => (typeof n === "number" && Number.isFinite(n) && n >= 0 ? Math.round(n) : undefined)

export const decoder = (where: Where) => {
  /** item_id → our call id (the function call's `call_id`). */
  const calls = new Map<string, { id: string; open: boolean }>()
  const reasoning = new Set<string>()
  let usage: Llm.Usage | undefined
  let done = false

  const readUsage = (u: NonNullable<NonNullable<EventShape["response"]>["usage"]>) => {
    const cached = nat(u.input_tokens_details?.cached_tokens)
    const thought = nat(u.output_tokens_details?.reasoning_tokens)
    usage = {
      inputTokens: nat(u.input_tokens) ?? 0,
      outputTokens: nat(u.output_tokens) ?? 0,
      ...(cached !== undefined ? { cacheReadTokens: cached } : {}),
      ...(thought !== undefined ? { reasoningTokens: thought } : {})
    }
  }
  const closeAll = (): Array<Llm.StreamChunk> => {
    const out: Array<Llm.StreamChunk> = []
    for (const id of reasoning) out.push({ type: "reasoning_end", id })
    reasoning.clear()
    for (const call of calls.values()) {
      if (call.open) {
        call.open = false
        out.push({ type: "tool_call_end", id: call.id })
      }
    }
    return out
  }

  const onEvent = (event: { readonly data: string }): Decoded => {
    const data = event.data.trim()
    if (done || data === "" || data === "[DONE]") return []
    const parsed = parseData(data)
    if (!parsed.ok || typeof parsed.value !== "object" || parsed.value === null) return malformed(where, "not JSON", data)
    const e = parsed.value as EventShape
    const itemId = typeof e.item_id === "string" ? e.item_id : undefined
    switch (e.type) {
      case "response.output_item.added": {
        const item = e.item
        if (item?.type === "function_call" && typeof item.id === "string") {
          const id = typeof item.call_id === "string" ? item.call_id : item.id
          calls.set(item.id, { id, open: true })
          return [{ type: "tool_call_start", id, name: typeof item.name === "string" ? item.name : "" }]
        }
        if (item?.type === "reasoning" && typeof item.id === "string") {
          reasoning.add(item.id)
          return [{ type: "reasoning_start", id: item.id }]
        }
        return []
      }
      case "response.output_text.delta":
      case "response.refusal.delta":
        return typeof e.delta === "string" && e.delta !== "" ? [{ type: "text_delta", text: e.delta }] : []
      case "response.function_call_arguments.delta": {
        const call = itemId === undefined ? undefined : calls.get(itemId)
        if (call === undefined) return malformed(where, "arguments for an unknown call", data)
        return typeof e.delta === "string" && e.delta !== "" ? [{ type: "tool_call_delta", id: call.id, argsJsonDelta: e.delta }] : []
      }
      case "response.reasoning_summary_text.delta":
      case "response.reasoning_text.delta": {
        if (itemId === undefined || typeof e.delta !== "string") return []
        const out: Array<Llm.StreamChunk> = []
        if (!reasoning.has(itemId)) {
          reasoning.add(itemId)
          out.push({ type: "reasoning_start", id: itemId })
        }
        out.push({ type: "reasoning_delta", id: itemId, text: e.delta })
        return out
      }
      case "response.output_item.done": {
        const id = typeof e.item?.id === "string" ? e.item.id : undefined
        if (id === undefined) return []
        const call = calls.get(id)
        if (call?.open) {
          call.open = false
          return [{ type: "tool_call_end", id: call.id }]
        }
        if (reasoning.delete(id)) return [{ type: "reasoning_end", id }]
        return []
      }
      case "response.completed":
      case "response.incomplete": {
        done = true
        if (e.response?.usage) readUsage(e.response.usage)
        const out = closeAll()
        const reason = e.response?.incomplete_details?.reason
        const stopReason: Llm.StopReason =
          e.type === "response.incomplete"
            ? reason === "content_filter" ? "content_filter" : "length"
            : calls.size > 0 ? "tool_use" : "stop"
        out.push({ type: "stop", stopReason, usage: usage ?? { inputTokens: 0, outputTokens: 0 } })
        return out
      }
      case "response.failed": {
        if (e.response?.usage) readUsage(e.response.usage)
        return fromStreamError(where, { error: e.response?.error ?? { message: "the response failed" } })
      }
      case "error":
        return fromStreamError(where, { error: parsed.value })
      default:
        return []
    }
  }

  return {
    onEvent,
    onEnd: (): Decoded => (done ? [] : llmError(where, "transport", `the ${where.provider} stream ended before response.completed`)),
    usage: () => usage
  }
}

export const adapter: Adapter = (request, target) => {
  const http = HttpClientRequest.post(joinUrl(target.baseUrl, "/responses")).pipe(
    HttpClientRequest.bodyUnsafeJson({ ...body(request), stream: true }),
    HttpClientRequest.setHeader("accept", "text/event-stream"),
    Option.isSome(target.key) ? HttpClientRequest.bearerToken(target.key.value) : (r) => r
  )
  return { request: http, decoder: decoder(target) }
}

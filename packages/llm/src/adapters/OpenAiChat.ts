/**
 * OpenAI Chat Completions over SSE (`data: {chunk}` … `data: [DONE]`), also
 * spoken by DeepSeek, OpenRouter, Ollama, vLLM and LM Studio. Tool calls
 * stream as deltas keyed by `index`; usage arrives in a last chunk with empty
 * `choices` because we ask for `stream_options.include_usage`; DeepSeek and
 * OpenRouter stream reasoning as `reasoning_content` / `reasoning`.
 */
import type * as Generated from "@effect/ai-openai/Generated"
import { HttpClientRequest } from "@effect/platform"
import type { Llm } from "@relavium/domain"
import { Array as Arr, Option } from "effect"
import { type Adapter, type Decoded, joinUrl, parseData, resultText, textOf, withoutReasoning } from "../internal/Adapter.js"
import { fromStreamError, llmError, malformed, type Where } from "../internal/errors.js"

/** Which dialect of the chat completions body to send. */
export type Dialect = "openai" | "deepseek" | "compatible"

type ChatRequest = typeof Generated.CreateChatCompletionRequest.Encoded
type ChatMessage = ChatRequest["messages"][number]

const messagesOf = (request: Llm.LlmRequest): Array<ChatMessage> => {
  const out: Array<ChatMessage> = []
  if (request.system !== undefined) out.push({ role: "system", content: request.system })
  for (const message of request.messages) {
    const content = withoutReasoning(message.content)
    if (message.role === "user") {
      out.push({ role: "user", content: textOf(content) })
    } else if (message.role === "assistant") {
      const calls = content.flatMap((p) =>
        p.type === "tool_call"
          ? [{ id: p.id, type: "function" as const, function: { name: p.name, arguments: JSON.stringify(p.args ?? {}) } }]
          : []
      )
      const text = textOf(content)
      out.push({ role: "assistant", content: text === "" && calls.length > 0 ? null : text, ...(calls.length > 0 ? { tool_calls: calls } : {}) })
    } else {
      for (const part of content) {
        if (part.type === "tool_result") out.push({ role: "tool", tool_call_id: part.id, content: resultText(part.result) })
      }
    }
  }
  return out
}

const effortOf = (effort: Llm.LlmRequest["reasoningEffort"]): "low" | "medium" | "high" | undefined =>
  effort === "low" || effort === "medium" || effort === "high" ? effort : effort === "max" ? "high" : undefined

const nonEmpty = (messages: Array<ChatMessage>): ChatRequest["messages"] =>
  Arr.isNonEmptyArray(messages) ? messages : [{ role: "user", content: "" }]

export const body = (request: Llm.LlmRequest, dialect: Dialect): ChatRequest => {
  const format = request.responseFormat
  const responseFormat: ChatRequest["response_format"] =
    format?.type !== "json"
      ? undefined
      : format.schema !== undefined && dialect !== "deepseek"
        ? { type: "json_schema", json_schema: { name: "output", schema: format.schema, strict: false } }
        : { type: "json_object" }
  const effort = dialect === "openai" ? effortOf(request.reasoningEffort) : undefined
  return {
    model: request.model,
    messages: nonEmpty(messagesOf(request)),
    stream: true,
    stream_options: { include_usage: true },
    ...(request.tools && request.tools.length > 0
      ? {
          tools: request.tools.map((t) => ({
            type: "function" as const,
            function: { name: t.name, description: t.description, parameters: t.parameters }
          }))
        }
      : {}),
    ...(responseFormat ? { response_format: responseFormat } : {}),
    ...(request.temperature !== undefined && effort === undefined ? { temperature: request.temperature } : {}),
    ...(request.maxTokens !== undefined
      ? dialect === "openai"
        ? { max_completion_tokens: request.maxTokens }
        : { max_tokens: request.maxTokens }
      : {}),
    ...(request.stopSequences && Arr.isNonEmptyReadonlyArray(request.stopSequences) ? { stop: request.stopSequences } : {}),
    ...(effort !== undefined ? { reasoning_effort: effort } : {})
  }
}

/** JSON mode needs the word "JSON" in the prompt on OpenAI-style json_object endpoints (DeepSeek). */
const withJsonHint = (request: Llm.LlmRequest): Llm.LlmRequest => {
  const format = request.responseFormat
  if (format?.type !== "json") return request
  const hint =
    format.schema !== undefined
      ? `Answer with one JSON document that matches this JSON Schema:\n${JSON.stringify(format.schema)}`
      : "Answer with one JSON document."
  return { ...request, system: request.system === undefined ? hint : `${request.system}\n\n${hint}` }
}

const stopReasonOf = (finish: string): Llm.StopReason => {
  switch (finish) {
    case "stop":
      return "stop"
    case "length":
      return "length"
    case "tool_calls":
    case "function_call":
      return "tool_use"
    case "content_filter":
      return "content_filter"
    default:
      return "stop"
  }
}

interface ChunkShape {
  readonly error?: unknown
  readonly choices?: ReadonlyArray<{
    readonly delta?: {
      readonly content?: string | null
      readonly refusal?: string | null
      readonly reasoning_content?: string | null
      readonly reasoning?: string | null
      readonly tool_calls?: ReadonlyArray<{
        readonly index?: number
        readonly id?: string | null
        readonly function?: { readonly name?: string | null; readonly arguments?: string | null }
      }>
    } | null
    readonly finish_reason?: string | null
  }> | null
  readonly usage?: {
    readonly prompt_tokens?: number
    readonly completion_tokens?: number
    readonly prompt_tokens_details?: { readonly cached_tokens?: number } | null
    readonly completion_tokens_details?: { readonly reasoning_tokens?: number } | null
    readonly prompt_cache_hit_tokens?: number
  } | null
}

const nat = (n: unknown): number | undefined => (typeof n === "number" && Number.isFinite(n) && n >= 0 ? Math.round(n) : undefined)

export const decoder = (where: Where) => {
  const calls = new Map<number, { id: string; open: boolean }>()
  let reasoningOpen = false
  let finish: Llm.StopReason | undefined
  let usage: Llm.Usage | undefined
  let done = false

  const closeReasoning = (out: Array<Llm.StreamChunk>) => {
    if (reasoningOpen) {
      reasoningOpen = false
      out.push({ type: "reasoning_end", id: "reasoning" })
    }
  }
  const closeAll = (out: Array<Llm.StreamChunk>) => {
    closeReasoning(out)
    for (const call of calls.values()) {
      if (call.open) {
        call.open = false
        out.push({ type: "tool_call_end", id: call.id })
      }
    }
  }
  const finished = (): Decoded => {
    if (finish === undefined) {
      return llmError(where, "transport", `the ${where.provider} stream ended before the model finished`)
    }
    const out: Array<Llm.StreamChunk> = []
    closeAll(out)
    out.push({ type: "stop", stopReason: finish, usage: usage ?? { inputTokens: 0, outputTokens: 0 } })
    return out
  }

  const onEvent = (event: { readonly data: string }): Decoded => {
    const data = event.data.trim()
    if (data === "" || done) return []
    if (data === "[DONE]") {
      done = true
      return finished()
    }
    const parsed = parseData(data)
    if (!parsed.ok || typeof parsed.value !== "object" || parsed.value === null) return malformed(where, "not JSON", data)
    const chunk = parsed.value as ChunkShape
    if (chunk.error !== undefined && chunk.error !== null) return fromStreamError(where, chunk)
    if (chunk.choices !== undefined && chunk.choices !== null && !Array.isArray(chunk.choices)) {
      return malformed(where, "choices is not an array", data)
    }
    const out: Array<Llm.StreamChunk> = []
    if (chunk.usage) {
      const u = chunk.usage
      const cached = nat(u.prompt_tokens_details?.cached_tokens) ?? nat(u.prompt_cache_hit_tokens)
      const reasoning = nat(u.completion_tokens_details?.reasoning_tokens)
      usage = {
        inputTokens: nat(u.prompt_tokens) ?? 0,
        outputTokens: nat(u.completion_tokens) ?? 0,
        ...(cached !== undefined ? { cacheReadTokens: cached } : {}),
        ...(reasoning !== undefined ? { reasoningTokens: reasoning } : {})
      }
    }
    for (const choice of chunk.choices ?? []) {
      const delta = choice.delta ?? {}
      const thought = delta.reasoning_content ?? delta.reasoning
      if (typeof thought === "string" && thought !== "") {
        if (!reasoningOpen) {
          reasoningOpen = true
          out.push({ type: "reasoning_start", id: "reasoning" })
        }
        out.push({ type: "reasoning_delta", id: "reasoning", text: thought })
      }
      const text = (delta.content ?? "") + (delta.refusal ?? "")
      if (text !== "") {
        closeReasoning(out)
        out.push({ type: "text_delta", text })
      }
      for (const toolCall of delta.tool_calls ?? []) {
        const index = toolCall.index ?? calls.size
        let call = calls.get(index)
        if (call === undefined) {
          closeReasoning(out)
          call = { id: toolCall.id ?? `call_${index}`, open: true }
          calls.set(index, call)
          out.push({ type: "tool_call_start", id: call.id, name: toolCall.function?.name ?? "" })
        }
        const args = toolCall.function?.arguments
        if (typeof args === "string" && args !== "") out.push({ type: "tool_call_delta", id: call.id, argsJsonDelta: args })
      }
      if (typeof choice.finish_reason === "string" && choice.finish_reason !== "") {
        finish = stopReasonOf(choice.finish_reason)
        closeAll(out)
      }
    }
    return out
  }
  return {
    onEvent,
    onEnd: (): Decoded => (done ? [] : finished()),
    usage: () => usage
  }
}

export const adapter =
  (dialect: Dialect): Adapter =>
  (request, target) => {
    const prepared = dialect === "deepseek" ? withJsonHint(request) : request
    const http = HttpClientRequest.post(joinUrl(target.baseUrl, "/chat/completions")).pipe(
      HttpClientRequest.bodyUnsafeJson(body(prepared, dialect)),
      HttpClientRequest.setHeader("accept", "text/event-stream"),
      Option.isSome(target.key) ? HttpClientRequest.bearerToken(target.key.value) : (r) => r
    )
    return { request: http, decoder: decoder(target) }
  }

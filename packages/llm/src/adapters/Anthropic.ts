/**
 * Anthropic Messages over SSE: `message_start` (input usage), content blocks
 * (`text`, `tool_use` with `input_json_delta`, `thinking` with
 * `thinking_delta`), `message_delta` (stop reason, output usage),
 * `message_stop`, and `error` events mid-stream. Events are decoded with
 * @effect/ai-anthropic's `MessageStreamEvent` schema; the request body is
 * typed by its generated `CreateMessageParams`.
 *
 * Structured output uses Anthropic's native mechanism, a forced tool: the
 * schema becomes the input schema of a `structured_output` tool and the
 * tool's streamed input is re-emitted as the answer text.
 */
import { MessageStreamEvent } from "@effect/ai-anthropic/AnthropicClient"
import type * as Generated from "@effect/ai-anthropic/Generated"
import { HttpClientRequest } from "@effect/platform"
import type { Llm } from "@relavium/domain"
import { Either, Option, Redacted, Schema } from "effect"
import { type Adapter, type Decoded, joinUrl, parseData, resultText, textOf, thinkingBudget, withoutReasoning } from "../internal/Adapter.js"
import { fromStreamError, llmError, malformed, type Where } from "../internal/errors.js"

export const ANTHROPIC_VERSION = "2023-06-01"
const STRUCTURED_TOOL = "structured_output"
const DEFAULT_MAX_TOKENS = 4096

type MessageParams = typeof Generated.CreateMessageParams.Encoded
type MessageParam = MessageParams["messages"][number]
type Block = Exclude<MessageParam["content"], string>[number]

const messagesOf = (request: Llm.LlmRequest): Array<MessageParam> => {
  const out: Array<MessageParam> = []
  const push = (role: "user" | "assistant", blocks: Array<Block>) => {
    if (blocks.length === 0) return
    const previous = out[out.length - 1]
    // Anthropic wants alternating roles: tool results ride in the next user turn.
    if (previous !== undefined && previous.role === role && Array.isArray(previous.content)) {
      out[out.length - 1] = { role, content: [...(previous.content as ReadonlyArray<Block>), ...blocks] }
    } else {
      out.push({ role, content: blocks })
    }
  }
  for (const message of request.messages) {
    const content = withoutReasoning(message.content)
    if (message.role === "assistant") {
      push(
        "assistant",
        content.flatMap((p): Array<Block> =>
          p.type === "text"
            ? p.text === "" ? [] : [{ type: "text", text: p.text }]
            : p.type === "tool_call"
              ? [{ type: "tool_use", id: p.id, name: p.name, input: (p.args ?? {}) as Record<string, unknown> }]
              : []
        )
      )
    } else if (message.role === "tool") {
      push(
        "user",
        content.flatMap((p): Array<Block> =>
          p.type === "tool_result"
            ? [{ type: "tool_result", tool_use_id: p.id, content: resultText(p.result), ...(p.isError ? { is_error: true } : {}) }]
            : []
        )
      )
    } else {
      const text = textOf(content)
      push("user", [{ type: "text", text: text === "" ? "." : text }])
    }
  }
  return out
}

export const body = (request: Llm.LlmRequest): MessageParams => {
  const budget = thinkingBudget(request.reasoningEffort)
  const format = request.responseFormat
  const structured = format?.type === "json"
  const tools = [
    ...(request.tools ?? []).map((t) => ({
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      input_schema: { type: "object" as const, ...t.parameters }
    })),
    ...(structured
      ? [
          {
            name: STRUCTURED_TOOL,
            description: "Give your final answer by calling this tool; its input is the answer.",
            input_schema: { type: "object" as const, ...(format.schema ?? {}) }
          }
        ]
      : [])
  ]
  const maxTokens = Math.max(request.maxTokens ?? DEFAULT_MAX_TOKENS, budget !== undefined ? budget + 1024 : 1)
  const toolChoice: MessageParams["tool_choice"] = !structured
    ? undefined
    : budget !== undefined
      ? { type: "auto" } // extended thinking forbids forced tool use
      : (request.tools ?? []).length > 0
        ? { type: "any" }
        : { type: "tool", name: STRUCTURED_TOOL }
  return {
    model: request.model,
    max_tokens: maxTokens,
    messages: messagesOf(request),
    stream: true,
    ...(request.system !== undefined ? { system: request.system } : {}),
    ...(tools.length > 0 ? { tools } : {}),
    ...(toolChoice !== undefined ? { tool_choice: toolChoice } : {}),
    ...(request.temperature !== undefined && budget === undefined ? { temperature: Math.min(1, request.temperature) } : {}),
    ...(request.stopSequences && request.stopSequences.length > 0 ? { stop_sequences: [...request.stopSequences] } : {}),
    ...(budget !== undefined ? { thinking: { type: "enabled", budget_tokens: budget } } : {})
  }
}

const stopReasonOf = (reason: string | null | undefined): Llm.StopReason => {
  switch (reason) {
    case "max_tokens":
      return "length"
    case "tool_use":
      return "tool_use"
    case "refusal":
      return "content_filter"
    default:
      return "stop"
  }
}

const KNOWN_EVENTS = new Set([
  "ping",
  "message_start",
  "message_delta",
  "message_stop",
  "content_block_start",
  "content_block_delta",
  "content_block_stop"
])
const decodeEvent = Schema.decodeUnknownEither(MessageStreamEvent)

export const decoder = (where: Where) => {
  const blocks = new Map<number, { kind: "text" | "tool" | "structured" | "thinking" | "other"; id: string }>()
  let input = 0
  let cacheRead = 0
  let cacheWrite = 0
  let output = 0
  let stopReason: string | null | undefined
  let structuredOnly = true
  let started = false
  let done = false

  const usage = (): Llm.Usage => ({
    inputTokens: input + cacheRead + cacheWrite,
    outputTokens: output,
    ...(cacheRead > 0 ? { cacheReadTokens: cacheRead } : {}),
    ...(cacheWrite > 0 ? { cacheWriteTokens: cacheWrite } : {})
  })

  const onEvent = (event: { readonly data: string }): Decoded => {
    if (done || event.data.trim() === "") return []
    const parsed = parseData(event.data)
    if (!parsed.ok || typeof parsed.value !== "object" || parsed.value === null) return malformed(where, "not JSON", event.data)
    const type = (parsed.value as { type?: unknown }).type
    if (type === "error") return fromStreamError(where, parsed.value)
    if (typeof type !== "string" || !KNOWN_EVENTS.has(type)) return [] // a future event type: ignore
    const decoded = decodeEvent(parsed.value)
    if (Either.isLeft(decoded)) return malformed(where, `bad ${type}`, event.data)
    const e = decoded.right
    switch (e.type) {
      case "message_start": {
        started = true
        const u = e.message.usage
        input = u.input_tokens
        cacheRead = u.cache_read_input_tokens ?? 0
        cacheWrite = u.cache_creation_input_tokens ?? 0
        output = u.output_tokens
        return []
      }
      case "content_block_start": {
        const block = e.content_block
        if (block.type === "text") {
          blocks.set(e.index, { kind: "text", id: `text_${e.index}` })
          return block.text !== "" ? [{ type: "text_delta", text: block.text }] : []
        }
        if (block.type === "tool_use") {
          if (block.name === STRUCTURED_TOOL) {
            blocks.set(e.index, { kind: "structured", id: block.id })
            return []
          }
          structuredOnly = false
          blocks.set(e.index, { kind: "tool", id: block.id })
          return [{ type: "tool_call_start", id: block.id, name: block.name }]
        }
        if (block.type === "thinking") {
          const id = `thinking_${e.index}`
          blocks.set(e.index, { kind: "thinking", id })
          return [{ type: "reasoning_start", id }]
        }
        blocks.set(e.index, { kind: "other", id: `block_${e.index}` })
        return []
      }
      case "content_block_delta": {
        const block = blocks.get(e.index)
        if (block === undefined) return malformed(where, "delta for an unknown block", event.data)
        const delta = e.delta
        switch (delta.type) {
          case "text_delta":
            return [{ type: "text_delta", text: delta.text }]
          case "input_json_delta":
            if (block.kind === "structured") return delta.partial_json === "" ? [] : [{ type: "text_delta", text: delta.partial_json }]
            return delta.partial_json === "" ? [] : [{ type: "tool_call_delta", id: block.id, argsJsonDelta: delta.partial_json }]
          case "thinking_delta":
            return [{ type: "reasoning_delta", id: block.id, text: delta.thinking }]
          default:
            return []
        }
      }
      case "content_block_stop": {
        const block = blocks.get(e.index)
        if (block?.kind === "tool") return [{ type: "tool_call_end", id: block.id }]
        if (block?.kind === "thinking") return [{ type: "reasoning_end", id: block.id }]
        return []
      }
      case "message_delta": {
        stopReason = e.delta.stop_reason
        const u = e.usage
        if (typeof u.output_tokens === "number") output = Math.max(output, u.output_tokens)
        if (typeof u.input_tokens === "number") input = Math.max(input, u.input_tokens)
        if (typeof u.cache_read_input_tokens === "number") cacheRead = Math.max(cacheRead, u.cache_read_input_tokens)
        if (typeof u.cache_creation_input_tokens === "number") cacheWrite = Math.max(cacheWrite, u.cache_creation_input_tokens)
        return []
      }
      case "message_stop": {
        done = true
        let reason = stopReasonOf(stopReason)
        // The forced structured-output tool is the answer, not a tool call.
        if (reason === "tool_use" && structuredOnly) reason = "stop"
        return [{ type: "stop", stopReason: reason, usage: usage() }]
      }
      default:
        return []
    }
  }

  return {
    onEvent,
    onEnd: (): Decoded =>
      done ? [] : llmError(where, "transport", `the ${where.provider} stream ended before message_stop`),
    usage: () => (started ? usage() : undefined)
  }
}

export const adapter: Adapter = (request, target) => {
  const http = HttpClientRequest.post(joinUrl(target.baseUrl, "/messages")).pipe(
    HttpClientRequest.bodyUnsafeJson(body(request)),
    HttpClientRequest.setHeaders({ accept: "text/event-stream", "anthropic-version": ANTHROPIC_VERSION }),
    Option.isSome(target.key) ? HttpClientRequest.setHeader("x-api-key", Redacted.value(target.key.value)) : (r) => r
  )
  return { request: http, decoder: decoder(target) }
}

/**
 * OpenAI chat completions ↔ the provider-neutral `LlmRequest` / `StreamChunk` of @relavium/domain,
 * so every upstream is reached through @relavium/llm's adapters:
 *
 * - `toLlmRequest`: system and developer messages become the system prompt; user, assistant (text
 *   and tool calls, whose JSON arguments must parse) and tool messages (results, named after the
 *   call they answer) the history; `response_format` json_schema / json_object a JSON answer.
 * - `Completion`: folds the upstream's chunks into one `chat.completion` (non-streamed).
 * - `ChunkWriter`: turns each upstream chunk into OpenAI's `chat.completion.chunk` SSE events.
 */
import type { Llm } from "@relavium/domain"
import { Either } from "effect"
import { type ApiFailure, type ChatCompletionRequest, type Content, failure, type FinishReason, type ToolCallBody, usageBody } from "./OpenAi.js"
import type { Route } from "./Routing.js"

const textOf = (content: Content | null | undefined): string =>
  content === null || content === undefined ? "" : typeof content === "string" ? content : content.map((p) => p.text).join("")

const bad = (message: string, param: string): ApiFailure => failure(400, "invalid_request_error", "invalid_value", message, param)

/** The output cap of a request: the client's, else the route's default (always sent upstream, so it bounds the cost). */
export const outputCap = (body: ChatCompletionRequest, route: Route): number =>
  body.max_completion_tokens ?? body.max_tokens ?? route.maxOutputTokens

export const toLlmRequest = (body: ChatCompletionRequest, route: Route, fallbacks: ReadonlyArray<Route>): Either.Either<Llm.LlmRequest, ApiFailure> => {
  if (body.n !== undefined && body.n !== null && body.n > 1) return Either.left(bad("the gateway answers with one choice: n must be 1", "n"))
  const choice = body.tool_choice
  if (choice !== undefined && choice !== null && choice !== "auto" && choice !== "none") {
    return Either.left(bad("tool_choice may be auto or none on the gateway", "tool_choice"))
  }
  const system: Array<string> = []
  const messages: Array<Llm.LlmMessage> = []
  const toolNames = new Map<string, string>()
  for (let i = 0; i < body.messages.length; i++) {
    const m = body.messages[i]!
    switch (m.role) {
      case "system":
      case "developer":
        system.push(textOf(m.content))
        break
      case "user":
        messages.push({ role: "user", content: [{ type: "text", text: textOf(m.content) }] })
        break
      case "assistant": {
        const parts: Array<Llm.ContentPart> = []
        const text = textOf(m.content)
        if (text !== "") parts.push({ type: "text", text })
        const calls = m.tool_calls ?? []
        for (let j = 0; j < calls.length; j++) {
          const call = calls[j]!
          let args: unknown
          try {
            args = call.function.arguments.trim() === "" ? {} : JSON.parse(call.function.arguments)
          } catch {
            return Either.left(bad("a tool call's arguments are not JSON", `messages[${i}].tool_calls[${j}].function.arguments`))
          }
          toolNames.set(call.id, call.function.name)
          parts.push({ type: "tool_call", id: call.id, name: call.function.name, args })
        }
        messages.push({ role: "assistant", content: parts })
        break
      }
      case "tool": {
        const name = toolNames.get(m.tool_call_id)
        if (name === undefined) {
          return Either.left(bad(`no earlier assistant message made the tool call '${m.tool_call_id}'`, `messages[${i}].tool_call_id`))
        }
        const result: Llm.ContentPart = { type: "tool_result", id: m.tool_call_id, name, result: textOf(m.content) }
        const previous = messages[messages.length - 1]
        if (previous?.role === "tool") messages[messages.length - 1] = { role: "tool", content: [...previous.content, result] }
        else messages.push({ role: "tool", content: [result] })
        break
      }
    }
  }
  const format = body.response_format
  const responseFormat: Llm.ResponseFormat | undefined =
    format === undefined || format === null || format.type === "text"
      ? undefined
      : format.type === "json_object"
        ? { type: "json" }
        : { type: "json", ...(format.json_schema.schema !== undefined ? { schema: format.json_schema.schema } : {}) }
  const tools = choice === "none" ? [] : (body.tools ?? [])
  const stop = body.stop === undefined || body.stop === null ? undefined : typeof body.stop === "string" ? [body.stop] : body.stop
  const effort = body.reasoning_effort === "minimal" ? "low" : (body.reasoning_effort ?? undefined)
  return Either.right({
    provider: route.provider,
    model: route.model,
    ...(system.length > 0 ? { system: system.join("\n\n") } : {}),
    messages,
    ...(tools.length > 0
      ? {
          tools: tools.map((t) => ({
            name: t.function.name,
            ...(t.function.description !== undefined ? { description: t.function.description } : {}),
            parameters: t.function.parameters ?? { type: "object", properties: {} }
          }))
        }
      : {}),
    ...(responseFormat !== undefined ? { responseFormat } : {}),
    ...(body.temperature !== undefined && body.temperature !== null ? { temperature: body.temperature } : {}),
    maxTokens: outputCap(body, route),
    ...(stop !== undefined && stop.length > 0 ? { stopSequences: stop } : {}),
    ...(effort !== undefined ? { reasoningEffort: effort } : {}),
    fallbacks: fallbacks.map((f) => ({ provider: f.provider, model: f.model }))
  })
}

/** A rough token count of what is sent (4 characters a token): the input side of the worst case. */
export const estimateInputTokens = (body: ChatCompletionRequest): number => {
  let chars = 0
  for (const m of body.messages) {
    chars += 8
    if ("content" in m) chars += textOf(m.content).length
    if (m.role === "assistant") for (const call of m.tool_calls ?? []) chars += call.function.name.length + call.function.arguments.length
  }
  for (const t of body.tools ?? []) chars += JSON.stringify(t).length
  if (body.response_format?.type === "json_schema") chars += JSON.stringify(body.response_format.json_schema).length
  return Math.ceil(chars / 4)
}

export const finishOf = (reason: Llm.StopReason): FinishReason =>
  reason === "length" ? "length" : reason === "tool_use" ? "tool_calls" : reason === "content_filter" ? "content_filter" : "stop"

interface ToolState {
  readonly index: number
  readonly id: string
  readonly name: string
  args: string
}

/** Folds upstream chunks into one non-streamed `chat.completion`. */
export class Completion {
  private text = ""
  private readonly tools = new Map<string, ToolState>()
  finish: FinishReason | undefined
  usage: Llm.Usage | undefined

  add(chunk: Llm.StreamChunk): void {
    switch (chunk.type) {
      case "text_delta":
        this.text += chunk.text
        break
      case "tool_call_start":
        this.tools.set(chunk.id, { index: this.tools.size, id: chunk.id, name: chunk.name, args: "" })
        break
      case "tool_call_delta": {
        const tool = this.tools.get(chunk.id)
        if (tool !== undefined) tool.args += chunk.argsJsonDelta
        break
      }
      case "stop":
        this.usage = chunk.usage
        if (chunk.stopReason !== "error") this.finish = finishOf(chunk.stopReason)
        break
      default:
        break
    }
  }

  body(id: string, created: number, model: string, usage: Llm.Usage) {
    const calls: Array<ToolCallBody> = [...this.tools.values()].map((t) => ({
      id: t.id,
      type: "function",
      function: { name: t.name, arguments: t.args === "" ? "{}" : t.args }
    }))
    return {
      id,
      object: "chat.completion",
      created,
      model,
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: this.text === "" && calls.length > 0 ? null : this.text,
            refusal: null,
            ...(calls.length > 0 ? { tool_calls: calls } : {})
          },
          logprobs: null,
          finish_reason: this.finish ?? "stop"
        }
      ],
      usage: usageBody(usage),
      system_fingerprint: null
    }
  }
}

const encoder = new TextEncoder()
export const sseEvent = (data: unknown): Uint8Array => encoder.encode(`data: ${JSON.stringify(data)}\n\n`)
export const SSE_DONE = encoder.encode("data: [DONE]\n\n")

/** Turns upstream chunks into OpenAI `chat.completion.chunk` events, in OpenAI's order and shape. */
export class ChunkWriter {
  private readonly tools = new Map<string, number>()
  private started = false
  finish: FinishReason | undefined

  constructor(
    private readonly id: string,
    private readonly created: number,
    private readonly model: string,
    private readonly includeUsage: boolean
  ) {}

  private chunk(delta: Record<string, unknown>, finish: FinishReason | null = null) {
    return sseEvent({
      id: this.id,
      object: "chat.completion.chunk",
      created: this.created,
      model: this.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(this.includeUsage ? { usage: null } : {})
    })
  }

  /** The first event: the assistant role with empty content. */
  start(): Uint8Array {
    this.started = true
    return this.chunk({ role: "assistant", content: "", refusal: null })
  }

  /** The events of one upstream chunk (none for attempts, reasoning and the closing of a tool call). */
  write(chunk: Llm.StreamChunk): ReadonlyArray<Uint8Array> {
    const out: Array<Uint8Array> = this.started ? [] : [this.start()]
    switch (chunk.type) {
      case "text_delta":
        if (chunk.text !== "") out.push(this.chunk({ content: chunk.text }))
        break
      case "tool_call_start": {
        const index = this.tools.size
        this.tools.set(chunk.id, index)
        out.push(this.chunk({ tool_calls: [{ index, id: chunk.id, type: "function", function: { name: chunk.name, arguments: "" } }] }))
        break
      }
      case "tool_call_delta": {
        const index = this.tools.get(chunk.id)
        if (index !== undefined) out.push(this.chunk({ tool_calls: [{ index, function: { arguments: chunk.argsJsonDelta } }] }))
        break
      }
      case "stop":
        if (chunk.stopReason !== "error") {
          this.finish = finishOf(chunk.stopReason)
          out.push(this.chunk({}, this.finish))
        }
        break
      default:
        break
    }
    return out
  }

  /** The usage event OpenAI sends last when `stream_options.include_usage` is set: no choices. */
  usage(usage: Llm.Usage): Uint8Array {
    return sseEvent({
      id: this.id,
      object: "chat.completion.chunk",
      created: this.created,
      model: this.model,
      system_fingerprint: null,
      choices: [],
      usage: usageBody(usage)
    })
  }
}

/**
 * Google Gemini `models/{model}:streamGenerateContent?alt=sse`. Each event is
 * a whole `GenerateContentResponse` chunk: candidate parts (`text`, `thought`
 * text, whole `functionCall`s), a `finishReason` on the last, and
 * `usageMetadata` (cumulative: prompt, candidates, thoughts, cached). There is
 * no Effect AI package for Gemini on the Effect 3 line, so this is by hand.
 * Structured output uses `responseMimeType` + `responseJsonSchema`.
 */
import { HttpClientRequest } from "@effect/platform"
import type { Llm } from "@relavium/domain"
import { Option, Redacted } from "effect"
import { type Adapter, type Decoded, joinUrl, parseData, resultText, textOf, thinkingBudget, withoutReasoning } from "../internal/Adapter.js"
import { fromStreamError, llmError, malformed, type Where } from "../internal/errors.js"

const contentsOf = (request: Llm.LlmRequest) => {
  const out: Array<{ role: "user" | "model"; parts: Array<Record<string, unknown>> }> = []
  for (const message of request.messages) {
    const content = withoutReasoning(message.content)
    if (message.role === "user") {
      out.push({ role: "user", parts: [{ text: textOf(content) }] })
    } else if (message.role === "assistant") {
      const parts = content.flatMap((p): Array<Record<string, unknown>> =>
        p.type === "text" ? (p.text === "" ? [] : [{ text: p.text }]) : p.type === "tool_call" ? [{ functionCall: { name: p.name, args: p.args ?? {} } }] : []
      )
      if (parts.length > 0) out.push({ role: "model", parts })
    } else {
      const parts = content.flatMap((p): Array<Record<string, unknown>> =>
        p.type === "tool_result" ? [{ functionResponse: { name: p.name, response: { result: resultText(p.result) } } }] : []
      )
      if (parts.length > 0) out.push({ role: "user", parts })
    }
  }
  return out
}

export const body = (request: Llm.LlmRequest) => {
  const format = request.responseFormat
  const budget = request.reasoningEffort === "off" ? 0 : thinkingBudget(request.reasoningEffort)
  const generationConfig = {
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.maxTokens !== undefined ? { maxOutputTokens: request.maxTokens } : {}),
    ...(request.stopSequences && request.stopSequences.length > 0 ? { stopSequences: request.stopSequences } : {}),
    ...(format?.type === "json"
      ? { responseMimeType: "application/json", ...(format.schema !== undefined ? { responseJsonSchema: format.schema } : {}) }
      : {}),
    ...(budget !== undefined ? { thinkingConfig: { thinkingBudget: budget, includeThoughts: budget > 0 } } : {})
  }
  return {
    contents: contentsOf(request),
    ...(request.system !== undefined ? { systemInstruction: { parts: [{ text: request.system }] } } : {}),
    ...(request.tools && request.tools.length > 0
      ? {
          tools: [
            {
              functionDeclarations: request.tools.map((t) => ({
                name: t.name,
                ...(t.description !== undefined ? { description: t.description } : {}),
                parametersJsonSchema: t.parameters
              }))
            }
          ]
        }
      : {}),
    ...(Object.keys(generationConfig).length > 0 ? { generationConfig } : {})
  }
}

interface ChunkShape {
  readonly error?: unknown
  readonly candidates?: ReadonlyArray<{
    readonly content?: {
      readonly parts?: ReadonlyArray<{
        readonly text?: string
        readonly thought?: boolean
        readonly functionCall?: { readonly id?: string; readonly name?: string; readonly args?: unknown }
      }>
    }
    readonly finishReason?: string
  }>
  readonly promptFeedback?: { readonly blockReason?: string }
  readonly usageMetadata?: {
    readonly promptTokenCount?: number
    readonly candidatesTokenCount?: number
    readonly thoughtsTokenCount?: number
    readonly cachedContentTokenCount?: number
  }
}

const nat = (n: unknown): number => (typeof n === "number" && Number.isFinite(n) && n >= 0 ? Math.round(n) : 0)

const stopReasonOf = (reason: string): Llm.StopReason => {
  switch (reason) {
    case "STOP":
      return "stop"
    case "MAX_TOKENS":
      return "length"
    case "SAFETY":
    case "RECITATION":
    case "BLOCKLIST":
    case "PROHIBITED_CONTENT":
    case "SPII":
    case "IMAGE_SAFETY":
      return "content_filter"
    case "MALFORMED_FUNCTION_CALL":
      return "error"
    default:
      return "stop"
  }
}

export const decoder = (where: Where) => {
  let usage: Llm.Usage | undefined
  let finish: Llm.StopReason | undefined
  let calls = 0
  let thinking = false

  const onEvent = (event: { readonly data: string }): Decoded => {
    const data = event.data.trim()
    if (data === "") return []
    const parsed = parseData(data)
    if (!parsed.ok || typeof parsed.value !== "object" || parsed.value === null) return malformed(where, "not JSON", data)
    const chunk = parsed.value as ChunkShape
    if (chunk.error !== undefined) return fromStreamError(where, chunk)
    if (chunk.candidates !== undefined && !Array.isArray(chunk.candidates)) return malformed(where, "candidates is not an array", data)
    const out: Array<Llm.StreamChunk> = []
    if (chunk.usageMetadata) {
      const u = chunk.usageMetadata
      const thoughts = nat(u.thoughtsTokenCount)
      const cached = nat(u.cachedContentTokenCount)
      usage = {
        inputTokens: nat(u.promptTokenCount),
        // Gemini counts thoughts apart from candidates; both are billed as output.
        outputTokens: nat(u.candidatesTokenCount) + thoughts,
        ...(cached > 0 ? { cacheReadTokens: cached } : {}),
        ...(thoughts > 0 ? { reasoningTokens: thoughts } : {})
      }
    }
    if (chunk.promptFeedback?.blockReason !== undefined && (chunk.candidates ?? []).length === 0) {
      finish = "content_filter"
    }
    const candidate = chunk.candidates?.[0]
    for (const part of candidate?.content?.parts ?? []) {
      if (typeof part.text === "string" && part.thought === true) {
        if (!thinking) {
          thinking = true
          out.push({ type: "reasoning_start", id: "thought" })
        }
        out.push({ type: "reasoning_delta", id: "thought", text: part.text })
        continue
      }
      if (thinking && (typeof part.text === "string" || part.functionCall !== undefined)) {
        thinking = false
        out.push({ type: "reasoning_end", id: "thought" })
      }
      if (typeof part.text === "string" && part.text !== "") out.push({ type: "text_delta", text: part.text })
      if (part.functionCall !== undefined) {
        const id = part.functionCall.id ?? `call_${calls}`
        calls += 1
        out.push(
          { type: "tool_call_start", id, name: part.functionCall.name ?? "" },
          { type: "tool_call_delta", id, argsJsonDelta: JSON.stringify(part.functionCall.args ?? {}) },
          { type: "tool_call_end", id }
        )
      }
    }
    if (typeof candidate?.finishReason === "string" && candidate.finishReason !== "FINISH_REASON_UNSPECIFIED") {
      finish = stopReasonOf(candidate.finishReason)
    }
    return out
  }

  return {
    onEvent,
    onEnd: (): Decoded => {
      if (finish === undefined) return llmError(where, "transport", `the ${where.provider} stream ended before a finishReason`)
      const out: Array<Llm.StreamChunk> = []
      if (thinking) out.push({ type: "reasoning_end", id: "thought" })
      const stopReason = finish === "stop" && calls > 0 ? "tool_use" : finish
      out.push({ type: "stop", stopReason, usage: usage ?? { inputTokens: 0, outputTokens: 0 } })
      return out
    },
    usage: () => usage
  }
}

export const adapter: Adapter = (request, target) => {
  const model = request.model.startsWith("models/") ? request.model.slice("models/".length) : request.model
  const http = HttpClientRequest.post(
    joinUrl(target.baseUrl, `/models/${encodeURIComponent(model)}:streamGenerateContent`)
  ).pipe(
    HttpClientRequest.setUrlParam("alt", "sse"),
    HttpClientRequest.bodyUnsafeJson(body(request)),
    HttpClientRequest.setHeader("accept", "text/event-stream"),
    // The key goes in a header, never the URL, so it cannot surface in a logged URL.
    Option.isSome(target.key) ? HttpClientRequest.setHeader("x-goog-api-key", Redacted.value(target.key.value)) : (r) => r
  )
  return { request: http, decoder: decoder(target) }
}

/**
 * The LlmProvider contract on the cassette replayer and on the real provider
 * layer speaking each vendor's wire format (OpenAI chat completions, Anthropic
 * messages, Gemini) to a local HTTP server replaying frames of the recorded shapes.
 * Each harness renders the suite's provider-neutral turns in its own medium.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { KeyStore } from "@relavium/ports"
import { type ContractTurn, llmProviderContract } from "@relavium/ports/testing"
import type { Llm } from "@relavium/domain"
import { Cassette, Providers } from "../src/index.js"
import { type Reply, sseHeaders, startServer } from "./fixtures/server.js"
import { anthropic, gemini, openAiChat } from "./fixtures/wire.js"

/** Splits `text` in pieces of `size`, as a stream delivers it. */
const pieces = (text: string, size: number) => text.match(new RegExp(`[\\s\\S]{1,${size}}`, "g")) ?? []

// ---------------------------------------------------------------- cassette

const cassetteChunks = (turn: ContractTurn): ReadonlyArray<Llm.StreamChunk> => {
  switch (turn.kind) {
    case "text":
      return [
        ...pieces(turn.text, 5).map((text) => ({ type: "text_delta" as const, text })),
        { type: "stop", stopReason: "stop", usage: turn.usage }
      ]
    case "tool_calls":
      return [
        ...turn.calls.flatMap((call): Array<Llm.StreamChunk> => [
          { type: "tool_call_start", id: call.id, name: call.name },
          ...pieces(JSON.stringify(call.args), 6).map((argsJsonDelta) => ({ type: "tool_call_delta" as const, id: call.id, argsJsonDelta })),
          { type: "tool_call_end", id: call.id }
        ]),
        { type: "stop", stopReason: "tool_use", usage: turn.usage }
      ]
    case "auth_error":
      return [{ type: "error", error: { kind: "auth", retryable: false, provider: "anthropic", message: "the recorded call was refused: invalid x-api-key" } }]
  }
}

llmProviderContract(
  "cassette",
  (turns) => Cassette.layerCassette({ schema_version: "1.0", provider: "anthropic", calls: turns.map(cassetteChunks) }),
  { provider: "anthropic", model: "claude-sonnet-4-5" }
)

// ---------------------------------------------------------------- real wire formats

const KEY = "sk-test-CONTRACT-7f3e9a1c5b"

const overServer = (provider: string, render: (turn: ContractTurn) => Reply) => (turns: ReadonlyArray<ContractTurn>) =>
  Layer.unwrapScoped(
    Effect.map(startServer(turns.map(render)), (server) =>
      Providers.layer({ backoffBaseMs: 5, firstByteTimeoutMs: 5_000, providers: { [provider]: { baseUrl: server.url } } }).pipe(
        Layer.provide(Layer.mergeAll(NodeHttpClient.layerUndici, KeyStore.layerMemory({ [provider]: KEY })))
      )
    )
  )

const json = { "content-type": "application/json" }

const chatChunk = (choices: ReadonlyArray<unknown>, usage?: unknown) =>
  `data: ${JSON.stringify({ id: "chatcmpl-Contract", object: "chat.completion.chunk", created: 1731000000, model: "local-model", choices, ...(usage === undefined ? {} : { usage }) })}\n\n`
const delta = (d: unknown, finish: string | null = null) => chatChunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }])
const openAiUsage = (usage: { inputTokens: number; outputTokens: number }) => ({
  prompt_tokens: usage.inputTokens,
  completion_tokens: usage.outputTokens,
  total_tokens: usage.inputTokens + usage.outputTokens
})

const openAiChatReply = (turn: ContractTurn): Reply => {
  switch (turn.kind) {
    case "text":
      return {
        frames: [
          delta({ role: "assistant", content: "", refusal: null }),
          ...pieces(turn.text, 5).map((content) => delta({ content })),
          delta({}, "stop"),
          chatChunk([], openAiUsage(turn.usage)),
          "data: [DONE]\n\n"
        ]
      }
    case "tool_calls":
      return {
        frames: [
          ...turn.calls.flatMap((call, index) => [
            delta({ role: "assistant", content: null, tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] }),
            ...pieces(JSON.stringify(call.args), 6).map((args) => delta({ tool_calls: [{ index, function: { arguments: args } }] }))
          ]),
          delta({}, "tool_calls"),
          chatChunk([], openAiUsage(turn.usage)),
          "data: [DONE]\n\n"
        ]
      }
    case "auth_error":
      return { status: 401, headers: json, frames: [openAiChat.invalidKeyBody(KEY)] }
  }
}

llmProviderContract("OpenAI chat completions wire", overServer("openai-compatible", openAiChatReply), {
  provider: "openai-compatible",
  model: "local-model",
  key: KEY
})

const aev = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`
const messageStart = (inputTokens: number) =>
  aev("message_start", {
    message: { id: "msg_01Contract", type: "message", role: "assistant", content: [], model: "claude-sonnet-4-5-20250929", stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTokens, output_tokens: 1 } }
  })
const messageEnd = (stopReason: string, outputTokens: number) => [
  aev("message_delta", { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: outputTokens } }),
  aev("message_stop", {})
]

const anthropicReply = (turn: ContractTurn): Reply => {
  switch (turn.kind) {
    case "text":
      return {
        headers: sseHeaders,
        frames: [
          messageStart(turn.usage.inputTokens),
          aev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
          ...pieces(turn.text, 5).map((text) => aev("content_block_delta", { index: 0, delta: { type: "text_delta", text } })),
          aev("content_block_stop", { index: 0 }),
          ...messageEnd("end_turn", turn.usage.outputTokens)
        ]
      }
    case "tool_calls":
      return {
        headers: sseHeaders,
        frames: [
          messageStart(turn.usage.inputTokens),
          ...turn.calls.flatMap((call, index) => [
            aev("content_block_start", { index, content_block: { type: "tool_use", id: call.id, name: call.name, input: {} } }),
            ...pieces(JSON.stringify(call.args), 6).map((partial_json) => aev("content_block_delta", { index, delta: { type: "input_json_delta", partial_json } })),
            aev("content_block_stop", { index })
          ]),
          ...messageEnd("tool_use", turn.usage.outputTokens)
        ]
      }
    case "auth_error":
      return { status: 401, headers: json, frames: [anthropic.authBody] }
  }
}

llmProviderContract("Anthropic messages wire", overServer("anthropic", anthropicReply), {
  provider: "anthropic",
  model: "claude-sonnet-4-5",
  key: KEY
})

const gchunk = (data: Record<string, unknown>) => `data: ${JSON.stringify({ ...data, modelVersion: "gemini-2.5-flash", responseId: "mJzContract" })}\r\n\r\n`
const geminiUsage = (usage: { inputTokens: number; outputTokens: number }) => ({
  promptTokenCount: usage.inputTokens,
  candidatesTokenCount: usage.outputTokens,
  totalTokenCount: usage.inputTokens + usage.outputTokens
})

const geminiReply = (turn: ContractTurn): Reply => {
  switch (turn.kind) {
    case "text": {
      const parts = pieces(turn.text, 5)
      return {
        headers: sseHeaders,
        frames: parts.map((text, i) =>
          gchunk({
            candidates: [{ content: { parts: [{ text }], role: "model" }, index: 0, ...(i === parts.length - 1 ? { finishReason: "STOP" } : {}) }],
            usageMetadata: geminiUsage(turn.usage)
          })
        )
      }
    }
    case "tool_calls":
      return {
        headers: sseHeaders,
        frames: [
          gchunk({
            candidates: [
              {
                content: { parts: turn.calls.map((call) => ({ functionCall: { name: call.name, args: call.args } })), role: "model" },
                finishReason: "STOP",
                index: 0
              }
            ],
            usageMetadata: geminiUsage(turn.usage)
          })
        ]
      }
    case "auth_error":
      return { status: 400, headers: json, frames: [gemini.badKeyBody] }
  }
}

llmProviderContract("Gemini wire", overServer("gemini", geminiReply), { provider: "gemini", model: "gemini-2.5-flash", key: KEY })

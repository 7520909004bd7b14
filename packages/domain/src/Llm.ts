/**
 * The LLM seam: provider-neutral requests, stream chunks, usage and errors.
 * Every provider adapter maps its wire format to and from these shapes.
 */
import { Schema } from "effect"

const Int = Schema.Int.pipe(Schema.nonNegative())

export const StopReason = Schema.Literal("stop", "length", "tool_use", "content_filter", "error")
export type StopReason = typeof StopReason.Type

export const Usage = Schema.Struct({
  inputTokens: Int,
  outputTokens: Int,
  cacheReadTokens: Schema.optional(Int),
  cacheWriteTokens: Schema.optional(Int),
  reasoningTokens: Schema.optional(Int)
})
export type Usage = typeof Usage.Type

export const LlmErrorKind = Schema.Literal(
  "rate_limit",
  "overloaded",
  "timeout",
  "transport",
  "auth",
  "bad_request",
  "content_filter",
  "cancelled",
  "unknown"
)
export type LlmErrorKind = typeof LlmErrorKind.Type

export const RetryableLlmErrorKinds: ReadonlySet<LlmErrorKind> = new Set([
  "rate_limit",
  "overloaded",
  "timeout",
  "transport"
])

/** The one error that crosses the seam; no vendor error escapes an adapter. */
export class LlmError extends Schema.TaggedError<LlmError>()("LlmError", {
  kind: LlmErrorKind,
  retryable: Schema.Boolean,
  provider: Schema.String,
  model: Schema.optional(Schema.String),
  status: Schema.optional(Schema.Int),
  retryAfterMs: Schema.optional(Int),
  message: Schema.String
}) {}

export const ContentPart = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text"), text: Schema.String }),
  Schema.Struct({ type: Schema.Literal("reasoning"), text: Schema.String }),
  Schema.Struct({
    type: Schema.Literal("tool_call"),
    id: Schema.String,
    name: Schema.String,
    args: Schema.Unknown
  }),
  Schema.Struct({
    type: Schema.Literal("tool_result"),
    id: Schema.String,
    name: Schema.String,
    result: Schema.Unknown,
    isError: Schema.optional(Schema.Boolean)
  })
)
export type ContentPart = typeof ContentPart.Type

export const LlmMessage = Schema.Struct({
  role: Schema.Literal("user", "assistant", "tool"),
  content: Schema.Array(ContentPart)
})
export type LlmMessage = typeof LlmMessage.Type

export const ToolDef = Schema.Struct({
  name: Schema.String,
  description: Schema.optional(Schema.String),
  parameters: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})
export type ToolDef = typeof ToolDef.Type

export const ResponseFormat = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({
    type: Schema.Literal("json"),
    schema: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
  })
)
export type ResponseFormat = typeof ResponseFormat.Type

/** A provider/model to fall over to when the one before it fails before streaming output. */
export interface FallbackTarget {
  readonly provider: string
  readonly model: string
  /** Attempts on this target before moving on (default 1). */
  readonly maxAttempts?: number | undefined
}

export interface LlmRequest {
  readonly provider: string
  readonly model: string
  readonly system?: string | undefined
  readonly messages: ReadonlyArray<LlmMessage>
  readonly tools?: ReadonlyArray<ToolDef> | undefined
  readonly responseFormat?: ResponseFormat | undefined
  readonly temperature?: number | undefined
  readonly maxTokens?: number | undefined
  readonly reasoningEffort?: "off" | "low" | "medium" | "high" | "max" | undefined
  readonly stopSequences?: ReadonlyArray<string> | undefined
  /** The agent's `fallback_chain`, tried in order after the primary (docs/workflow-format.md, "Model calls"). */
  readonly fallbacks?: ReadonlyArray<FallbackTarget> | undefined
  /** Attempts on the primary before falling over (default: the provider layer's own retry policy). */
  readonly maxAttempts?: number | undefined
}

export const StreamChunk = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text_delta"), text: Schema.String }),
  Schema.Struct({ type: Schema.Literal("tool_call_start"), id: Schema.String, name: Schema.String }),
  Schema.Struct({ type: Schema.Literal("tool_call_delta"), id: Schema.String, argsJsonDelta: Schema.String }),
  Schema.Struct({ type: Schema.Literal("tool_call_end"), id: Schema.String }),
  Schema.Struct({ type: Schema.Literal("reasoning_start"), id: Schema.String }),
  Schema.Struct({ type: Schema.Literal("reasoning_delta"), id: Schema.String, text: Schema.String }),
  Schema.Struct({ type: Schema.Literal("reasoning_end"), id: Schema.String }),
  Schema.Struct({ type: Schema.Literal("stop"), stopReason: StopReason, usage: Usage }),
  /**
   * Emitted by a provider layer before each attempt after the first: a retry on the same
   * provider, or a switch along the fallback chain. Never emitted once output has streamed.
   */
  Schema.Struct({
    type: Schema.Literal("attempt"),
    provider: Schema.String,
    model: Schema.String,
    attemptNumber: Schema.Int,
    reason: Schema.String,
    delayMs: Schema.optional(Schema.Int)
  }),
  Schema.Struct({
    type: Schema.Literal("error"),
    error: Schema.Struct({
      kind: LlmErrorKind,
      retryable: Schema.Boolean,
      provider: Schema.String,
      message: Schema.String
    })
  })
)
export type StreamChunk = typeof StreamChunk.Type

/**
 * An offline model recording: call N of a run replays `calls[N]`.
 * Lets a workflow with agents run with no key and no network.
 */
export const Cassette = Schema.Struct({
  schema_version: Schema.Literal("1.0"),
  provider: Schema.String,
  model: Schema.optional(Schema.String),
  calls: Schema.Array(Schema.Array(StreamChunk))
})
export type Cassette = typeof Cassette.Type

/**
 * The OpenAI chat completions wire as the gateway serves it: the request schema (every body is
 * decoded with it; a bad one gets a 400 naming the field), the error body every failure answers
 * with (`{"error":{"message","type","code","param"}}`), and the response and chunk shapes.
 *
 * Unknown request fields are ignored, as OpenAI-compatible servers do; fields the gateway cannot
 * honour (`n` > 1, forcing a tool) are refused rather than silently dropped.
 */
import { Either, ParseResult, Schema } from "effect"

const PositiveInt = Schema.Int.pipe(Schema.positive())

const TextPart = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String })
/** A message's content: a string, or text parts (images and audio are not routed by the gateway). */
export const Content = Schema.Union(Schema.String, Schema.Array(TextPart))
export type Content = typeof Content.Type

export const ToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("function"),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
})

export const Message = Schema.Union(
  Schema.Struct({ role: Schema.Literal("system", "developer"), content: Content, name: Schema.optional(Schema.String) }),
  Schema.Struct({ role: Schema.Literal("user"), content: Content, name: Schema.optional(Schema.String) }),
  Schema.Struct({
    role: Schema.Literal("assistant"),
    content: Schema.optional(Schema.NullOr(Content)),
    tool_calls: Schema.optional(Schema.NullOr(Schema.Array(ToolCall))),
    refusal: Schema.optional(Schema.NullOr(Schema.String)),
    name: Schema.optional(Schema.String)
  }),
  Schema.Struct({ role: Schema.Literal("tool"), content: Content, tool_call_id: Schema.String })
)
export type Message = typeof Message.Type

const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export const Tool = Schema.Struct({
  type: Schema.Literal("function"),
  function: Schema.Struct({
    name: Schema.String.pipe(Schema.minLength(1)),
    description: Schema.optional(Schema.String),
    parameters: Schema.optional(JsonObject),
    strict: Schema.optional(Schema.NullOr(Schema.Boolean))
  })
})

export const ResponseFormat = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json_object") }),
  Schema.Struct({
    type: Schema.Literal("json_schema"),
    json_schema: Schema.Struct({
      name: Schema.String,
      description: Schema.optional(Schema.String),
      schema: Schema.optional(JsonObject),
      strict: Schema.optional(Schema.NullOr(Schema.Boolean))
    })
  })
)

export const ToolChoice = Schema.Union(
  Schema.Literal("none", "auto", "required"),
  Schema.Struct({ type: Schema.Literal("function"), function: Schema.Struct({ name: Schema.String }) })
)

export const ChatCompletionRequest = Schema.Struct({
  model: Schema.String.pipe(Schema.minLength(1)),
  messages: Schema.NonEmptyArray(Message),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
  stream_options: Schema.optional(Schema.NullOr(Schema.Struct({ include_usage: Schema.optional(Schema.NullOr(Schema.Boolean)) }))),
  tools: Schema.optional(Schema.NullOr(Schema.Array(Tool))),
  tool_choice: Schema.optional(Schema.NullOr(ToolChoice)),
  response_format: Schema.optional(Schema.NullOr(ResponseFormat)),
  max_tokens: Schema.optional(Schema.NullOr(PositiveInt)),
  max_completion_tokens: Schema.optional(Schema.NullOr(PositiveInt)),
  temperature: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.between(0, 2)))),
  stop: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Array(Schema.String).pipe(Schema.maxItems(4))))),
  reasoning_effort: Schema.optional(Schema.NullOr(Schema.Literal("minimal", "low", "medium", "high"))),
  n: Schema.optional(Schema.NullOr(PositiveInt))
})
export type ChatCompletionRequest = typeof ChatCompletionRequest.Type

// ---------------------------------------------------------------------------
// Errors

/** One failure as the gateway answers it: HTTP status, headers, and OpenAI's error body. */
export interface ApiFailure {
  readonly status: number
  readonly message: string
  readonly type: string
  readonly code: string | null
  readonly param: string | null
  readonly headers?: Readonly<Record<string, string>> | undefined
}

export const failure = (
  status: number,
  type: string,
  code: string | null,
  message: string,
  param: string | null = null,
  headers?: Readonly<Record<string, string>>
): ApiFailure => ({ status, type, code, message, param, headers })

export const errorBody = (f: Pick<ApiFailure, "message" | "type" | "code" | "param">) => ({
  error: { message: f.message, type: f.type, code: f.code, param: f.param }
})

/** `messages[0].content` from a parse issue's path. */
const paramOf = (path: ReadonlyArray<PropertyKey>): string | null => {
  let out = ""
  for (const segment of path) {
    out += typeof segment === "number" ? `[${segment}]` : out === "" ? String(segment) : `.${String(segment)}`
  }
  return out === "" ? null : out
}

const decodeRequest = Schema.decodeUnknownEither(ChatCompletionRequest, { errors: "first" })

/** The body (already JSON-parsed) as a request, or a 400 naming the first field that is wrong. */
export const parseRequest = (body: unknown): Either.Either<ChatCompletionRequest, ApiFailure> =>
  Either.mapLeft(decodeRequest(body), (error) => {
    const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
    const param = issue === undefined ? null : paramOf(issue.path)
    return failure(
      400,
      "invalid_request_error",
      "invalid_value",
      `invalid request body${param === null ? "" : ` at ${param}`}: ${issue?.message ?? "not a chat completion request"}`,
      param
    )
  })

// ---------------------------------------------------------------------------
// Responses

export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter"

export interface UsageBody {
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly total_tokens: number
  readonly prompt_tokens_details?: { readonly cached_tokens: number }
  readonly completion_tokens_details?: { readonly reasoning_tokens: number }
}

export interface ToolCallBody {
  readonly id: string
  readonly type: "function"
  readonly function: { readonly name: string; readonly arguments: string }
}

export const usageBody = (usage: {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly cacheReadTokens?: number | undefined
  readonly reasoningTokens?: number | undefined
}): UsageBody => ({
  prompt_tokens: usage.inputTokens,
  completion_tokens: usage.outputTokens,
  total_tokens: usage.inputTokens + usage.outputTokens,
  ...(usage.cacheReadTokens !== undefined ? { prompt_tokens_details: { cached_tokens: usage.cacheReadTokens } } : {}),
  ...(usage.reasoningTokens !== undefined ? { completion_tokens_details: { reasoning_tokens: usage.reasoningTokens } } : {})
})

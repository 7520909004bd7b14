/**
 * The Relavium workflow format, `schema_version: '1.0'`, as Effect Schemas.
 *
 * Decode with `onExcessProperty: "error"` (see WorkflowYaml) so that every object
 * is strict: an unknown or misspelt key is rejected with its path.
 */
import { Schema } from "effect"
import { KebabId } from "./Ids.js"
import {
  boundedNonEmpty,
  boundedString,
  MAX_DESCRIPTION_LENGTH,
  MAX_ID_LENGTH,
  MAX_LABEL_LENGTH,
  MAX_NAME_LENGTH,
  MAX_PATH_LENGTH,
  MAX_TEXT_LENGTH,
  tooLong
} from "./Limits.js"
import { parse as parseCommandPattern } from "./CommandPattern.js"

// Every string has a length limit (see Limits.ts), so that no field can grow without bound.
const Name = boundedNonEmpty(MAX_NAME_LENGTH)
const Label = boundedString(MAX_LABEL_LENGTH)
const NonEmptyLabel = boundedNonEmpty(MAX_LABEL_LENGTH)
const PathLike = boundedNonEmpty(MAX_PATH_LENGTH)
const Description = boundedString(MAX_DESCRIPTION_LENGTH)
const Text = boundedString(MAX_TEXT_LENGTH)
const NonEmptyText = boundedNonEmpty(MAX_TEXT_LENGTH)
const PositiveInt = Schema.Int.pipe(Schema.positive({ message: () => "must be a positive integer" }))
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative({ message: () => "must be a non-negative integer" }))
const InterpolationName = Schema.String.pipe(
  Schema.maxLength(MAX_NAME_LENGTH, tooLong(MAX_NAME_LENGTH)),
  Schema.pattern(/^[A-Za-z0-9_-]+$/, { message: () => "must contain only letters, digits, '_' or '-'" })
)
const Temperature = Schema.Number.pipe(Schema.between(0, 2, { message: () => "must be between 0 and 2" }))
const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

// ---------------------------------------------------------------------------
// Triggers, inputs, context, tools, budget
// ---------------------------------------------------------------------------

export const Trigger = Schema.Union(
  Schema.Struct({ type: Schema.Literal("manual") }),
  Schema.Struct({
    type: Schema.Literal("webhook"),
    webhook: Schema.Struct({ path: PathLike, secret_env: Name })
  }),
  Schema.Struct({ type: Schema.Literal("schedule"), schedule: NonEmptyLabel }),
  Schema.Struct({
    type: Schema.Literal("file_change"),
    file_change: Schema.Struct({ glob: PathLike, debounce_ms: NonNegativeInt })
  }),
  Schema.Struct({ type: Schema.Literal("mcp_call") })
)
export type Trigger = typeof Trigger.Type

export const InputType = Schema.Literal("string", "number", "boolean", "file_path", "code_diff", "secret")
export type InputType = typeof InputType.Type

export const InputValidation = Schema.Struct({
  format: Schema.optional(NonEmptyLabel),
  pattern: Schema.optional(PathLike),
  enum: Schema.optional(Schema.Array(Schema.Unknown)),
  min: Schema.optional(Schema.Number),
  max: Schema.optional(Schema.Number),
  min_length: Schema.optional(NonNegativeInt),
  max_length: Schema.optional(NonNegativeInt)
})
export type InputValidation = typeof InputValidation.Type

export const WorkflowInput = Schema.Struct({
  name: InterpolationName,
  type: InputType,
  required: Schema.optional(Schema.Boolean),
  default: Schema.optional(Schema.Unknown),
  description: Schema.optional(Description),
  validation: Schema.optional(InputValidation)
})
export type WorkflowInput = typeof WorkflowInput.Type

export const ContextEntry = Schema.Struct({ key: InterpolationName, value: Text })
export type ContextEntry = typeof ContextEntry.Type

/** An allowedCommandGlobs entry: a command pattern (docs/command-policy.md), checked when the workflow is validated. */
const CommandPatternSource = (exact: boolean) =>
  PathLike.pipe(
    Schema.filter((source) => {
      const parsed = parseCommandPattern(source, { exact })
      return parsed._tag === "Left" ? `'${source}' is not a valid command pattern: ${parsed.left}` : undefined
    })
  )

export const ToolPolicy = Schema.Struct({
  allowedCommands: Schema.optional(Schema.Array(CommandPatternSource(true))),
  allowedCommandGlobs: Schema.optional(Schema.Array(CommandPatternSource(false))),
  allowedDomains: Schema.optional(Schema.Array(PathLike))
})
export type ToolPolicy = typeof ToolPolicy.Type

export const OnExceed = Schema.Literal("fail", "pause_for_approval", "warn")
export const Budget = Schema.Struct({ max_cost_microcents: PositiveInt, on_exceed: OnExceed })
export type Budget = typeof Budget.Type

// ---------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------

export const ProviderName = Schema.Literal("anthropic", "openai", "gemini", "deepseek", "openai-compatible")
export type ProviderName = typeof ProviderName.Type

export const RetryOn = Schema.Literal("provider_rate_limit", "provider_unavailable", "tool_failed", "sandbox_error")
export type RetryOn = typeof RetryOn.Type

export const RetryPolicy = Schema.Struct({
  max: PositiveInt,
  backoff: Schema.Literal("linear", "exponential"),
  backoff_ms: Schema.optional(NonNegativeInt),
  retry_on: Schema.optional(Schema.Array(RetryOn))
})
export type RetryPolicy = typeof RetryPolicy.Type

export const FallbackEntry = Schema.Struct({
  model: NonEmptyLabel,
  provider: ProviderName,
  max_attempts: Schema.optional(PositiveInt)
})
export type FallbackEntry = typeof FallbackEntry.Type

export const McpServerRef = Schema.Struct({
  ref: Name,
  tools_allowlist: Schema.optional(Schema.Array(Name))
})
export const McpServerInline = Schema.Struct({
  id: KebabId,
  transport: Schema.Literal("stdio", "http", "websocket", "sse"),
  command: Schema.optional(PathLike),
  args: Schema.optional(Schema.Array(boundedString(MAX_PATH_LENGTH))),
  env: Schema.optional(Schema.Record({ key: Name, value: boundedString(MAX_PATH_LENGTH) })),
  url: Schema.optional(PathLike),
  allow_local_endpoint: Schema.optional(Schema.Boolean),
  tools_allowlist: Schema.optional(Schema.Array(Name))
})
export const McpServer = Schema.Union(McpServerRef, McpServerInline)
export type McpServer = typeof McpServer.Type

export const Memory = Schema.Union(
  Schema.Literal("none", "summary"),
  Schema.Struct({ window: Schema.Struct({ window_size: PositiveInt }) })
)

export const ReasoningEffort = Schema.Literal("off", "low", "medium", "high", "max")
export type ReasoningEffort = typeof ReasoningEffort.Type

export const Agent = Schema.Struct({
  id: KebabId,
  name: Schema.optional(Label),
  description: Schema.optional(Description),
  model: NonEmptyLabel,
  provider: ProviderName,
  system_prompt: Text,
  temperature: Schema.optional(Temperature),
  max_tokens: Schema.optional(PositiveInt),
  reasoning_effort: Schema.optional(ReasoningEffort),
  input_schema: Schema.optional(JsonObject),
  output_schema: Schema.optional(JsonObject),
  tools: Schema.optional(Schema.Array(Name)),
  mcp_servers: Schema.optional(Schema.Array(McpServer)),
  memory: Schema.optional(Memory),
  retry: Schema.optional(RetryPolicy),
  fallback_chain: Schema.optional(Schema.Array(FallbackEntry))
})
export type Agent = typeof Agent.Type

export const AgentRef = Schema.Struct({ $ref: PathLike })
export type AgentRef = typeof AgentRef.Type

// ---------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------

export const ExpressionType = Schema.Literal("js")

export const SaveTo = PathLike.pipe(
  Schema.filter((p) => !/^([/\\]|[A-Za-z]:[\\/])/.test(p) || "save_to must be a relative path"),
  Schema.filter((p) => !p.split(/[\\/]/).includes("..") || "save_to must not contain a '..' segment"),
  Schema.filter(
    (p) => !p.replace(/\{\{\s*run\.id\s*\}\}/g, "").includes("{{") || "save_to may interpolate only {{ run.id }}"
  )
)

export const InputNode = Schema.Struct({
  id: KebabId,
  type: Schema.Literal("input"),
  label: Schema.optional(Label)
})

export const AgentNode = Schema.Struct({
  id: KebabId,
  type: Schema.Literal("agent"),
  agent_ref: KebabId,
  system_prompt_append: Schema.optional(Text),
  prompt_template: Schema.optional(Text),
  tools: Schema.optional(Schema.Array(Name)),
  model: Schema.optional(NonEmptyLabel),
  temperature: Schema.optional(Temperature),
  max_tokens: Schema.optional(PositiveInt),
  output_schema: Schema.optional(JsonObject),
  output_modalities: Schema.optional(
    Schema.NonEmptyArray(Schema.Literal("text", "image", "audio", "video"))
  ),
  count: Schema.optional(PositiveInt),
  duration_seconds: Schema.optional(Schema.Number.pipe(Schema.positive())),
  timeout_ms: Schema.optional(PositiveInt),
  retry: Schema.optional(RetryPolicy)
})

export const GateType = Schema.Literal("approval", "input", "review")
export type GateType = typeof GateType.Type
export const TimeoutAction = Schema.Literal("reject", "approve")
export type TimeoutAction = typeof TimeoutAction.Type

export const HumanGateNode = Schema.Struct({
  id: KebabId,
  type: Schema.Literal("human_gate"),
  gate_type: GateType,
  assignee: Schema.optional(boundedString(MAX_PATH_LENGTH)),
  message_template: Schema.optional(Text),
  timeout_ms: Schema.optional(PositiveInt),
  timeout_action: Schema.optional(TimeoutAction)
})

export const BranchValue = Schema.Union(Schema.Boolean, Label, Schema.Number)
export type BranchValue = typeof BranchValue.Type

export const ConditionNode = Schema.Struct({
  id: KebabId,
  type: Schema.Literal("condition"),
  expression: NonEmptyText,
  expression_type: Schema.optional(ExpressionType),
  branches: Schema.NonEmptyArray(Schema.Struct({ when: BranchValue, target_node: KebabId })),
  default: Schema.optional(KebabId),
  retry: Schema.optional(RetryPolicy)
})

export const TransformNode = Schema.Struct({
  id: KebabId,
  type: Schema.Literal("transform"),
  transform: NonEmptyText,
  expression_type: Schema.optional(ExpressionType),
  output_schema: Schema.optional(JsonObject),
  retry: Schema.optional(RetryPolicy)
})

export const ParallelNode = Schema.Struct({
  id: KebabId,
  type: Schema.Literal("parallel"),
  parallel_of: Schema.NonEmptyArray(KebabId)
})

export const MergeStrategy = Schema.Literal("concat", "object_merge", "first", "custom")
export type MergeStrategy = typeof MergeStrategy.Type

export const MergeNode = Schema.Struct({
  id: KebabId,
  type: Schema.Literal("merge"),
  merge_strategy: MergeStrategy,
  merge_fn: Schema.optional(NonEmptyText),
  retry: Schema.optional(RetryPolicy)
})

export const OutputNode = Schema.Struct({
  id: KebabId,
  type: Schema.Literal("output"),
  output_format: Schema.optional(Label),
  save_to: Schema.optional(SaveTo)
})

export const WorkflowNode = Schema.Union(
  InputNode,
  AgentNode,
  HumanGateNode,
  ConditionNode,
  TransformNode,
  ParallelNode,
  MergeNode,
  OutputNode
)
export type WorkflowNode = typeof WorkflowNode.Type
export type NodeType = WorkflowNode["type"]
export type NodeOf<T extends NodeType> = Extract<WorkflowNode, { readonly type: T }>

/** `node-id` or `node-id:handle`, where a handle is a branch value. */
const MAX_EDGE_FROM_LENGTH = MAX_ID_LENGTH + 1 + MAX_LABEL_LENGTH

export const Edge = Schema.Struct({
  from: Schema.String.pipe(
    Schema.maxLength(MAX_EDGE_FROM_LENGTH, tooLong(MAX_EDGE_FROM_LENGTH)),
    Schema.pattern(/^[a-z0-9]+(?:-[a-z0-9]+)*(?::.+)?$/, {
      message: () => "must be a node id, optionally followed by ':handle'"
    })
  ),
  to: KebabId,
  label: Schema.optional(Label),
  condition: Schema.optional(Text)
})
export type Edge = typeof Edge.Type

// ---------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------

export const WorkflowSpec = Schema.Struct({
  id: KebabId,
  version: Schema.optional(Label),
  name: Schema.optional(Label),
  description: Schema.optional(Description),
  tags: Schema.optional(Schema.Array(Label)),
  metadata: Schema.optional(JsonObject),
  trigger: Schema.optional(Trigger),
  inputs: Schema.optional(Schema.Array(WorkflowInput)),
  context: Schema.optional(Schema.Array(ContextEntry)),
  agents: Schema.optional(Schema.Array(Schema.Union(Agent, AgentRef))),
  tools: Schema.optional(ToolPolicy),
  budget: Schema.optional(Budget),
  timeout_ms: Schema.optional(PositiveInt),
  max_parallel: Schema.optional(PositiveInt),
  nodes: Schema.NonEmptyArray(WorkflowNode),
  edges: Schema.Array(Edge)
})
export type WorkflowSpec = typeof WorkflowSpec.Type

export const WorkflowDocument = Schema.Struct({
  schema_version: Schema.Literal("1.0"),
  workflow: WorkflowSpec
})
export type WorkflowDocument = typeof WorkflowDocument.Type

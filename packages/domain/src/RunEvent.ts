/**
 * The canonical run event union: the same on every surface and transport
 * (in-process, NATS, SSE, CLI `--json`). Every event carries `runId`, a per-run
 * `sequenceNumber` (from 0, +1, no gaps), an ISO-8601 `timestamp` and a `type`.
 */
import { Schema } from "effect"
import { LlmMessage } from "./Llm.js"
import { RunErrorInfo } from "./RunError.js"
import { GateType } from "./Run.js"

const Int = Schema.Int.pipe(Schema.nonNegative())

const envelope = {
  runId: Schema.String,
  sequenceNumber: Int,
  timestamp: Schema.String
}

export const ExecutionMode = Schema.Literal("local", "cloud", "managed")
export type ExecutionMode = typeof ExecutionMode.Type

export const TokensUsed = Schema.Struct({
  input: Int,
  output: Int,
  model: Schema.optional(Schema.String)
})
export type TokensUsed = typeof TokensUsed.Type

export const SkipReason = Schema.Literal("branch_not_taken", "upstream_unreachable")
export type SkipReason = typeof SkipReason.Type

export const GateDecision = Schema.Literal("approved", "rejected", "input_provided")
export type GateDecision = typeof GateDecision.Type

const ev = <T extends string, F extends Schema.Struct.Fields>(type: T, fields: F) =>
  Schema.Struct({ type: Schema.Literal(type), ...envelope, ...fields })

/** What started a run other than a person: a webhook delivery or a schedule's fire. */
export const RunTrigger = Schema.Struct({
  triggerId: Schema.String,
  kind: Schema.Literal("webhook", "schedule"),
  /** The webhook delivery id or the schedule's fire time (ISO). */
  deliveryId: Schema.optional(Schema.String)
})
export type RunTrigger = typeof RunTrigger.Type

/** The run this one was forked from (`runs fork`) or continues (`runs retry`). */
export const RunLineage = Schema.Struct({
  runId: Schema.String,
  /** The node the new run executes again, with everything downstream of it (fork only). */
  nodeId: Schema.optional(Schema.String),
  kind: Schema.Literal("fork", "retry")
})
export type RunLineage = typeof RunLineage.Type

export const RunStarted = ev("run:started", {
  workflowId: Schema.String,
  inputs: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  executionMode: ExecutionMode,
  trigger: Schema.optional(RunTrigger),
  forkedFrom: Schema.optional(RunLineage)
})
export const NodeStarted = ev("node:started", {
  nodeId: Schema.String,
  nodeType: Schema.String,
  attemptNumber: Schema.optional(Int)
})
export const AgentToken = ev("agent:token", {
  nodeId: Schema.String,
  token: Schema.String,
  model: Schema.String,
  attemptNumber: Schema.optional(Int)
})
export const AgentReasoning = ev("agent:reasoning", {
  nodeId: Schema.String,
  text: Schema.String,
  model: Schema.String,
  attemptNumber: Schema.optional(Int)
})
/** A model call is retried or switched to the next provider of the fallback chain. */
export const AgentAttempt = ev("agent:attempt", {
  nodeId: Schema.String,
  provider: Schema.String,
  model: Schema.String,
  attemptNumber: Int,
  reason: Schema.String,
  delayMs: Schema.optional(Int)
})
export const AgentToolCall = ev("agent:tool_call", {
  nodeId: Schema.String,
  model: Schema.String,
  toolId: Schema.String,
  toolName: Schema.optional(Schema.String),
  toolInput: Schema.Unknown,
  attemptNumber: Schema.optional(Int)
})
export const AgentToolResult = ev("agent:tool_result", {
  nodeId: Schema.String,
  toolId: Schema.String,
  success: Schema.Boolean,
  outputSummary: Schema.String,
  errorCode: Schema.optional(Schema.String),
  attemptNumber: Schema.optional(Int)
})
/**
 * Output a tool prints while it runs (run_command), forwarded before its `agent:tool_result`:
 * coalesced (about one event per 50 ms or 8 KiB per stream), at most 50 KiB per call, known
 * secrets scrubbed. Stored like every event, so a follower sees it live and a late reader in order.
 */
export const ToolOutput = ev("tool:output", {
  nodeId: Schema.String,
  toolCallId: Schema.String,
  stream: Schema.Literal("stdout", "stderr"),
  text: Schema.String,
  attemptNumber: Schema.optional(Int)
})
/**
 * The checkpoint of one completed agent turn (a model call that asked for tools, and their
 * results): an agent node that runs again after a crash, a retry or a budget gate continues
 * after its last checkpoint instead of paying for its earlier model calls again.
 */
export const AgentTurnCompleted = ev("agent:turn_completed", {
  nodeId: Schema.String,
  turn: Int,
  /** What the turn added to the conversation: the assistant's message and the tool results. */
  messages: Schema.Array(LlmMessage),
  /** Tokens of the node's model calls so far, this turn included. */
  inputTokens: Int,
  outputTokens: Int,
  attemptNumber: Schema.optional(Int)
})
export const AgentApprovalRequested = ev("agent:approval_requested", {
  nodeId: Schema.String,
  toolId: Schema.String,
  action: Schema.String,
  preview: Schema.String
})
export const AgentFilePatchProposed = ev("agent:file_patch_proposed", {
  nodeId: Schema.String,
  patches: Schema.Array(Schema.Unknown)
})
export const CostUpdated = ev("cost:updated", {
  nodeId: Schema.String,
  model: Schema.String,
  inputTokens: Int,
  outputTokens: Int,
  costMicrocents: Int,
  cumulativeCostMicrocents: Int,
  priced: Schema.optional(Schema.Boolean),
  attemptNumber: Schema.optional(Int)
})
export const NodeCompleted = ev("node:completed", {
  nodeId: Schema.String,
  output: Schema.Unknown,
  tokensUsed: TokensUsed,
  durationMs: Int,
  selected: Schema.optional(Schema.Array(Schema.String)),
  cumulativeCostMicrocents: Schema.optional(Int),
  attemptNumber: Schema.optional(Int),
  /**
   * In a forked or retried run: the run whose recorded output this is. The node did not run again
   * (no model call, no tool call); `tokensUsed` and `durationMs` are 0.
   */
  reusedFrom: Schema.optional(Schema.String)
})
export const NodeFailed = ev("node:failed", {
  nodeId: Schema.String,
  error: RunErrorInfo,
  attemptNumber: Schema.optional(Int)
})
export const NodeSkipped = ev("node:skipped", {
  nodeId: Schema.String,
  reason: SkipReason
})
export const NodeRetrying = ev("node:retrying", {
  nodeId: Schema.String,
  attemptNumber: Int,
  error: RunErrorInfo,
  delayMs: Int,
  /** The attempt did not fail: the process running it stopped. The node's retry budget starts afresh. */
  interrupted: Schema.optional(Schema.Boolean)
})
export const MediaJobSubmitted = ev("media_job:submitted", {
  nodeId: Schema.String,
  jobId: Schema.String,
  provider: Schema.String,
  model: Schema.String,
  modality: Schema.String,
  startedAt: Schema.String,
  deadlineAt: Schema.String
})
export const HumanGatePaused = ev("human_gate:paused", {
  nodeId: Schema.String,
  gateId: Schema.String,
  gateType: GateType,
  message: Schema.String,
  assignee: Schema.optional(Schema.String),
  timeoutMs: Schema.optional(Int),
  timeoutAction: Schema.optional(Schema.Literal("reject", "approve")),
  expiresAt: Schema.optional(Schema.String)
})
export const HumanGateResumed = ev("human_gate:resumed", {
  nodeId: Schema.String,
  gateId: Schema.optional(Schema.String),
  decision: GateDecision,
  decidedBy: Schema.String,
  payload: Schema.optional(Schema.Unknown),
  comment: Schema.optional(Schema.String)
})
export const RunPaused = ev("run:paused", {
  pendingGateCount: Int,
  gateIds: Schema.Array(Schema.String)
})
export const RunCompleted = ev("run:completed", {
  outputs: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  totalTokensUsed: Schema.Struct({ input: Int, output: Int }),
  totalCostMicrocents: Int,
  durationMs: Int
})
export const RunFailed = ev("run:failed", {
  error: RunErrorInfo,
  partialOutputs: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})
export const RunCancelled = ev("run:cancelled", {
  reason: Schema.optional(Schema.String)
})
export const RunTimeout = ev("run:timeout", {
  elapsedMs: Int,
  timeoutMs: Int
})
export const BudgetWarning = ev("budget:warning", {
  spentMicrocents: Int,
  limitMicrocents: Int,
  thresholdPct: Int
})
export const BudgetPaused = ev("budget:paused", {
  nodeId: Schema.String,
  spentMicrocents: Int,
  limitMicrocents: Int,
  gateId: Schema.String
})

export const RunEvent = Schema.Union(
  RunStarted,
  NodeStarted,
  AgentToken,
  AgentReasoning,
  AgentAttempt,
  AgentToolCall,
  AgentToolResult,
  ToolOutput,
  AgentTurnCompleted,
  AgentApprovalRequested,
  AgentFilePatchProposed,
  CostUpdated,
  NodeCompleted,
  NodeFailed,
  NodeSkipped,
  NodeRetrying,
  MediaJobSubmitted,
  HumanGatePaused,
  HumanGateResumed,
  RunPaused,
  RunCompleted,
  RunFailed,
  RunCancelled,
  RunTimeout,
  BudgetWarning,
  BudgetPaused
)
export type RunEvent = typeof RunEvent.Type
/** Every run event type, in declaration order (an SSE client listens for each by name). */
export const runEventTypes: ReadonlyArray<RunEvent["type"]> = RunEvent.members.map((member) => member.fields.type.literals[0])
export type RunEventType = RunEvent["type"]
export type RunEventOf<T extends RunEventType> = Extract<RunEvent, { readonly type: T }>

/** An event before the store numbers it: everything but `sequenceNumber`. */
export type RunEventDraft = RunEvent extends infer E ? (E extends RunEvent ? Omit<E, "sequenceNumber"> : never) : never

export const TerminalEventTypes: ReadonlySet<RunEventType> = new Set([
  "run:completed",
  "run:failed",
  "run:cancelled"
])
export const isTerminal = (event: { readonly type: string }): boolean =>
  TerminalEventTypes.has(event.type as RunEventType)

export const encodeRunEventJson = (event: RunEvent): string => JSON.stringify(event)

/**
 * The Relavium HTTP API as data: every route, its path, query, headers, body,
 * responses and errors, described with `HttpApi` so that the server, the
 * OpenAPI document and typed clients all come from this one definition.
 *
 * Every route but `GET /health` requires `Authorization: Bearer <token>`, and
 * the token's role must allow the route's action (docs/permissions.md).
 *
 * `RelaviumApi` is what every deployment serves; `MonolithApi` adds the chat
 * routes (`ChatsGroup`), which work on directories of the machine the
 * monolith runs on.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { isAbsolute } from "node:path"
import { ApprovalMode, Conversation } from "@relavium/chat"
import { Chat, Run, RunError, RunEvent } from "@relavium/domain"
import { CurrentPrincipal } from "@relavium/ports"
import { notifyGroups } from "./NotifyApi.js"
import { tenancyGroups } from "./TenancyApi.js"
import { ForkRequest, forkDescription, RetryRequest, retryDescription } from "./TimeTravelApi.js"
import { triggerGroups } from "./TriggersApi.js"

// ---------------------------------------------------------------------------
// Errors (each carries its HTTP status)
// ---------------------------------------------------------------------------

/** Where a problem is: a body/query path, and for YAML the line and column. */
export const Issue = Schema.Struct({
  path: Schema.String,
  line: Schema.optional(Schema.Number),
  column: Schema.optional(Schema.Number),
  message: Schema.String
})
export type Issue = typeof Issue.Type

export class BadRequest extends Schema.TaggedError<BadRequest>()(
  "BadRequest",
  { message: Schema.String, issues: Schema.optional(Schema.Array(Issue)) },
  HttpApiSchema.annotations({ status: 400 })
) {}

export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

/** A known caller whose role does not allow the action (see docs/permissions.md). */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class Conflict extends Schema.TaggedError<Conflict>()(
  "Conflict",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

export class InternalError extends Schema.TaggedError<InternalError>()(
  "InternalError",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 500 })
) {}

export class NotReady extends Schema.TaggedError<NotReady>()(
  "NotReady",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

// ---------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------

/**
 * Who calls, and whether they may: every group but `health` passes it. It provides the caller
 * (`CurrentPrincipal`: org, role, actor) and refuses with 403 (`Forbidden`) a role the permission
 * table does not allow the route's action (`routeActions` in Routes.ts), before the request's body
 * is decoded or any store is read. The token itself is checked earlier, by HttpGuard.ts (401).
 * Implemented in Auth.ts.
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("@relavium/server/Authorization", {
  failure: Schema.Union(Unauthorized, Forbidden),
  provides: CurrentPrincipal,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

const Id = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

export const WorkflowInfo = Schema.Struct({
  workflowId: Schema.String,
  name: Schema.String,
  version: Schema.Number,
  file: Schema.String,
  createdAt: Schema.String
})

const YamlUpload = Schema.Struct({
  /** The workflow's YAML source. */
  yaml: Schema.String,
  /** A file name for error messages (default `upload.relavium.yaml`). */
  file: Schema.optional(Schema.String.pipe(Schema.maxLength(500)))
})

export const ValidationResult = Schema.Struct({
  valid: Schema.Boolean,
  workflow: Schema.optional(Schema.String),
  nodes: Schema.optional(Schema.Number),
  edges: Schema.optional(Schema.Number),
  issues: Schema.optional(Schema.Array(Issue))
})

export const RunStatus = Run.RunStatus

export const RunRecord = Run.RunRecord

export const RunPage = Schema.Struct({
  runs: Schema.Array(RunRecord),
  /** Pass as `offset` for the next page; absent on the last page. */
  nextOffset: Schema.optional(Schema.Number)
})

export const Gate = Run.PendingGate

export const RunSummary = Schema.Struct({
  runId: Schema.String,
  workflowId: Schema.String,
  workflowName: Schema.String,
  status: RunStatus,
  startedAt: Schema.optional(Schema.String),
  endedAt: Schema.optional(Schema.String),
  inputs: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  nodes: Schema.Array(
    Schema.Struct({
      nodeId: Schema.String,
      nodeType: Schema.String,
      status: Schema.Literal("running", "waiting", "completed", "failed", "skipped"),
      attempt: Schema.Number,
      durationMs: Schema.optional(Schema.Number),
      error: Schema.optional(RunError.RunErrorInfo),
      skipReason: Schema.optional(Schema.String),
      /** The run whose recorded output the node reused (a forked or retried run). */
      reusedFrom: Schema.optional(Schema.String)
    })
  ),
  pendingGates: Schema.Array(Gate),
  outputs: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  error: Schema.optional(RunError.RunErrorInfo),
  tokens: Schema.Struct({ input: Schema.Number, output: Schema.Number }),
  costMicrocents: Schema.Number,
  lastSequenceNumber: Schema.Number,
  /** The run this one was forked from or retries. */
  forkedFrom: Schema.optional(RunEvent.RunLineage)
})

export const RunRef = Schema.Struct({ runId: Schema.String, status: RunStatus })

export const GateDecided = Schema.Struct({
  runId: Schema.String,
  gateId: Schema.String,
  decision: Schema.Literal("approved", "rejected", "input_provided")
})

export const ModelInfo = Schema.Struct({
  provider: Schema.String,
  model: Schema.String,
  name: Schema.String,
  /** Unknown (null) for a model only the user's price file names. */
  contextWindowTokens: Schema.NullOr(Schema.Number),
  inputPerMTokUsd: Schema.Number,
  outputPerMTokUsd: Schema.Number,
  cachedInputPerMTokUsd: Schema.NullOr(Schema.Number),
  /** Where the price comes from: the list shipped with Relavium, or the user's `prices.json` (for models the list does not know); as in `relavium models --json`. */
  source: Schema.Literal("shipped", "user")
})

const ProviderName = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9._-]{0,63}$/, { message: () => "a provider name: lower-case letters, digits, '.', '_' and '-'" })
)

// ---------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------

const runIdPath = Schema.Struct({ runId: Id })
const workflowIdPath = Schema.Struct({ workflowId: Id })
const gatePath = Schema.Struct({ runId: Id, gateId: Id })
const Comment = Schema.optional(Schema.String.pipe(Schema.maxLength(10_000)))
/** An approval or rejection, with an optional note; an empty body is allowed. */
const Decision = Schema.Union(Schema.Struct({ comment: Comment }), Schema.Null)

export class HealthGroup extends HttpApiGroup.make("health")
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(Schema.Struct({ status: Schema.Literal("ok") })))
  .annotate(OpenApi.Description, "Liveness; the only route that needs no token") {}

export class SystemGroup extends HttpApiGroup.make("system")
  .add(HttpApiEndpoint.get("ready", "/ready").addSuccess(Schema.Struct({ status: Schema.Literal("ready") })).addError(NotReady))
  .add(HttpApiEndpoint.get("models", "/models").addSuccess(Schema.Array(ModelInfo)).addError(InternalError))
  .middleware(Authorization) {}

export class WorkflowsGroup extends HttpApiGroup.make("workflows")
  .add(
    HttpApiEndpoint.post("upload", "/workflows")
      .setPayload(YamlUpload)
      .addSuccess(WorkflowInfo, { status: 201 })
      .addError(BadRequest)
  )
  .add(HttpApiEndpoint.get("list", "/workflows").addSuccess(Schema.Array(WorkflowInfo)))
  .add(HttpApiEndpoint.post("validate", "/workflows/validate").setPayload(YamlUpload).addSuccess(ValidationResult))
  .add(HttpApiEndpoint.get("get", "/workflows/:workflowId").setPath(workflowIdPath).addSuccess(WorkflowInfo).addError(NotFound))
  .add(
    HttpApiEndpoint.get("versions", "/workflows/:workflowId/versions")
      .setPath(workflowIdPath)
      .addSuccess(Schema.Array(WorkflowInfo))
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("export", "/workflows/:workflowId/export")
      .setPath(workflowIdPath)
      .addSuccess(HttpApiSchema.Text({ contentType: "application/yaml" }))
      .addError(NotFound)
      .annotate(OpenApi.Description, "The workflow's YAML with the defaults of secret inputs removed")
  )
  .addError(InternalError)
  .middleware(Authorization) {}

export class RunsGroup extends HttpApiGroup.make("runs")
  .add(
    HttpApiEndpoint.post("start", "/runs")
      .setPayload(
        Schema.Struct({
          workflowId: Id,
          inputs: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
        })
      )
      .addSuccess(RunRef, { status: 201 })
      .addError(BadRequest)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("list", "/runs")
      .setUrlParams(
        Schema.Struct({
          status: Schema.optional(RunStatus),
          limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 500))),
          offset: Schema.optional(Schema.NumberFromString.pipe(Schema.compose(NonNegativeInt)))
        })
      )
      .addSuccess(RunPage)
  )
  .add(HttpApiEndpoint.get("get", "/runs/:runId").setPath(runIdPath).addSuccess(RunSummary).addError(NotFound))
  .add(
    HttpApiEndpoint.post("cancel", "/runs/:runId/cancel")
      .setPath(runIdPath)
      .setUrlParams(Schema.Struct({ reason: Schema.optional(Schema.String.pipe(Schema.maxLength(1000))) }))
      .addSuccess(RunRef)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.post("resume", "/runs/:runId/resume")
      .setPath(runIdPath)
      .addSuccess(RunRef)
      .addError(NotFound)
      .annotate(OpenApi.Description, "Continue a run whose process died (completed nodes never run again)")
  )
  .add(
    HttpApiEndpoint.post("fork", "/runs/:runId/fork").setPath(runIdPath).setPayload(ForkRequest).addSuccess(RunRef, { status: 201 })
      .addError(NotFound).annotate(OpenApi.Description, forkDescription)
  )
  .add(
    HttpApiEndpoint.post("retry", "/runs/:runId/retry").setPath(runIdPath).setPayload(RetryRequest).addSuccess(RunRef, { status: 201 })
      .addError(NotFound).annotate(OpenApi.Description, retryDescription)
  )
  .add(
    HttpApiEndpoint.get("events", "/runs/:runId/events")
      .setPath(runIdPath)
      .setUrlParams(Schema.Struct({ after: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.greaterThanOrEqualTo(-1))) }))
      .setHeaders(
        Schema.Struct({ "last-event-id": Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.greaterThanOrEqualTo(-1))) })
      )
      .addSuccess(HttpApiSchema.Text({ contentType: "text/event-stream" }))
      .addError(NotFound)
      .annotate(
        OpenApi.Description,
        "Server-Sent Events: `id` is the sequence number, `event` the type, `data` the JSON event. Resumes after `Last-Event-ID` (else `?after=`), then follows live; ends after the terminal event"
      )
  )
  .addError(BadRequest)
  .addError(Conflict)
  .addError(InternalError)
  .middleware(Authorization) {}

export class GatesGroup extends HttpApiGroup.make("gates")
  .add(
    HttpApiEndpoint.get("list", "/gates")
      .setUrlParams(Schema.Struct({ runId: Schema.optional(Id) }))
      .addSuccess(Schema.Array(Gate))
  )
  .add(HttpApiEndpoint.post("approve", "/runs/:runId/gates/:gateId/approve").setPath(gatePath).setPayload(Decision).addSuccess(GateDecided))
  .add(HttpApiEndpoint.post("reject", "/runs/:runId/gates/:gateId/reject").setPath(gatePath).setPayload(Decision).addSuccess(GateDecided))
  .add(
    HttpApiEndpoint.post("input", "/runs/:runId/gates/:gateId/input")
      .setPath(gatePath)
      .setPayload(Schema.Struct({ value: Schema.Unknown, comment: Comment }))
      .addSuccess(GateDecided)
  )
  .addError(BadRequest)
  .addError(NotFound)
  .addError(Conflict)
  .addError(InternalError)
  .middleware(Authorization) {}

export class KeysGroup extends HttpApiGroup.make("keys")
  .add(HttpApiEndpoint.get("list", "/keys").addSuccess(Schema.Struct({ providers: Schema.Array(Schema.String) })))
  .add(
    HttpApiEndpoint.put("set", "/keys/:provider")
      .setPath(Schema.Struct({ provider: ProviderName }))
      .setPayload(Schema.Struct({ key: Schema.Redacted(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(10_000))) }))
      .addSuccess(HttpApiSchema.NoContent)
  )
  .add(
    HttpApiEndpoint.del("remove", "/keys/:provider")
      .setPath(Schema.Struct({ provider: ProviderName }))
      .addSuccess(HttpApiSchema.NoContent)
      .addError(NotFound)
  )
  .addError(BadRequest)
  .addError(InternalError)
  .annotate(OpenApi.Description, "Provider API keys: write-only; only provider names are ever returned")
  .middleware(Authorization) {}

// ---------------------------------------------------------------------------
// Chats (the monolith only)
// ---------------------------------------------------------------------------

export const ProjectInfo = Schema.Struct({
  projectId: Schema.String,
  name: Schema.String,
  rootPath: Schema.String,
  /** The dialed-in tools daemon whose workspace the project is (its chats' tools run there). */
  daemon: Schema.optional(Schema.String),
  createdAt: Schema.String
})

/** A tools daemon's `--name`, as the gateway accepts it. */
const ProjectDaemon = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
    message: () => "a daemon name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
  })
)

export const ChatWorktree = Schema.Struct({
  worktreeId: Schema.String,
  path: Schema.String,
  branch: Schema.String,
  baseRef: Schema.optional(Schema.String),
  status: Chat.WorktreeStatus
})

export const ChatSummary = Schema.Struct({
  chatId: Schema.String,
  title: Schema.String,
  projectId: Schema.String,
  projectPath: Schema.String,
  /** The directory the chat's tools work in: the project, or its worktree. */
  workspace: Schema.String,
  worktree: Schema.optional(ChatWorktree),
  provider: Schema.String,
  model: Schema.String,
  approvalMode: ApprovalMode,
  turnStatus: Chat.TurnStatus,
  pendingApprovals: Schema.Number,
  costMicrocents: Schema.Number,
  /** Follow `/chats/{chatId}/events` with this as `Last-Event-ID` to see only what comes next. */
  lastSequenceNumber: Schema.Number,
  createdAt: Schema.String,
  updatedAt: Schema.String
})

export const PendingApproval = Chat.PendingApproval

const blockFields = { blockId: Schema.String, position: Schema.Number, createdAt: Schema.String }

export const ChatBlock = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("text"), ...blockFields, ...Conversation.TextContent.fields }),
  Schema.Struct({ kind: Schema.Literal("reasoning"), ...blockFields, ...Conversation.TextContent.fields }),
  Schema.Struct({
    kind: Schema.Literal("tool_call"),
    ...blockFields,
    toolCallId: Schema.String,
    status: Conversation.ToolCallStatus,
    ...Conversation.ToolCallContent.fields
  }),
  Schema.Struct({ kind: Schema.Literal("tool_result"), ...blockFields, toolCallId: Schema.String, ...Conversation.ToolResultContent.fields }),
  Schema.Struct({ kind: Schema.Literal("file_patch"), ...blockFields, toolCallId: Schema.String, ...Conversation.FilePatchContent.fields })
)

export const ChatMessage = Schema.Struct({
  messageId: Schema.String,
  seq: Schema.Number,
  role: Chat.MessageRole,
  status: Chat.MessageStatus,
  model: Schema.optional(Schema.String),
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  costMicrocents: Schema.Number,
  createdAt: Schema.String,
  blocks: Schema.Array(ChatBlock)
})

export const ChatUsage = Schema.Struct({
  chatId: Schema.String,
  model: Schema.String,
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  costMicrocents: Schema.Number,
  calls: Schema.Number
})

export const ChatDetail = Schema.Struct({
  ...ChatSummary.fields,
  systemPrompt: Schema.String,
  tools: Schema.Array(Schema.String),
  messages: Schema.Array(ChatMessage),
  /** Tokens and cost per model. */
  usage: Schema.Array(ChatUsage),
  pending: Schema.Array(PendingApproval)
})

/** A turn runs in the server: follow `/chats/{chatId}/events` from `afterSeq` (as `Last-Event-ID`) to see it. */
export const TurnAccepted = Schema.Struct({ chatId: Schema.String, afterSeq: Schema.Number })

export const ApprovalDecided = Schema.Struct({
  chatId: Schema.String,
  toolCallId: Schema.String,
  decision: Schema.Literal("allow", "deny"),
  /** The tool calls that still wait; the turn continues once none do. */
  pending: Schema.Array(PendingApproval),
  /** Whether this decision was the last one and the turn continues (follow its events after `afterSeq`). */
  resumed: Schema.Boolean,
  afterSeq: Schema.optional(Schema.Number)
})

const chatIdPath = Schema.Struct({ chatId: Id })
const SequenceNumber = Schema.NumberFromString.pipe(Schema.int(), Schema.greaterThanOrEqualTo(-1))
const NotBlank = Schema.String.pipe(Schema.filter((s) => s.trim() !== "" || "must not be blank"))

export class ChatsGroup extends HttpApiGroup.make("chats")
  .add(
    HttpApiEndpoint.post("createProject", "/projects")
      .setPayload(
        Schema.Struct({
          /** An absolute directory on the monolith's machine (the same directory gives the same project). */
          dir: Schema.String.pipe(
            Schema.maxLength(4096),
            Schema.filter((dir) => isAbsolute(dir) || "an absolute path of a directory on the monolith's machine")
          ),
          /**
           * The dialed-in tools daemon (its `--name`) whose workspace `dir` is: the chats' tools run
           * there, through a gateway, and `dir` (on the daemon's machine) is not checked here.
           */
          daemon: Schema.optional(ProjectDaemon)
        })
      )
      .addSuccess(ProjectInfo, { status: 201 })
  )
  .add(HttpApiEndpoint.get("listProjects", "/projects").addSuccess(Schema.Array(ProjectInfo)))
  .add(
    HttpApiEndpoint.post("create", "/chats")
      .setPayload(
        Schema.Struct({
          projectId: Id,
          /** Work in a new `git worktree` on branch `relavium/chat-<id>` (the project must be a git repository). */
          worktree: Schema.optional(Schema.Boolean),
          /** `provider/model` (default `anthropic/claude-sonnet-4`). */
          model: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
          approvalMode: Schema.optional(ApprovalMode),
          title: Schema.optional(Schema.String.pipe(Schema.maxLength(200)))
        })
      )
      .addSuccess(ChatSummary, { status: 201 })
  )
  .add(
    HttpApiEndpoint.get("list", "/chats")
      .setUrlParams(
        Schema.Struct({
          projectId: Schema.optional(Id),
          limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 500)))
        })
      )
      .addSuccess(Schema.Array(ChatSummary))
  )
  .add(HttpApiEndpoint.get("get", "/chats/:chatId").setPath(chatIdPath).addSuccess(ChatDetail))
  .add(
    HttpApiEndpoint.post("send", "/chats/:chatId/messages")
      .setPath(chatIdPath)
      .setPayload(Schema.Struct({ text: NotBlank.pipe(Schema.maxLength(200_000)) }))
      .addSuccess(TurnAccepted, { status: 202 })
      .annotate(OpenApi.Description, "Stores the message and starts the turn in the server; 409 while a tool call waits for a decision or a turn runs")
  )
  .add(
    HttpApiEndpoint.post("approve", "/chats/:chatId/approvals/:toolCallId")
      .setPath(Schema.Struct({ chatId: Id, toolCallId: Id }))
      .setPayload(Schema.Struct({ decision: Schema.Literal("allow", "deny") }))
      .addSuccess(ApprovalDecided)
      .annotate(OpenApi.Description, "Allows or denies a waiting tool call; after the last decision the turn continues (a denied call is not run, the model is told)")
  )
  .add(
    HttpApiEndpoint.post("resume", "/chats/:chatId/resume")
      .setPath(chatIdPath)
      .addSuccess(TurnAccepted, { status: 202 })
      .annotate(OpenApi.Description, "Continues a turn that was interrupted or failed; 409 when there is nothing to continue")
  )
  .add(
    HttpApiEndpoint.post("cancel", "/chats/:chatId/cancel")
      .setPath(chatIdPath)
      .addSuccess(Schema.Struct({ chatId: Schema.String, cancelled: Schema.Boolean }))
      .annotate(OpenApi.Description, "Stops the chat's running turn (the partial answer is kept); `cancelled` is false when none runs")
  )
  .add(
    HttpApiEndpoint.get("export", "/chats/:chatId/export")
      .setPath(chatIdPath)
      .setUrlParams(Schema.Struct({ format: Schema.optional(Schema.Literal("markdown", "yaml")) }))
      .addSuccess(HttpApiSchema.Text({ contentType: "text/markdown" }))
      .annotate(OpenApi.Description, "The chat as Markdown (default), or with `format=yaml` as a workflow that reproduces it (`application/yaml`)")
  )
  .add(
    HttpApiEndpoint.get("events", "/chats/:chatId/events")
      .setPath(chatIdPath)
      .setUrlParams(Schema.Struct({ after: Schema.optional(SequenceNumber) }))
      .setHeaders(Schema.Struct({ "last-event-id": Schema.optional(SequenceNumber) }))
      .addSuccess(HttpApiSchema.Text({ contentType: "text/event-stream" }))
      .annotate(
        OpenApi.Description,
        "Server-Sent Events: `id` is the chat event's `seq`, `event` its type, `data` the JSON event. Resumes after `Last-Event-ID` (else `?after=`), then follows live until the client disconnects"
      )
  )
  .addError(BadRequest)
  .addError(NotFound)
  .addError(Conflict)
  .addError(InternalError)
  .annotate(OpenApi.Description, "Coding-agent chats in project directories on the monolith's machine, with approvals and live events (SSE)")
  .middleware(Authorization) {}

/** The tenancy routes (TenancyApi.ts): the caller's org, members, API tokens, audit trail. */
export const { audit: AuditGroup, members: MembersGroup, org: OrgGroup, tokens: TokensGroup } = tenancyGroups({ Authorization, BadRequest, Conflict, Forbidden, InternalError, NotFound })

/** The trigger routes (TriggersApi.ts): webhook and schedule triggers. */
export const { triggers: TriggersGroup } = triggerGroups({ Authorization, BadRequest, Forbidden, InternalError, NotFound })
/** Notifications, the budget, usage and gate links (NotifyApi.ts). */
export const { gateLinks: GateLinksGroup, notifications: NotificationsGroup, usage: UsageGroup } = notifyGroups({ Authorization, BadRequest, Forbidden, InternalError, NotFound })

export class RelaviumApi extends HttpApi.make("relavium")
  .add(HealthGroup)
  .add(SystemGroup)
  .add(WorkflowsGroup)
  .add(RunsGroup)
  .add(GatesGroup)
  .add(KeysGroup)
  .add(OrgGroup)
  .add(MembersGroup)
  .add(TokensGroup)
  .add(AuditGroup)
  .add(TriggersGroup)
  .add(NotificationsGroup)
  .add(UsageGroup)
  .add(GateLinksGroup)
  .annotate(OpenApi.Title, "Relavium")
  .annotate(OpenApi.Description, "Workflows, runs, live run events (SSE), human gates and provider keys") {}

/** What `relavium monolith` serves: every route of `RelaviumApi`, and the chats. */
export class MonolithApi extends RelaviumApi.add(ChatsGroup).annotate(
  OpenApi.Description,
  "Workflows, runs, live run events (SSE), human gates, provider keys, and coding-agent chats with live events (SSE)"
) {}

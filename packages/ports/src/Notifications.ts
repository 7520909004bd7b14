/**
 * Notifications and cost views as components (docs/notifications.md, docs/cost.md):
 *
 * - `NotificationStore`: an org's channels (email, Slack, signed webhook), with their secrets
 *   sealed; the deliveries (one per channel and subject: a gate that opened, a budget threshold),
 *   claimed, retried and recorded; the one-click gate links (single use); the org's monthly
 *   budget and the alerts already sent.
 * - `UsageStore`: the cost events of an org's runs in a time range, with what they are grouped
 *   by (workflow, model, member, trigger); `aggregateUsage` groups them.
 *
 * Every method acts for `CurrentOrg`, but `orgsToNotify`, which the sweep uses to find the orgs
 * to act for. No method returns a secret but `channelSecret`, which the sender alone calls.
 */
import { Context, Data, type Effect, type Option, type Redacted, Schema } from "effect"

export class NotificationError extends Data.TaggedError("NotificationError")<{
  readonly message: string
  readonly reason?: "invalid" | "not_found" | "store" | "sealed"
}> {}

export const ChannelKind = Schema.Literal("email", "slack", "webhook")
export type ChannelKind = typeof ChannelKind.Type

const Address = Schema.Trim.pipe(
  Schema.compose(Schema.Lowercase),
  Schema.maxLength(254),
  Schema.pattern(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { message: () => "an email address (name@example.com)" })
)

const HttpUrl = Schema.String.pipe(
  Schema.maxLength(2048),
  Schema.filter((s) => {
    try {
      const url = new URL(s)
      return url.protocol === "https:" || url.protocol === "http:" ? true : "an http(s) URL"
    } catch {
      return "an http(s) URL, e.g. https://example.com/hooks/relavium"
    }
  })
)

/** The settings of a channel that are not secret (stored in the clear, listed by the API). */
export const EmailSettings = Schema.Struct({
  kind: Schema.Literal("email"),
  host: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(253)),
  port: Schema.Int.pipe(Schema.between(1, 65535)),
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  secure: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  username: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(320))),
  from: Address,
  /** Who is told; an assignee that is an email address is told too. */
  to: Schema.Array(Address).pipe(Schema.maxItems(50))
})

export const SlackSettings = Schema.Struct({ kind: Schema.Literal("slack") })

export const WebhookSettings = Schema.Struct({ kind: Schema.Literal("webhook"), url: HttpUrl })

export const ChannelSettings = Schema.Union(EmailSettings, SlackSettings, WebhookSettings)
export type ChannelSettings = typeof ChannelSettings.Type

export const ChannelName = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,63}$/, { message: () => "a channel name: lower-case letters, digits, '-' and '_', at most 64" })
)

/**
 * A channel as set: the settings and the secret, which is the SMTP password (email, optional),
 * the incoming webhook URL (Slack, required) or the signing secret (webhook, required).
 */
export interface ChannelInput {
  readonly name: string
  readonly settings: ChannelSettings
  readonly secret?: Redacted.Redacted<string> | undefined
  readonly enabled?: boolean | undefined
}

export const Channel = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  kind: ChannelKind,
  settings: ChannelSettings,
  /** Whether a secret is stored (never the secret). */
  hasSecret: Schema.Boolean,
  enabled: Schema.Boolean,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type Channel = typeof Channel.Type

export const DeliveryStatus = Schema.Literal("pending", "sent", "failed", "cancelled")
export type DeliveryStatus = typeof DeliveryStatus.Type

export const Delivery = Schema.Struct({
  id: Schema.String,
  channelId: Schema.String,
  /** `gate:<runId>:<gateId>` or `budget:<YYYY-MM>:<threshold>`. */
  subject: Schema.String,
  subjectKind: Schema.Literal("gate", "budget"),
  runId: Schema.NullOr(Schema.String),
  gateId: Schema.NullOr(Schema.String),
  /** What the message says (no secret): the gate's message, workflow, assignee; the budget's figures. */
  detail: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  status: DeliveryStatus,
  attempts: Schema.Number,
  nextAttemptAt: Schema.String,
  lastError: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type Delivery = typeof Delivery.Type

export interface NewDelivery {
  readonly channelId: string
  readonly subject: string
  readonly subjectKind: "gate" | "budget"
  readonly runId?: string | undefined
  readonly gateId?: string | undefined
  readonly detail: Record<string, unknown>
}

/** A pending gate no delivery was made for yet. */
export interface GateToNotify {
  readonly runId: string
  readonly gateId: string
  readonly nodeId: string
  readonly gateType: string
  readonly message: string
  readonly assignee: string | null
  readonly expiresAt: string | null
  readonly workflowName: string
}

export interface GateLink {
  readonly orgId: string
  readonly runId: string
  readonly gateId: string
  readonly decision: "approved" | "rejected"
  readonly expiresAt: string
  readonly usedAt: string | null
}

export type LinkUse = "used" | "already_used" | "unknown"

export const Budget = Schema.Struct({
  monthlyLimitMicrocents: Schema.Int.pipe(Schema.positive()),
  /** Percentages of the limit that are notified, once each per month (default 50, 80, 100). */
  thresholds: Schema.Array(Schema.Int.pipe(Schema.between(1, 1000))).pipe(Schema.minItems(1), Schema.maxItems(10))
})
export type Budget = typeof Budget.Type

export const DEFAULT_THRESHOLDS: ReadonlyArray<number> = [50, 80, 100]

type Fx<A> = Effect.Effect<A, NotificationError>

export class NotificationStore extends Context.Tag("@relavium/ports/NotificationStore")<
  NotificationStore,
  {
    readonly channels: {
      /** Creates or replaces the channel of that name; a secret not given keeps the stored one. */
      readonly put: (input: ChannelInput) => Fx<Channel>
      readonly list: Fx<ReadonlyArray<Channel>>
      readonly remove: (name: string) => Fx<boolean>
      /** The channel's secret, opened: for the sender only. */
      readonly secret: (channelId: string) => Fx<Option.Option<Redacted.Redacted<string>>>
    }
    readonly deliveries: {
      /** Adds the deliveries not made yet (one per channel and subject); how many were added. */
      readonly enqueue: (deliveries: ReadonlyArray<NewDelivery>, now: string) => Fx<number>
      /** Claims up to `limit` pending deliveries due at `now` for `leaseMs` (no other process sends them meanwhile). */
      readonly claimDue: (now: string, leaseMs: number, limit: number) => Fx<ReadonlyArray<Delivery>>
      readonly markSent: (id: string, attempts: number, now: string) => Fx<void>
      /** A failed attempt: retried at `retryAt`, or failed for good when undefined. */
      readonly markFailed: (id: string, attempts: number, error: string, retryAt: string | undefined, now: string) => Fx<void>
      /** Cancels the pending deliveries of gates that were decided (or whose run ended); how many. */
      readonly cancelDecided: (now: string) => Fx<number>
      readonly list: (filter?: { readonly runId?: string | undefined }) => Fx<ReadonlyArray<Delivery>>
      /** The pending gates no delivery was made for yet. */
      readonly gatesToNotify: Fx<ReadonlyArray<GateToNotify>>
    }
    readonly links: {
      readonly create: (link: { readonly linkId: string; readonly runId: string; readonly gateId: string; readonly decision: "approved" | "rejected"; readonly expiresAt: string }, now: string) => Fx<void>
      /** The link of that id, in whichever org (the signed link is the authority): across orgs. */
      readonly find: (linkId: string) => Fx<Option.Option<GateLink>>
      /** Marks the link used, once: `already_used` when it was. */
      readonly use: (linkId: string, now: string) => Fx<LinkUse>
      /** Whether the gate is still pending (false: decided, or no such gate). */
      readonly gatePending: (runId: string, gateId: string) => Fx<boolean>
    }
    readonly budget: {
      readonly get: Fx<Option.Option<Budget>>
      readonly set: (budget: Budget, now: string) => Fx<void>
      /** Records the alert of a threshold in a period; false when it was recorded before. */
      readonly recordAlert: (period: string, threshold: number, spentMicrocents: number, now: string) => Fx<boolean>
    }
    /** The orgs with an enabled channel (across orgs: the sweep then acts for each). */
    readonly orgsToNotify: Fx<ReadonlyArray<string>>
  }
>() {}

// ---------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------

export const UsageGroupBy = Schema.Literal("day", "workflow", "model", "member", "trigger")
export type UsageGroupBy = typeof UsageGroupBy.Type

/** One `cost:updated` event of a run, with what it is grouped by. */
export interface CostEvent {
  readonly runId: string
  readonly timestamp: string
  readonly workflow: string
  readonly model: string
  readonly inputTokens: number
  readonly outputTokens: number
  readonly costMicrocents: number
  /** Who started the run (the audit trail's actor of `run.start`); `unknown` when not recorded. */
  readonly member: string
  /** `<kind>:<triggerId>` of the trigger that started the run, or `manual`. */
  readonly trigger: string
}

export const UsageRow = Schema.Struct({
  key: Schema.String,
  runs: Schema.Number,
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  costMicrocents: Schema.Number
})
export type UsageRow = typeof UsageRow.Type

export class UsageStore extends Context.Tag("@relavium/ports/UsageStore")<
  UsageStore,
  {
    /** The cost events of the org's runs with `from <= timestamp < to`. */
    readonly costEvents: (from: string, to: string) => Fx<ReadonlyArray<CostEvent>>
  }
>() {}

const keyOf = (event: CostEvent, by: UsageGroupBy): string => {
  switch (by) {
    case "day":
      return event.timestamp.slice(0, 10)
    case "workflow":
      return event.workflow
    case "model":
      return event.model
    case "member":
      return event.member
    case "trigger":
      return event.trigger
  }
}

/** The events grouped: tokens and cost summed, runs counted once per group; ordered by key. */
export const aggregateUsage = (events: ReadonlyArray<CostEvent>, by: UsageGroupBy): ReadonlyArray<UsageRow> => {
  const groups = new Map<string, { runs: Set<string>; inputTokens: number; outputTokens: number; costMicrocents: number }>()
  for (const event of events) {
    const key = keyOf(event, by)
    const group = groups.get(key) ?? { runs: new Set<string>(), inputTokens: 0, outputTokens: 0, costMicrocents: 0 }
    group.runs.add(event.runId)
    group.inputTokens += event.inputTokens
    group.outputTokens += event.outputTokens
    group.costMicrocents += event.costMicrocents
    groups.set(key, group)
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, g]) => ({ key, runs: g.runs.size, inputTokens: g.inputTokens, outputTokens: g.outputTokens, costMicrocents: g.costMicrocents }))
}

/** Microcents (millionths of a cent) as cents with six decimals: 12345 → `0.012345`. */
export const centsOf = (microcents: number): string => {
  const negative = microcents < 0
  const abs = Math.abs(Math.round(microcents))
  const text = `${Math.floor(abs / 1_000_000)}.${String(abs % 1_000_000).padStart(6, "0")}`
  return negative ? `-${text}` : text
}

const csvField = (value: string): string => (/[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value)

/** The rows as CSV: a header, then one line per group; cost in cents with six decimals. */
export const usageCsv = (by: UsageGroupBy, rows: ReadonlyArray<UsageRow>): string =>
  [
    `${by},runs,input_tokens,output_tokens,cost_cents`,
    ...rows.map((r) => [csvField(r.key), String(r.runs), String(r.inputTokens), String(r.outputTokens), centsOf(r.costMicrocents)].join(","))
  ].join("\r\n") + "\r\n"

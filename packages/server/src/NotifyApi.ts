/**
 * The routes of notifications and cost views (docs/notifications.md, docs/cost.md): an org's
 * channels, its deliveries, its monthly budget, its usage (JSON and CSV), and the one-click gate
 * links (`/gate-links/:token`, public: the signed token is the authority). The action each route
 * requires is in `routeActions` (Routes.ts).
 *
 * Made by `notifyGroups` from the errors and the middleware of Api.ts (as TenancyApi.ts is).
 */
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Budget, Channel, ChannelName, ChannelSettings, Delivery, UsageGroupBy } from "@relavium/ports"
import type { Authorization, BadRequest, Forbidden, InternalError, NotFound } from "./Api.js"
import { Timestamp } from "./TenancyApi.js"

export const ChannelPayload = Schema.Struct({
  settings: ChannelSettings,
  /** The SMTP password (email), the incoming webhook URL (Slack) or the signing secret (webhook); absent: keep the stored one. */
  secret: Schema.optional(Schema.Redacted(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096)))),
  enabled: Schema.optional(Schema.Boolean)
})

export const BudgetPayload = Schema.Struct({
  /** The monthly limit in cents (decimals allowed: 1234.5). */
  monthlyLimitCents: Schema.Number.pipe(Schema.positive(), Schema.lessThanOrEqualTo(1e12)),
  /** Percentages notified once a month each (default 50, 80, 100). */
  thresholds: Schema.optional(Budget.fields.thresholds)
})

export const BudgetView = Schema.Struct({
  budget: Schema.NullOr(Budget),
  period: Schema.String,
  spentMicrocents: Schema.Number
})

/** A date (`2026-12-01`, the day's start in UTC) or a timestamp. */
const When = Timestamp

export const UsageParams = Schema.Struct({
  /** From this time, inclusive (default: the first day of this month). */
  from: Schema.optional(When),
  /** Until this time, exclusive (default: now). */
  to: Schema.optional(When),
  groupBy: Schema.optionalWith(UsageGroupBy, { default: () => "day" as const })
})

export const UsageView = Schema.Struct({
  from: Schema.String,
  to: Schema.String,
  groupBy: UsageGroupBy,
  rows: Schema.Array(
    Schema.Struct({
      key: Schema.String,
      runs: Schema.Number,
      inputTokens: Schema.Number,
      outputTokens: Schema.Number,
      costMicrocents: Schema.Number,
      /** Cents with six decimals, e.g. `0.012345`. */
      costCents: Schema.String
    })
  ),
  total: Schema.Struct({ inputTokens: Schema.Number, outputTokens: Schema.Number, costMicrocents: Schema.Number, costCents: Schema.String })
})

const namePath = Schema.Struct({ name: ChannelName })
const tokenPath = Schema.Struct({ token: Schema.String.pipe(Schema.maxLength(4096)) })

export interface NotifyApiParts {
  readonly Authorization: typeof Authorization
  readonly BadRequest: typeof BadRequest
  readonly Forbidden: typeof Forbidden
  readonly NotFound: typeof NotFound
  readonly InternalError: typeof InternalError
}

export const notifyGroups = (parts: NotifyApiParts) => {
  const { Authorization, BadRequest, Forbidden, InternalError, NotFound } = parts

  const notifications = HttpApiGroup.make("notifications")
    .add(HttpApiEndpoint.get("channels", "/notifications/channels").addSuccess(Schema.Array(Channel)))
    .add(
      HttpApiEndpoint.put("setChannel", "/notifications/channels/:name")
        .setPath(namePath)
        .setPayload(ChannelPayload)
        .addSuccess(Channel)
        .annotate(OpenApi.Description, "Creates or replaces a channel; its secret is stored sealed and never returned")
    )
    .add(HttpApiEndpoint.del("removeChannel", "/notifications/channels/:name").setPath(namePath).addSuccess(HttpApiSchema.NoContent).addError(NotFound))
    .add(
      HttpApiEndpoint.get("deliveries", "/notifications/deliveries")
        .setUrlParams(Schema.Struct({ runId: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))) }))
        .addSuccess(Schema.Array(Delivery))
    )
    .add(HttpApiEndpoint.get("budget", "/budget").addSuccess(BudgetView))
    .add(HttpApiEndpoint.put("setBudget", "/budget").setPayload(BudgetPayload).addSuccess(BudgetView))
    .addError(BadRequest)
    .addError(Forbidden)
    .addError(InternalError)
    .annotate(OpenApi.Description, "Where gate and budget notifications go, what was sent, and the monthly budget")
    .middleware(Authorization)

  const usage = HttpApiGroup.make("usage")
    .add(HttpApiEndpoint.get("get", "/usage").setUrlParams(UsageParams).addSuccess(UsageView))
    .add(
      HttpApiEndpoint.get("csv", "/usage.csv")
        .setUrlParams(UsageParams)
        .addSuccess(HttpApiSchema.Text({ contentType: "text/csv" }))
    )
    .addError(BadRequest)
    .addError(Forbidden)
    .addError(InternalError)
    .annotate(OpenApi.Description, "Cost of the organisation's runs by day, workflow, model, member or trigger")
    .middleware(Authorization)

  const gateLinks = HttpApiGroup.make("gateLinks")
    .add(
      HttpApiEndpoint.get("show", "/gate-links/:token")
        .setPath(tokenPath)
        .addSuccess(HttpApiSchema.Text({ contentType: "text/html" }))
        .annotate(OpenApi.Description, "The confirmation page of a one-click gate link (decides nothing: mail scanners open links)")
    )
    .add(
      HttpApiEndpoint.post("decide", "/gate-links/:token")
        .setPath(tokenPath)
        .addSuccess(HttpApiSchema.Text({ contentType: "text/html" }))
        .annotate(OpenApi.Description, "Decides the gate, once; a link used, expired or altered is refused")
    )
    .annotate(OpenApi.Description, "One-click approve and reject links of gate notifications (no bearer token: the link is signed)")

  return { notifications, usage, gateLinks }
}

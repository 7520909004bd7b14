/**
 * The trigger routes (docs/triggers.md): list, create, delete, rotate a webhook's secret. The
 * action each requires is in `routeActions` (Routes.ts). The delivery route itself
 * (`POST /hooks/:triggerId`) is not here: it has no bearer token and reads its body raw
 * (Webhooks.ts).
 *
 * Made by `triggerGroups` from the errors and the middleware of Api.ts, as TenancyApi.ts is (no
 * import cycle).
 */
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { MissedPolicy, Trigger, TriggerKind } from "@relavium/ports"
import type { Authorization, BadRequest, Forbidden, InternalError, NotFound } from "./Api.js"

const Id = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))

export const TriggerView = Schema.Struct({
  ...Trigger.fields,
  /** A webhook's delivery path on this server (`POST`, signed); absent for a schedule. */
  hookPath: Schema.optional(Schema.String)
})

export const CreatedTriggerView = Schema.Struct({
  trigger: TriggerView,
  /** A webhook's signing secret: in this answer only, never again (rotate it to get a new one). */
  secret: Schema.optional(Schema.Redacted(Schema.String))
})

export const RotatedSecretView = Schema.Struct({
  triggerId: Schema.String,
  /** The new secret: in this answer only. */
  secret: Schema.Redacted(Schema.String),
  /** Until when the previous secret is still accepted. */
  previousValidUntil: Schema.String
})

const TemplateText = Schema.String.pipe(Schema.maxLength(10_000))

export const NewTriggerPayload = Schema.Struct({
  workflowId: Id,
  kind: TriggerKind,
  name: Schema.Trim.pipe(Schema.minLength(1, { message: () => "a trigger's name must not be empty" }), Schema.maxLength(100)),
  /** Webhook: input name → template over the body (`{{ ctx.body.… }}`); absent: the body is the inputs. */
  inputTemplate: Schema.optional(Schema.Record({ key: Schema.String.pipe(Schema.maxLength(200)), value: TemplateText })),
  /** Schedule: the inputs of every fire. */
  inputs: Schema.optional(Schema.Record({ key: Schema.String.pipe(Schema.maxLength(200)), value: Schema.Unknown })),
  /** Schedule: 5 fields, or 6 with seconds first. */
  cron: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
  /** Schedule: an IANA time zone (default UTC). */
  timezone: Schema.optional(Schema.String.pipe(Schema.maxLength(100))),
  /** Schedule: what to do at start about fires missed while nothing ran (default `skip`). */
  missed: Schema.optional(MissedPolicy),
  /** Deliveries a minute (default 60). */
  rateLimitPerMinute: Schema.optional(Schema.Int.pipe(Schema.between(1, 10_000, { message: () => "an integer from 1 to 10000" })))
})

export const RotatePayload = Schema.Union(
  Schema.Struct({
    /** How long the previous secret stays valid (default 86400: a day; 0 drops it at once). */
    graceSeconds: Schema.optional(Schema.Int.pipe(Schema.between(0, 7 * 86_400, { message: () => "an integer from 0 to 604800 (a week)" })))
  }),
  Schema.Null
)

export interface TriggersApiParts {
  readonly Authorization: typeof Authorization
  readonly BadRequest: typeof BadRequest
  readonly Forbidden: typeof Forbidden
  readonly NotFound: typeof NotFound
  readonly InternalError: typeof InternalError
}

const triggerIdPath = Schema.Struct({ triggerId: Id })

export const triggerGroups = (parts: TriggersApiParts) => {
  const { Authorization, BadRequest, Forbidden, InternalError, NotFound } = parts
  const triggers = HttpApiGroup.make("triggers")
    .add(HttpApiEndpoint.get("list", "/triggers").addSuccess(Schema.Array(TriggerView)))
    .add(
      HttpApiEndpoint.post("create", "/triggers")
        .setPayload(NewTriggerPayload)
        .addSuccess(CreatedTriggerView, { status: 201 })
        .annotate(OpenApi.Description, "A webhook or schedule trigger of a workflow; a webhook's secret is in this answer only")
    )
    .add(
      HttpApiEndpoint.del("remove", "/triggers/:triggerId")
        .setPath(triggerIdPath)
        .addSuccess(HttpApiSchema.NoContent)
        .annotate(OpenApi.Description, "Deletes a trigger: its webhook stops accepting deliveries, its schedule stops firing")
    )
    .add(
      HttpApiEndpoint.post("rotateSecret", "/triggers/:triggerId/rotate-secret")
        .setPath(triggerIdPath)
        .setPayload(RotatePayload)
        .addSuccess(RotatedSecretView)
        .annotate(OpenApi.Description, "A new signing secret for a webhook trigger; the previous one is accepted until `previousValidUntil`")
    )
    .addError(BadRequest)
    .addError(NotFound)
    .addError(Forbidden)
    .addError(InternalError)
    .annotate(OpenApi.Description, "Webhook and schedule triggers of the caller's organisation (see docs/triggers.md)")
    .middleware(Authorization)
  return { triggers }
}

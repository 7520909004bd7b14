/**
 * Triggers: what starts a run without a person — a signed webhook delivery
 * (`POST /hooks/:triggerId`) or a schedule's fire (a cron expression in an
 * IANA time zone). See docs/triggers.md.
 *
 * A trigger belongs to an org and a workflow. Every method acts for
 * `CurrentOrg`, except the two that must work before an org is known:
 * `orgOf` (the hook route finds the trigger's org from its id) and
 * `schedules` (the scheduler of a worker finds the schedules of every org).
 *
 * A webhook trigger has a secret (`whsec_` and 256 random bits in base64),
 * returned once by `create` and `rotateSecret` and never again: SQL layers
 * keep it sealed under the org's data key. During a rotation the previous
 * secret stays valid until `previousSecretExpiresAt`.
 *
 * Deliveries (`recordDelivery`) are de-duplicated by id per trigger: the first
 * delivery of an id records the run it starts; a later one with the same id
 * gets that run's id back. The same call counts the trigger's deliveries of
 * the last minute against its rate limit, atomically with the insert.
 */
import { Context, Data, Effect, Layer, Option, Redacted, Ref, Schema } from "effect"
import { randomBytes, randomUUID } from "node:crypto"
import { currentOrgId, isoNow } from "./Tenancy.js"

export const TriggerKind = Schema.Literal("webhook", "schedule")
export type TriggerKind = typeof TriggerKind.Type

/** What a schedule does about fires it missed while nothing ran: fire the latest one once, or skip them. */
export const MissedPolicy = Schema.Literal("run_once", "skip")
export type MissedPolicy = typeof MissedPolicy.Type

/** Deliveries per minute a trigger accepts unless told otherwise. */
export const DEFAULT_RATE_LIMIT_PER_MINUTE = 60

export class Trigger extends Schema.Class<Trigger>("Trigger")({
  id: Schema.String,
  workflowId: Schema.String,
  kind: TriggerKind,
  name: Schema.String,
  /** Webhook: input name → template over the body (`{{ ctx.body.… }}`); none: the body is the inputs. */
  inputTemplate: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.String })),
  /** Schedule: the inputs of every fire. */
  inputs: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  cron: Schema.NullOr(Schema.String),
  timezone: Schema.NullOr(Schema.String),
  missed: Schema.NullOr(MissedPolicy),
  rateLimitPerMinute: Schema.Number,
  createdBy: Schema.String,
  createdAt: Schema.String,
  /** While a rotation's previous secret is still accepted: until when. */
  previousSecretExpiresAt: Schema.NullOr(Schema.String)
}) {}

export interface NewTrigger {
  readonly workflowId: string
  readonly kind: TriggerKind
  readonly name: string
  readonly inputTemplate?: Readonly<Record<string, string>> | undefined
  readonly inputs?: Readonly<Record<string, unknown>> | undefined
  readonly cron?: string | undefined
  readonly timezone?: string | undefined
  readonly missed?: MissedPolicy | undefined
  readonly rateLimitPerMinute?: number | undefined
  readonly createdBy: string
}

/** A schedule as the scheduler sees it, in any org. */
export interface ScheduleEntry {
  readonly orgId: string
  readonly triggerId: string
  readonly workflowId: string
  readonly cron: string
  readonly timezone: string
  readonly missed: MissedPolicy
  readonly inputs: Readonly<Record<string, unknown>>
  readonly createdAt: string
  /** The newest fire recorded (its ISO time), if any. */
  readonly lastFire: string | undefined
}

export type DeliveryOutcome =
  | { readonly _tag: "Accepted" }
  | { readonly _tag: "Duplicate"; readonly runId: string }
  | { readonly _tag: "Limited"; readonly retryAfterSeconds: number }

export class TriggerError extends Data.TaggedError("TriggerError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** Trigger ids are random: one org cannot guess another's. */
export const newTriggerId = (): string => `trg_${randomUUID().replaceAll("-", "")}`

export const looksLikeTriggerId = (id: string): boolean => /^trg_[0-9a-f]{32}$/.test(id)

/** A webhook secret, Standard Webhooks style: `whsec_` and 32 random bytes in base64. */
export const mintWebhookSecret = (): Redacted.Redacted<string> => Redacted.make(`whsec_${randomBytes(32).toString("base64")}`)

export class Triggers extends Context.Tag("@relavium/ports/Triggers")<
  Triggers,
  {
    /** A new trigger; a webhook's secret is in the answer (and only there). */
    readonly create: (
      input: NewTrigger
    ) => Effect.Effect<{ readonly trigger: Trigger; readonly secret: Option.Option<Redacted.Redacted<string>> }, TriggerError>
    readonly list: Effect.Effect<ReadonlyArray<Trigger>, TriggerError>
    readonly get: (triggerId: string) => Effect.Effect<Option.Option<Trigger>, TriggerError>
    /** Removes the trigger and its deliveries; false when the org has no such trigger. */
    readonly remove: (triggerId: string) => Effect.Effect<boolean, TriggerError>
    /**
     * A new secret for a webhook trigger; the current one stays valid until `previousValidUntil`
     * (then only the new one). None when the org has no such webhook trigger.
     */
    readonly rotateSecret: (
      triggerId: string,
      previousValidUntil: string
    ) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, TriggerError>
    /** The secrets a delivery may be signed with now: the current one, and the previous while its window lasts. */
    readonly secrets: (triggerId: string) => Effect.Effect<ReadonlyArray<Redacted.Redacted<string>>, TriggerError>
    /** The org of a trigger, in any org (the hook route, before an org is known). */
    readonly orgOf: (triggerId: string) => Effect.Effect<Option.Option<string>, TriggerError>
    /**
     * Records delivery `deliveryId` of the trigger as starting `runId`, unless the id was delivered
     * before (its run's id comes back) or the trigger had `limitPerMinute` deliveries in the last
     * minute (how long to wait comes back). Atomic: concurrent deliveries of one id record one.
     */
    readonly recordDelivery: (input: {
      readonly triggerId: string
      readonly deliveryId: string
      readonly runId: string
      readonly limitPerMinute: number
    }) => Effect.Effect<DeliveryOutcome, TriggerError>
    /** Forgets a delivery whose run could not be started, so a retry may start it. */
    readonly forgetDelivery: (triggerId: string, deliveryId: string) => Effect.Effect<void, TriggerError>
    /** Every schedule trigger of every org (the scheduler). */
    readonly schedules: Effect.Effect<ReadonlyArray<ScheduleEntry>, TriggerError>
  }
>() {}

// ---------------------------------------------------------------------------
// Memory layer (tests and the reference semantics)

interface MemoryTrigger {
  readonly orgId: string
  trigger: Trigger
  secret: Redacted.Redacted<string> | undefined
  previous: Redacted.Redacted<string> | undefined
  readonly deliveries: Map<string, { readonly runId: string; readonly at: number }>
}

const MINUTE_MS = 60_000

/**
 * How long a delivery is kept: far longer than the 5 minutes a signed delivery may be replayed
 * within and the minute of the rate limit. A trigger's newest delivery (by id: a schedule's last
 * fire) is kept whatever its age.
 */
export const DELIVERY_RETENTION_MS = 60 * 60_000

/** Checks what every layer checks before it stores a trigger (the server checks more: cron, zone, workflow). */
export const checkNewTrigger = (input: NewTrigger): Effect.Effect<void, TriggerError> => {
  const problem =
    input.name.trim() === "" || input.name.length > 100
      ? "a trigger's name must be 1 to 100 characters"
      : input.kind === "schedule" && (input.cron === undefined || input.timezone === undefined)
        ? "a schedule trigger needs a cron expression and a time zone"
        : input.rateLimitPerMinute !== undefined && !(Number.isInteger(input.rateLimitPerMinute) && input.rateLimitPerMinute >= 1)
          ? "a rate limit must be a whole number of deliveries per minute, at least 1"
          : undefined
  return problem === undefined ? Effect.void : Effect.fail(new TriggerError({ message: problem }))
}

/** The record of a new trigger, as every layer makes it. */
export const triggerRecord = (input: NewTrigger, id: string, createdAt: string): Trigger =>
  new Trigger({
    id,
    workflowId: input.workflowId,
    kind: input.kind,
    name: input.name.trim(),
    inputTemplate: input.kind === "webhook" && input.inputTemplate !== undefined ? { ...input.inputTemplate } : null,
    inputs: input.kind === "schedule" ? { ...input.inputs } : null,
    cron: input.kind === "schedule" ? input.cron ?? null : null,
    timezone: input.kind === "schedule" ? input.timezone ?? null : null,
    missed: input.kind === "schedule" ? input.missed ?? "skip" : null,
    rateLimitPerMinute: input.rateLimitPerMinute ?? DEFAULT_RATE_LIMIT_PER_MINUTE,
    createdBy: input.createdBy,
    createdAt,
    previousSecretExpiresAt: null
  })

/** Seconds until the oldest delivery of the window leaves it (at least 1). */
export const retryAfter = (oldestInWindowMs: number, nowMs: number): number =>
  Math.max(1, Math.ceil((oldestInWindowMs + MINUTE_MS - nowMs) / 1000))

export const layerTriggersMemory: Layer.Layer<Triggers> = Layer.effect(
  Triggers,
  Effect.gen(function* () {
    const state = yield* Ref.make(new Map<string, MemoryTrigger>())
    const nowMs = Effect.clockWith((clock) => clock.currentTimeMillis)
    const own = (triggerId: string) =>
      Effect.gen(function* () {
        const orgId = yield* currentOrgId
        const found = (yield* Ref.get(state)).get(triggerId)
        return found !== undefined && found.orgId === orgId ? found : undefined
      })
    return Triggers.of({
      create: (input) =>
        Effect.gen(function* () {
          yield* checkNewTrigger(input)
          const orgId = yield* currentOrgId
          const trigger = triggerRecord(input, newTriggerId(), yield* isoNow)
          const secret = input.kind === "webhook" ? mintWebhookSecret() : undefined
          yield* Ref.update(state, (m) => new Map(m).set(trigger.id, { orgId, trigger, secret, previous: undefined, deliveries: new Map() }))
          return { trigger, secret: Option.fromNullable(secret) }
        }),
      list: Effect.gen(function* () {
        const orgId = yield* currentOrgId
        return [...(yield* Ref.get(state)).values()]
          .filter((t) => t.orgId === orgId)
          .map((t) => t.trigger)
          .sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1))
      }),
      get: (triggerId) => Effect.map(own(triggerId), (t) => Option.fromNullable(t?.trigger)),
      remove: (triggerId) =>
        Effect.flatMap(own(triggerId), (t) =>
          t === undefined
            ? Effect.succeed(false)
            : Effect.as(Ref.update(state, (m) => {
                const next = new Map(m)
                next.delete(triggerId)
                return next
              }), true)
        ),
      rotateSecret: (triggerId, previousValidUntil) =>
        Effect.flatMap(own(triggerId), (t) =>
          Effect.sync(() => {
            if (t === undefined || t.trigger.kind !== "webhook") return Option.none()
            const secret = mintWebhookSecret()
            t.previous = t.secret
            t.secret = secret
            t.trigger = new Trigger({ ...t.trigger, previousSecretExpiresAt: previousValidUntil })
            return Option.some(secret)
          })
        ),
      secrets: (triggerId) =>
        Effect.gen(function* () {
          const t = yield* own(triggerId)
          if (t === undefined || t.secret === undefined) return []
          const now = yield* isoNow
          const until = t.trigger.previousSecretExpiresAt
          return t.previous !== undefined && until !== null && until > now ? [t.secret, t.previous] : [t.secret]
        }),
      orgOf: (triggerId) => Effect.map(Ref.get(state), (m) => Option.fromNullable(m.get(triggerId)?.orgId)),
      recordDelivery: ({ deliveryId, limitPerMinute, runId, triggerId }) =>
        Effect.gen(function* () {
          const t = yield* own(triggerId)
          if (t === undefined) return yield* new TriggerError({ message: `no trigger ${triggerId} in this organisation` })
          const now = yield* nowMs
          const first = t.deliveries.get(deliveryId)
          if (first !== undefined) return { _tag: "Duplicate", runId: first.runId } as const
          const recent = [...t.deliveries.values()].filter((d) => d.at > now - MINUTE_MS).map((d) => d.at)
          if (recent.length >= limitPerMinute) return { _tag: "Limited", retryAfterSeconds: retryAfter(Math.min(...recent), now) } as const
          t.deliveries.set(deliveryId, { runId, at: now })
          const newest = [...t.deliveries.keys()].sort().at(-1)
          for (const [id, d] of t.deliveries) if (d.at < now - DELIVERY_RETENTION_MS && id !== newest) t.deliveries.delete(id)
          return { _tag: "Accepted" } as const
        }),
      forgetDelivery: (triggerId, deliveryId) =>
        Effect.flatMap(own(triggerId), (t) => Effect.sync(() => void t?.deliveries.delete(deliveryId))),
      schedules: Effect.map(Ref.get(state), (m) =>
        [...m.values()].flatMap((t): Array<ScheduleEntry> => {
          const { trigger } = t
          if (trigger.kind !== "schedule" || trigger.cron === null || trigger.timezone === null) return []
          const fires = [...t.deliveries.keys()].sort()
          return [{
            orgId: t.orgId,
            triggerId: trigger.id,
            workflowId: trigger.workflowId,
            cron: trigger.cron,
            timezone: trigger.timezone,
            missed: trigger.missed ?? "skip",
            inputs: trigger.inputs ?? {},
            createdAt: trigger.createdAt,
            lastFire: fires[fires.length - 1]
          }]
        })
      )
    })
  })
)

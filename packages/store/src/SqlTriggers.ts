/**
 * The `Triggers` port on SQL (migration `9_triggers`, SQLite and Postgres), with the semantics of
 * the memory layer in @relavium/ports.
 *
 * - Statements act for `CurrentOrg` (on Postgres the store's client sets `app.org_id` for each
 *   transaction and row-level security filters again).
 * - A webhook's secrets are sealed under the org's data key (`SqlKeyStore`'s envelope: a data key
 *   per org wrapped under the master key), bound to the org and the trigger id; without master
 *   keys a webhook trigger cannot be created (the error says which variable to set).
 * - `orgOf` and `schedules` work before an org is known: on Postgres through the SECURITY DEFINER
 *   functions `relavium_trigger_org` and `relavium_schedules`.
 * - `recordDelivery` locks the trigger's row (Postgres `FOR UPDATE`; SQLite serialises writers),
 *   then checks the delivery id, counts the last minute and inserts, in one transaction.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Layer, Option, type Redacted } from "effect"
import {
  checkNewTrigger,
  currentOrgId,
  type DeliveryOutcome,
  isoNow,
  type KeyStoreError,
  mintWebhookSecret,
  type MissedPolicy,
  newTriggerId,
  DELIVERY_RETENTION_MS,
  retryAfter,
  type ScheduleEntry,
  Trigger,
  TriggerError,
  triggerRecord,
  Triggers
} from "@relavium/ports"
import * as Database from "./Database.js"
import * as Envelope from "./Envelope.js"
import { type MasterKeyring, masterKeyring, type MasterKeySettings } from "./MasterKeys.js"
import { type DataKeyRow, ensureDataKey, openDataKey } from "./SqlKeyStore.js"

interface TriggerRow {
  readonly trigger_id: string
  readonly workflow_id: string
  readonly kind: "webhook" | "schedule"
  readonly name: string
  readonly input_template: unknown
  readonly inputs: unknown
  readonly cron: string | null
  readonly timezone: string | null
  readonly missed: MissedPolicy | null
  readonly rate_limit_per_minute: number
  readonly created_by: string
  readonly created_at: string
  readonly previous_expires_at: string | null
}

interface SecretColumns {
  readonly secret_nonce: string | null
  readonly secret_sealed: string | null
  readonly secret_key_version: number | null
  readonly previous_nonce: string | null
  readonly previous_sealed: string | null
  readonly previous_key_version: number | null
  readonly previous_expires_at: string | null
}

const columns = `trigger_id, workflow_id, kind, name, input_template, inputs, cron, timezone, missed,
  rate_limit_per_minute, created_by, created_at, previous_expires_at`

const fromJson = (value: unknown): unknown => (typeof value === "string" ? JSON.parse(value) : value)

const toTrigger = (row: TriggerRow) =>
  new Trigger({
    id: row.trigger_id,
    workflowId: row.workflow_id,
    kind: row.kind,
    name: row.name,
    inputTemplate: row.input_template === null ? null : (fromJson(row.input_template) as Record<string, string>),
    inputs: row.inputs === null ? null : (fromJson(row.inputs) as Record<string, unknown>),
    cron: row.cron,
    timezone: row.timezone,
    missed: row.missed,
    rateLimitPerMinute: Number(row.rate_limit_per_minute),
    createdBy: row.created_by,
    createdAt: row.created_at,
    previousSecretExpiresAt: row.previous_expires_at
  })

/** What a webhook secret is bound to in its envelope (the "provider" of `Envelope.sealSecret`). */
const sealedFor = (triggerId: string) => `webhook-trigger:${triggerId}`

const MINUTE_MS = 60_000

/** The port on the `SqlClient` provided (migrated: see `Database`); `masterKeys` seal webhook secrets. */
export const make = (masterKeys: MasterKeySettings | undefined): Effect.Effect<Triggers["Type"], never, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const database = Database.describeDatabase(sql)
    const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    const ring: Either.Either<MasterKeyring, KeyStoreError> =
      masterKeys === undefined
        ? Either.left({ _tag: "KeyStoreError", message: "no master key" } as KeyStoreError)
        : masterKeyring(masterKeys)
    const failed =
      (what: string) =>
      <A, R>(effect: Effect.Effect<A, SqlError | TriggerError | KeyStoreError, R>): Effect.Effect<A, TriggerError, R> =>
        effect.pipe(
          Effect.catchTag("SqlError", (cause) =>
            Effect.fail(new TriggerError({ message: `${database}: ${what} failed: ${Database.describeCause(cause)}`, cause }))
          ),
          Effect.catchTag("KeyStoreError", (e) => Effect.fail(new TriggerError({ message: `${what}: ${e.message}` })))
        )
    const keyring = Either.isRight(ring)
      ? Effect.succeed(ring.right)
      : Effect.fail(
          new TriggerError({
            message: `webhook secrets are sealed under the org's data key: set RELAVIUM_MASTER_KEY or RELAVIUM_MASTER_KEYS (${ring.left.message})`
          })
        )
    const lockRow = isPg ? sql.literal("FOR UPDATE") : sql.literal("")

    const seal = (orgId: string, triggerId: string, secret: Redacted.Redacted<string>) =>
      Effect.gen(function* () {
        const data = yield* ensureDataKey(sql, yield* keyring, orgId)
        const sealed = Envelope.sealSecret(data.key, orgId, sealedFor(triggerId), data.version, secret)
        return { nonce: sealed.nonce, sealed: sealed.ciphertext, version: data.version }
      })

    const open = (orgId: string, triggerId: string, nonce: string, sealed: string, version: number) =>
      Effect.gen(function* () {
        const ringValue = yield* keyring
        const rows = yield* sql<DataKeyRow>`SELECT version, master_key_id, nonce, wrapped, retired_at FROM org_data_keys
          WHERE org_id = ${orgId} AND version = ${version}`
        if (rows[0] === undefined) return yield* new TriggerError({ message: `the secret of trigger ${triggerId} names a data key the org does not have` })
        const key = yield* openDataKey(ringValue, orgId, rows[0])
        const opened = Envelope.openSecret(key, orgId, sealedFor(triggerId), version, { nonce, ciphertext: sealed })
        if (!opened.ok) return yield* new TriggerError({ message: `the secret of trigger ${triggerId} does not open (${opened.reason}): rotate it` })
        return opened.value
      })

    const get = (triggerId: string) =>
      Effect.flatMap(currentOrgId, (orgId) =>
        Effect.map(
          sql<TriggerRow>`SELECT ${sql.literal(columns)} FROM triggers WHERE org_id = ${orgId} AND trigger_id = ${triggerId}`,
          (rows) => Option.map(Option.fromNullable(rows[0]), toTrigger)
        )
      )

    return Triggers.of({
      create: (input) =>
        Effect.gen(function* () {
          yield* checkNewTrigger(input)
          const orgId = yield* currentOrgId
          const trigger = triggerRecord(input, newTriggerId(), yield* isoNow)
          const secret = trigger.kind === "webhook" ? Option.some(mintWebhookSecret()) : Option.none()
          yield* sql.withTransaction(
            Effect.gen(function* () {
              const sealed = Option.isSome(secret) ? yield* seal(orgId, trigger.id, secret.value) : undefined
              yield* sql`INSERT INTO triggers ${sql.insert({
                org_id: orgId,
                trigger_id: trigger.id,
                workflow_id: trigger.workflowId,
                kind: trigger.kind,
                name: trigger.name,
                input_template: trigger.inputTemplate === null ? null : JSON.stringify(trigger.inputTemplate),
                inputs: trigger.inputs === null ? null : JSON.stringify(trigger.inputs),
                cron: trigger.cron,
                timezone: trigger.timezone,
                missed: trigger.missed,
                rate_limit_per_minute: trigger.rateLimitPerMinute,
                secret_nonce: sealed?.nonce ?? null,
                secret_sealed: sealed?.sealed ?? null,
                secret_key_version: sealed?.version ?? null,
                created_by: trigger.createdBy,
                created_at: trigger.createdAt
              })}`
            })
          )
          return { trigger, secret }
        }).pipe(failed("creating a trigger")),
      list: Effect.flatMap(currentOrgId, (orgId) =>
        Effect.map(
          sql<TriggerRow>`SELECT ${sql.literal(columns)} FROM triggers WHERE org_id = ${orgId} ORDER BY created_at, trigger_id`,
          (rows) => rows.map(toTrigger)
        )
      ).pipe(failed("listing triggers")),
      get: (triggerId) => get(triggerId).pipe(failed(`reading trigger ${triggerId}`)),
      remove: (triggerId) =>
        Effect.flatMap(currentOrgId, (orgId) =>
          Effect.map(
            sql<{ trigger_id: string }>`DELETE FROM triggers WHERE org_id = ${orgId} AND trigger_id = ${triggerId} RETURNING trigger_id`,
            (rows) => rows.length > 0
          )
        ).pipe(failed(`removing trigger ${triggerId}`)),
      rotateSecret: (triggerId, previousValidUntil) =>
        Effect.gen(function* () {
          const orgId = yield* currentOrgId
          return yield* sql.withTransaction(
            Effect.gen(function* () {
              const rows = yield* sql<SecretColumns>`SELECT secret_nonce, secret_sealed, secret_key_version, previous_nonce,
                  previous_sealed, previous_key_version, previous_expires_at
                FROM triggers WHERE org_id = ${orgId} AND trigger_id = ${triggerId} AND kind = 'webhook' ${lockRow}`
              const row = rows[0]
              if (row === undefined) return Option.none()
              const secret = mintWebhookSecret()
              const sealed = yield* seal(orgId, triggerId, secret)
              // The current secret becomes the previous one (its envelope is unchanged: it is bound to the trigger, not the slot).
              yield* sql`UPDATE triggers SET previous_nonce = secret_nonce, previous_sealed = secret_sealed,
                  previous_key_version = secret_key_version, previous_expires_at = ${previousValidUntil},
                  secret_nonce = ${sealed.nonce}, secret_sealed = ${sealed.sealed}, secret_key_version = ${sealed.version}
                WHERE org_id = ${orgId} AND trigger_id = ${triggerId}`
              return Option.some(secret)
            })
          )
        }).pipe(failed(`rotating the secret of trigger ${triggerId}`)),
      secrets: (triggerId) =>
        Effect.gen(function* () {
          const orgId = yield* currentOrgId
          const rows = yield* sql<SecretColumns>`SELECT secret_nonce, secret_sealed, secret_key_version, previous_nonce,
              previous_sealed, previous_key_version, previous_expires_at
            FROM triggers WHERE org_id = ${orgId} AND trigger_id = ${triggerId}`
          const row = rows[0]
          if (row === undefined || row.secret_nonce === null || row.secret_sealed === null || row.secret_key_version === null) return []
          const current = yield* open(orgId, triggerId, row.secret_nonce, row.secret_sealed, Number(row.secret_key_version))
          const now = yield* isoNow
          if (
            row.previous_nonce === null || row.previous_sealed === null || row.previous_key_version === null ||
            row.previous_expires_at === null || row.previous_expires_at <= now
          ) return [current]
          return [current, yield* open(orgId, triggerId, row.previous_nonce, row.previous_sealed, Number(row.previous_key_version))]
        }).pipe(failed(`reading the secrets of trigger ${triggerId}`)),
      orgOf: (triggerId) =>
        (isPg
          ? sql<{ org_id: string | null }>`SELECT relavium_trigger_org(${triggerId}) AS org_id`
          : sql<{ org_id: string | null }>`SELECT org_id FROM triggers WHERE trigger_id = ${triggerId}`
        ).pipe(
          Effect.map((rows) => Option.fromNullable(rows[0]?.org_id ?? null)),
          failed("finding a trigger")
        ),
      recordDelivery: ({ deliveryId, limitPerMinute, runId, triggerId }) =>
        Effect.gen(function* () {
          const orgId = yield* currentOrgId
          return yield* sql.withTransaction(
            Effect.gen(function* () {
              const nowMs = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
              const locked = yield* sql<{ trigger_id: string }>`SELECT trigger_id FROM triggers
                WHERE org_id = ${orgId} AND trigger_id = ${triggerId} ${lockRow}`
              if (locked.length === 0) return yield* new TriggerError({ message: `no trigger ${triggerId} in this organisation` })
              const first = yield* sql<{ run_id: string }>`SELECT run_id FROM trigger_deliveries
                WHERE trigger_id = ${triggerId} AND delivery_id = ${deliveryId}`
              if (first[0] !== undefined) return { _tag: "Duplicate", runId: first[0].run_id } satisfies DeliveryOutcome
              const since = new Date(nowMs - MINUTE_MS).toISOString()
              const recent = yield* sql<{ n: number | string; oldest: string | null }>`SELECT count(*) AS n, min(received_at) AS oldest
                FROM trigger_deliveries WHERE trigger_id = ${triggerId} AND received_at > ${since}`
              const count = Number(recent[0]?.n ?? 0)
              if (count >= limitPerMinute) {
                return { _tag: "Limited", retryAfterSeconds: retryAfter(Date.parse(recent[0]!.oldest!), nowMs) } satisfies DeliveryOutcome
              }
              yield* sql`INSERT INTO trigger_deliveries ${sql.insert({
                org_id: orgId,
                trigger_id: triggerId,
                delivery_id: deliveryId,
                run_id: runId,
                received_at: new Date(nowMs).toISOString()
              })}`
              // Older deliveries have served their purpose (a replay is refused by its timestamp by then), but
              // the newest by id stays: it is a schedule's last fire.
              const kept = new Date(nowMs - DELIVERY_RETENTION_MS).toISOString()
              yield* sql`DELETE FROM trigger_deliveries WHERE trigger_id = ${triggerId} AND received_at < ${kept}
                AND delivery_id < (SELECT max(d.delivery_id) FROM trigger_deliveries d WHERE d.trigger_id = ${triggerId})`
              return { _tag: "Accepted" } satisfies DeliveryOutcome
            })
          )
        }).pipe(failed(`recording a delivery of trigger ${triggerId}`)),
      forgetDelivery: (triggerId, deliveryId) =>
        Effect.flatMap(currentOrgId, (orgId) =>
          sql`DELETE FROM trigger_deliveries WHERE org_id = ${orgId} AND trigger_id = ${triggerId} AND delivery_id = ${deliveryId}`
        ).pipe(Effect.asVoid, failed(`forgetting a delivery of trigger ${triggerId}`)),
      schedules: (isPg
        ? sql<ScheduleRow>`SELECT * FROM relavium_schedules()`
        : sql<ScheduleRow>`SELECT t.org_id, t.trigger_id, t.workflow_id, t.cron, t.timezone, t.missed, t.inputs, t.created_at,
            (SELECT max(d.delivery_id) FROM trigger_deliveries d WHERE d.trigger_id = t.trigger_id) AS last_fire
          FROM triggers t WHERE t.kind = 'schedule' ORDER BY t.created_at, t.trigger_id`
      ).pipe(
        Effect.map((rows) =>
          rows.map((row): ScheduleEntry => ({
            orgId: row.org_id,
            triggerId: row.trigger_id,
            workflowId: row.workflow_id,
            cron: row.cron,
            timezone: row.timezone,
            missed: row.missed ?? "skip",
            inputs: (row.inputs === null ? {} : fromJson(row.inputs)) as Record<string, unknown>,
            createdAt: row.created_at,
            lastFire: row.last_fire ?? undefined
          }))
        ),
        failed("listing schedules")
      )
    })
  })

interface ScheduleRow {
  readonly org_id: string
  readonly trigger_id: string
  readonly workflow_id: string
  readonly cron: string
  readonly timezone: string
  readonly missed: MissedPolicy | null
  readonly inputs: unknown
  readonly created_at: string
  readonly last_fire: string | null
}

/** `Triggers` on the deployment's `SqlClient`; webhook secrets sealed under the org's data key (`masterKeys`). */
export const layer = (masterKeys: MasterKeySettings | undefined): Layer.Layer<Triggers, never, SqlClient.SqlClient> =>
  Layer.effect(Triggers, make(masterKeys))

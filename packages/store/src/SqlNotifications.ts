/**
 * `NotificationStore` and `UsageStore` on SQL (SQLite and Postgres), tables of migration
 * `10_notifications` (migrations/Notifications.ts).
 *
 * Every operation is one transaction for `CurrentOrg` (`inOrg`: on Postgres `app.org_id` is set
 * for row-level security) and every statement also names the org. A channel's secret is sealed
 * under the org's current data key (Envelope.ts, as `provider_keys` rows are), with the channel
 * id as what it is bound to, so a secret copied to another channel or org does not open.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Layer, Option, type Redacted, Schema } from "effect"
import {
  type Budget,
  type Channel,
  ChannelSettings,
  type CostEvent,
  CurrentOrg,
  type Delivery,
  type GateToNotify,
  type KeyStoreError,
  NotificationError,
  NotificationStore,
  UsageStore
} from "@relavium/ports"
import * as Envelope from "./Envelope.js"
import { fromJson } from "./internal/Rows.js"
import { type MasterKeyring, masterKeyring, type MasterKeySettings } from "./MasterKeys.js"
import { type DataKeyRow, ensureDataKey, inOrg, openDataKey } from "./SqlKeyStore.js"

interface ChannelRow {
  readonly channel_id: string
  readonly name: string
  readonly kind: Channel["kind"]
  readonly config: unknown
  readonly secret_nonce: string | null
  readonly secret_ciphertext: string | null
  readonly data_key_version: number | null
  readonly enabled: number
  readonly created_at: string
  readonly updated_at: string
}

interface DeliveryRow {
  readonly delivery_id: string
  readonly channel_id: string
  readonly subject: string
  readonly subject_kind: "gate" | "budget"
  readonly run_id: string | null
  readonly gate_id: string | null
  readonly detail: unknown
  readonly status: Delivery["status"]
  readonly attempts: number
  readonly next_attempt_at: string
  readonly last_error: string | null
  readonly created_at: string
  readonly updated_at: string
}

const decodeSettings = Schema.decodeUnknownEither(ChannelSettings)

const channelOf = (row: ChannelRow): Channel => {
  const settings = decodeSettings(fromJson(row.config))
  return {
    id: row.channel_id,
    name: row.name,
    kind: row.kind,
    // Written through the same schema; a row that no longer decodes is shown as its kind alone.
    settings: Either.getOrElse(settings, () => ({ kind: "slack" }) as ChannelSettings),
    hasSecret: row.secret_ciphertext !== null,
    enabled: Number(row.enabled) === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at
  }
}

const deliveryOf = (row: DeliveryRow): Delivery => ({
  id: row.delivery_id,
  channelId: row.channel_id,
  subject: row.subject,
  subjectKind: row.subject_kind,
  runId: row.run_id,
  gateId: row.gate_id,
  detail: fromJson(row.detail) as Record<string, unknown>,
  status: row.status,
  attempts: Number(row.attempts),
  nextAttemptAt: row.next_attempt_at,
  lastError: row.last_error,
  createdAt: row.created_at,
  updatedAt: row.updated_at
})

/** What a channel's secret is bound to (the additional data of its seal). */
const secretLabel = (channelId: string) => `notification-channel:${channelId}`

const storeFailure = (what: string) => (e: SqlError | KeyStoreError) =>
  new NotificationError({
    message: `${what}: ${e._tag === "KeyStoreError" ? e.message : "the database failed"}`,
    reason: e._tag === "KeyStoreError" ? "sealed" : "store"
  })

const noMasterKey = () =>
  new NotificationError({
    reason: "invalid",
    message: "channel secrets are sealed under the master key, and this server has none: set RELAVIUM_MASTER_KEY (or RELAVIUM_MASTER_KEYS)"
  })

/** The store; without a master key (`ring` undefined) channels without a secret still work, a secret is refused. */
export const make = (ring: MasterKeyring | undefined): Effect.Effect<NotificationStore["Type"], never, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const acting = <A>(what: string, f: (orgId: string) => Effect.Effect<A, SqlError | KeyStoreError | NotificationError>) =>
      Effect.flatMap(CurrentOrg, ({ orgId }) =>
        inOrg(sql, orgId, f(orgId)).pipe(
          Effect.catchIf(
            (e): e is SqlError | KeyStoreError => e._tag === "SqlError" || e._tag === "KeyStoreError",
            (e) => Effect.fail(storeFailure(what)(e))
          )
        )
      )

    const channelRows = (orgId: string) =>
      sql<ChannelRow>`SELECT * FROM notification_channels WHERE org_id = ${orgId} ORDER BY name`

    const store: NotificationStore["Type"] = {
      channels: {
        put: (input) =>
          acting(`setting channel ${input.name}`, (orgId) =>
            Effect.gen(function* () {
              const existing = (yield* sql<ChannelRow>`SELECT * FROM notification_channels
                WHERE org_id = ${orgId} AND name = ${input.name}`)[0]
              const channelId = existing?.channel_id ?? `chn_${crypto.randomUUID().replaceAll("-", "")}`
              const at = new Date().toISOString()
              let sealed: { nonce: string; ciphertext: string; version: number } | null =
                existing?.secret_ciphertext != null && existing.kind === input.settings.kind
                  ? { nonce: existing.secret_nonce!, ciphertext: existing.secret_ciphertext, version: Number(existing.data_key_version) }
                  : null
              if (input.secret !== undefined) {
                if (ring === undefined) return yield* noMasterKey()
                const data = yield* ensureDataKey(sql, ring, orgId)
                const s = Envelope.sealSecret(data.key, orgId, secretLabel(channelId), data.version, input.secret)
                sealed = { ...s, version: data.version }
              }
              if (sealed === null && input.settings.kind !== "email") {
                return yield* new NotificationError({
                  reason: "invalid",
                  message: input.settings.kind === "slack" ? "a Slack channel needs its incoming webhook URL (secret)" : "a webhook channel needs its signing secret (secret)"
                })
              }
              const row = {
                org_id: orgId,
                channel_id: channelId,
                name: input.name,
                kind: input.settings.kind,
                config: JSON.stringify(input.settings),
                secret_nonce: sealed?.nonce ?? null,
                secret_ciphertext: sealed?.ciphertext ?? null,
                data_key_version: sealed?.version ?? null,
                enabled: input.enabled === false ? 0 : 1,
                created_at: existing?.created_at ?? at,
                updated_at: at
              }
              yield* sql`INSERT INTO notification_channels ${sql.insert(row)}
                ON CONFLICT (org_id, channel_id) DO UPDATE SET kind = excluded.kind, config = excluded.config,
                  secret_nonce = excluded.secret_nonce, secret_ciphertext = excluded.secret_ciphertext,
                  data_key_version = excluded.data_key_version, enabled = excluded.enabled, updated_at = excluded.updated_at`
              return channelOf(row)
            })
          ),
        list: acting("listing channels", (orgId) => Effect.map(channelRows(orgId), (rows) => rows.map(channelOf))),
        remove: (name) =>
          acting(`removing channel ${name}`, (orgId) =>
            Effect.map(
              sql<{ channel_id: string }>`DELETE FROM notification_channels WHERE org_id = ${orgId} AND name = ${name} RETURNING channel_id`,
              (rows) => rows.length > 0
            )
          ),
        secret: (channelId) =>
          acting(`opening the secret of channel ${channelId}`, (orgId) =>
            Effect.gen(function* () {
              const row = (yield* sql<ChannelRow>`SELECT * FROM notification_channels WHERE org_id = ${orgId} AND channel_id = ${channelId}`)[0]
              if (row === undefined || row.secret_ciphertext === null || row.data_key_version === null) return Option.none()
              if (ring === undefined) return yield* noMasterKey()
              const version = Number(row.data_key_version)
              const keyRow = (yield* sql<DataKeyRow>`SELECT version, master_key_id, nonce, wrapped, retired_at FROM org_data_keys
                WHERE org_id = ${orgId} AND version = ${version}`)[0]
              if (keyRow === undefined) {
                return yield* new NotificationError({ reason: "sealed", message: `the secret of channel ${row.name} names a data key the org does not have: set it again` })
              }
              const key = yield* openDataKey(ring, orgId, keyRow)
              const opened = Envelope.openSecret(key, orgId, secretLabel(channelId), version, { nonce: row.secret_nonce!, ciphertext: row.secret_ciphertext })
              if (!opened.ok) {
                return yield* new NotificationError({ reason: "sealed", message: `the secret of channel ${row.name} does not open (${opened.reason}): set it again` })
              }
              return Option.some<Redacted.Redacted<string>>(opened.value)
            })
          )
      },
      deliveries: {
        enqueue: (deliveries, now) =>
          acting("recording deliveries", (orgId) =>
            Effect.map(
              Effect.forEach(deliveries, (d) =>
                sql<{ delivery_id: string }>`INSERT INTO notification_deliveries ${sql.insert({
                  org_id: orgId,
                  delivery_id: `dlv_${crypto.randomUUID().replaceAll("-", "")}`,
                  channel_id: d.channelId,
                  subject: d.subject,
                  subject_kind: d.subjectKind,
                  run_id: d.runId ?? null,
                  gate_id: d.gateId ?? null,
                  detail: JSON.stringify(d.detail),
                  status: "pending",
                  attempts: 0,
                  next_attempt_at: now,
                  created_at: now,
                  updated_at: now
                })} ON CONFLICT (org_id, channel_id, subject) DO NOTHING RETURNING delivery_id`
              ),
              (inserted) => inserted.reduce((n, rows) => n + rows.length, 0)
            )
          ),
        claimDue: (now, leaseMs, limit) =>
          acting("claiming deliveries", (orgId) =>
            Effect.gen(function* () {
              const until = new Date(Date.parse(now) + leaseMs).toISOString()
              const due = yield* sql<DeliveryRow>`SELECT * FROM notification_deliveries
                WHERE org_id = ${orgId} AND status = 'pending' AND next_attempt_at <= ${now}
                  AND (claimed_until IS NULL OR claimed_until <= ${now})
                ORDER BY next_attempt_at, delivery_id LIMIT ${limit}`
              const claimed: Array<Delivery> = []
              for (const row of due) {
                // Claimed only if nobody claimed it since it was read.
                const won = yield* sql<{ delivery_id: string }>`UPDATE notification_deliveries SET claimed_until = ${until}
                  WHERE org_id = ${orgId} AND delivery_id = ${row.delivery_id} AND status = 'pending'
                    AND (claimed_until IS NULL OR claimed_until <= ${now}) RETURNING delivery_id`
                if (won.length > 0) claimed.push(deliveryOf(row))
              }
              return claimed
            })
          ),
        markSent: (id, attempts, now) =>
          acting("recording a delivery", (orgId) =>
            Effect.asVoid(sql`UPDATE notification_deliveries SET status = 'sent', attempts = ${attempts}, claimed_until = NULL,
              last_error = NULL, updated_at = ${now} WHERE org_id = ${orgId} AND delivery_id = ${id} AND status = 'pending'`)
          ),
        markFailed: (id, attempts, error, retryAt, now) =>
          acting("recording a delivery", (orgId) =>
            Effect.asVoid(sql`UPDATE notification_deliveries SET status = ${retryAt === undefined ? "failed" : "pending"},
              attempts = ${attempts}, last_error = ${error.slice(0, 500)}, next_attempt_at = ${retryAt ?? now},
              claimed_until = NULL, updated_at = ${now}
              WHERE org_id = ${orgId} AND delivery_id = ${id} AND status = 'pending'`)
          ),
        cancelDecided: (now) =>
          acting("cancelling deliveries", (orgId) =>
            Effect.map(
              sql<{ delivery_id: string }>`UPDATE notification_deliveries SET status = 'cancelled', claimed_until = NULL, updated_at = ${now}
                WHERE org_id = ${orgId} AND status = 'pending' AND subject_kind = 'gate' AND NOT EXISTS (
                  SELECT 1 FROM gates g WHERE g.org_id = ${orgId} AND g.run_id = notification_deliveries.run_id
                    AND g.gate_id = notification_deliveries.gate_id AND g.status = 'pending')
                RETURNING delivery_id`,
              (rows) => rows.length
            )
          ),
        list: (filter) =>
          acting("listing deliveries", (orgId) =>
            Effect.map(
              filter?.runId === undefined
                ? sql<DeliveryRow>`SELECT * FROM notification_deliveries WHERE org_id = ${orgId} ORDER BY created_at, delivery_id`
                : sql<DeliveryRow>`SELECT * FROM notification_deliveries WHERE org_id = ${orgId} AND run_id = ${filter.runId}
                    ORDER BY created_at, delivery_id`,
              (rows) => rows.map(deliveryOf)
            )
          ),
        gatesToNotify: acting("finding gates to notify", (orgId) =>
          Effect.map(
            sql<{
              run_id: string
              gate_id: string
              node_id: string
              gate_type: string
              message: string
              assignee: string | null
              expires_at: string | null
              workflow_name: string
            }>`SELECT g.run_id, g.gate_id, g.node_id, g.gate_type, g.message, g.assignee, g.expires_at, r.workflow_name
              FROM gates g JOIN runs r ON r.run_id = g.run_id AND r.org_id = g.org_id
              WHERE g.org_id = ${orgId} AND g.status = 'pending' AND NOT EXISTS (
                SELECT 1 FROM notification_deliveries d WHERE d.org_id = ${orgId} AND d.run_id = g.run_id AND d.gate_id = g.gate_id)
              ORDER BY g.created_at, g.run_id, g.gate_id`,
            (rows): ReadonlyArray<GateToNotify> =>
              rows.map((r) => ({
                runId: r.run_id,
                gateId: r.gate_id,
                nodeId: r.node_id,
                gateType: r.gate_type,
                message: r.message,
                assignee: r.assignee,
                expiresAt: r.expires_at,
                workflowName: r.workflow_name
              }))
          )
        )
      },
      links: {
        create: (link, now) =>
          acting("recording a gate link", (orgId) =>
            Effect.asVoid(sql`INSERT INTO gate_links ${sql.insert({
              org_id: orgId,
              link_id: link.linkId,
              run_id: link.runId,
              gate_id: link.gateId,
              decision: link.decision,
              expires_at: link.expiresAt,
              created_at: now
            })}`)
          ),
        find: (linkId) =>
          sql
            .withTransaction(
              Effect.zipRight(
                sql.onDialectOrElse({
                  pg: () => Effect.asVoid(sql`SELECT set_config('app.link_id', ${linkId}, true)`),
                  orElse: () => Effect.void
                }),
                sql<{
                  org_id: string
                  run_id: string
                  gate_id: string
                  decision: "approved" | "rejected"
                  expires_at: string
                  used_at: string | null
                }>`SELECT org_id, run_id, gate_id, decision, expires_at, used_at FROM gate_links WHERE link_id = ${linkId}`
              )
            )
            .pipe(
              Effect.map((rows) =>
                Option.map(Option.fromNullable(rows[0]), (r) => ({
                  orgId: r.org_id,
                  runId: r.run_id,
                  gateId: r.gate_id,
                  decision: r.decision,
                  expiresAt: r.expires_at,
                  usedAt: r.used_at
                }))
              ),
              Effect.mapError(storeFailure("reading a gate link"))
            ),
        use: (linkId, now) =>
          acting("using a gate link", (orgId) =>
            Effect.gen(function* () {
              const won = yield* sql<{ link_id: string }>`UPDATE gate_links SET used_at = ${now}
                WHERE org_id = ${orgId} AND link_id = ${linkId} AND used_at IS NULL RETURNING link_id`
              if (won.length > 0) return "used" as const
              const known = yield* sql<{ link_id: string }>`SELECT link_id FROM gate_links WHERE org_id = ${orgId} AND link_id = ${linkId}`
              return known.length > 0 ? ("already_used" as const) : ("unknown" as const)
            })
          ),
        gatePending: (runId, gateId) =>
          acting("reading a gate", (orgId) =>
            Effect.map(
              sql<{ status: string }>`SELECT status FROM gates WHERE org_id = ${orgId} AND run_id = ${runId} AND gate_id = ${gateId}`,
              (rows) => rows[0]?.status === "pending"
            )
          )
      },
      budget: {
        get: acting("reading the budget", (orgId) =>
          Effect.map(
            sql<{ monthly_limit_microcents: number | string; thresholds: unknown }>`SELECT monthly_limit_microcents, thresholds
              FROM org_budgets WHERE org_id = ${orgId}`,
            (rows) =>
              Option.map(Option.fromNullable(rows[0]), (r): Budget => ({
                monthlyLimitMicrocents: Number(r.monthly_limit_microcents),
                thresholds: fromJson(r.thresholds) as ReadonlyArray<number>
              }))
          )
        ),
        set: (budget, now) =>
          acting("setting the budget", (orgId) =>
            Effect.asVoid(sql`INSERT INTO org_budgets ${sql.insert({
              org_id: orgId,
              monthly_limit_microcents: budget.monthlyLimitMicrocents,
              thresholds: JSON.stringify(budget.thresholds),
              updated_at: now
            })} ON CONFLICT (org_id) DO UPDATE SET monthly_limit_microcents = excluded.monthly_limit_microcents,
              thresholds = excluded.thresholds, updated_at = excluded.updated_at`)
          ),
        recordAlert: (period, threshold, spent, now) =>
          acting("recording a budget alert", (orgId) =>
            Effect.map(
              sql<{ threshold: number }>`INSERT INTO budget_alerts ${sql.insert({
                org_id: orgId,
                period,
                threshold,
                spent_microcents: spent,
                sent_at: now
              })} ON CONFLICT (org_id, period, threshold) DO NOTHING RETURNING threshold`,
              (rows) => rows.length > 0
            )
          )
      },
      orgsToNotify: sql
        .onDialectOrElse({
          pg: () => sql<{ org_id: string }>`SELECT org_id FROM relavium_orgs_to_notify()`,
          orElse: () => sql<{ org_id: string }>`SELECT DISTINCT org_id FROM notification_channels WHERE enabled = 1 ORDER BY org_id`
        })
        .pipe(
          Effect.map((rows) => rows.map((r) => r.org_id)),
          Effect.mapError(storeFailure("listing the orgs to notify"))
        )
    }
    return store
  })

/** The store; fails to build, naming the variable, when the master keys given are malformed. */
export const layer = (options: Option.Option<MasterKeySettings>): Layer.Layer<NotificationStore, KeyStoreError, SqlClient.SqlClient> =>
  Layer.effect(
    NotificationStore,
    Option.match(options, {
      onNone: () => make(undefined),
      onSome: (settings) => Effect.flatMap(Either.match(masterKeyring(settings), { onLeft: Effect.fail, onRight: Effect.succeed }), make)
    })
  )

// ---------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------

interface CostRow {
  readonly run_id: string
  readonly timestamp: string
  readonly payload: unknown
  readonly workflow_name: string
  readonly started: unknown
  readonly actor: string | null
}

const costEventOf = (row: CostRow): CostEvent => {
  const cost = fromJson(row.payload) as { model?: string; inputTokens?: number; outputTokens?: number; costMicrocents?: number }
  const started = row.started === null ? undefined : (fromJson(row.started) as { trigger?: { triggerId?: string; kind?: string } })
  const trigger = started?.trigger
  return {
    runId: row.run_id,
    timestamp: row.timestamp,
    workflow: row.workflow_name,
    model: cost.model ?? "unknown",
    inputTokens: Number(cost.inputTokens ?? 0),
    outputTokens: Number(cost.outputTokens ?? 0),
    costMicrocents: Number(cost.costMicrocents ?? 0),
    member: row.actor ?? "unknown",
    trigger: trigger?.triggerId === undefined ? "manual" : `${trigger.kind ?? "trigger"}:${trigger.triggerId}`
  }
}

export const makeUsage: Effect.Effect<UsageStore["Type"], never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return {
    costEvents: (from, to) =>
      Effect.flatMap(CurrentOrg, ({ orgId }) =>
        inOrg(
          sql,
          orgId,
          sql<CostRow>`SELECT e.run_id, e.timestamp, e.payload, r.workflow_name, s.payload AS started,
              (SELECT a.actor FROM audit_log a WHERE a.org_id = ${orgId} AND a.action = 'run.start' AND a.target = e.run_id
                ORDER BY a.seq LIMIT 1) AS actor
            FROM run_events e
            JOIN runs r ON r.run_id = e.run_id AND r.org_id = e.org_id
            LEFT JOIN run_events s ON s.run_id = e.run_id AND s.seq = 0 AND s.type = 'run:started'
            WHERE e.org_id = ${orgId} AND e.type = 'cost:updated' AND e.timestamp >= ${from} AND e.timestamp < ${to}
            ORDER BY e.timestamp, e.run_id, e.seq`
        ).pipe(
          Effect.map((rows) => rows.map(costEventOf)),
          Effect.mapError(storeFailure("reading usage"))
        )
      )
  }
})

export const layerUsage: Layer.Layer<UsageStore, never, SqlClient.SqlClient> = Layer.effect(UsageStore, makeUsage)

/**
 * `Metering` on SQL (SQLite for one process, Postgres shared by every gateway replica), on the
 * tables of migration `8_inference` (packages/store/src/migrations/Inference.ts).
 *
 * - Every operation is one transaction for the org (`forOrg`): on Postgres the store's client sets
 *   `app.org_id` for it, so row-level security keeps each org to its own rows.
 * - A reservation makes the month's counter rows if missing (the limit copied from the org's and
 *   the token's budget settings), then raises `reserved` with one conditional `UPDATE … WHERE
 *   spent + reserved + $worst <= limit` per scope, the org's row first and then the token's (one
 *   lock order, no deadlock). A row the condition refuses fails the transaction, which undoes
 *   the org's hold too. Concurrent reservations wait on the row lock and re-check the condition
 *   on the row as the previous one left it, so together they never exceed the budget.
 * - Settling inserts the ledger row (`ON CONFLICT (request_id) DO NOTHING`) and, only when it
 *   was inserted, moves the hold from `reserved` to the real cost in `spent`, in the same
 *   transaction: a second settle of the same request changes nothing.
 * - Settling counts in the month it happens: a request held across the end of a month is spent in
 *   the new month, and its hold stays in the old month's `reserved` (it only lowers what is left
 *   of a month that is over).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Layer, ParseResult, Schema } from "effect"
import { forOrg } from "@relavium/ports"
import {
  BudgetExceeded,
  type BudgetScope,
  type LedgerRow,
  Metering,
  MeteringError,
  monthOf,
  type Reservation,
  type Usage
} from "./Metering.js"

const Microcents = Schema.Int.pipe(Schema.nonNegative(), Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER))
const Id = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))
const OptionalId = Schema.UndefinedOr(Id)

const ReserveInput = Schema.Struct({ requestId: Id, orgId: Id, tokenId: OptionalId, worstCaseMicrocents: Microcents })
const ReservationInput = Schema.Struct({ requestId: Id, orgId: Id, tokenId: OptionalId, heldMicrocents: Microcents })
const UsageInput = Schema.Struct({
  provider: Schema.String.pipe(Schema.maxLength(200)),
  model: Schema.String.pipe(Schema.maxLength(200)),
  inputTokens: Microcents,
  outputTokens: Microcents,
  costMicrocents: Microcents,
  status: Schema.Literal("ok", "error", "cut", "cancelled"),
  durationMs: Microcents
})
const BudgetInput = Schema.Struct({
  scope: Schema.Literal("org", "token"),
  tokenId: Schema.optional(OptionalId),
  monthlyMicrocents: Schema.UndefinedOr(Microcents)
}).pipe(
  Schema.filter((s) => (s.scope === "token" && s.tokenId === undefined ? "a token budget names its tokenId" : true))
)
const IsoRange = Schema.Struct({ from: Schema.String, to: Schema.String })

/** Decodes an outside input, or fails with a `MeteringError` naming what and where. */
const decode = <A, I>(schema: Schema.Schema<A, I>, what: string, value: unknown): Effect.Effect<A, MeteringError> =>
  Schema.decodeUnknown(schema)(value).pipe(
    Effect.mapError(
      (error) => new MeteringError({ message: `invalid ${what}: ${ParseResult.TreeFormatter.formatErrorSync(error)}` })
    )
  )

const sqlFailure = (what: string) => (cause: SqlError) =>
  new MeteringError({ message: `metering could not ${what}: ${cause.message}`, cause })

type Num = number | string | bigint
const num = (value: Num | null): number => (value === null ? 0 : Number(value))

interface LedgerSqlRow {
  readonly request_id: string
  readonly org_id: string
  readonly token_id: string | null
  readonly provider: string
  readonly model: string
  readonly input_tokens: Num
  readonly output_tokens: Num
  readonly cost_microcents: Num
  readonly status: Usage["status"]
  readonly duration_ms: Num
  readonly at: string
}

const toLedgerRow = (row: LedgerSqlRow): LedgerRow => ({
  requestId: row.request_id,
  orgId: row.org_id,
  tokenId: row.token_id ?? undefined,
  provider: row.provider,
  model: row.model,
  inputTokens: num(row.input_tokens),
  outputTokens: num(row.output_tokens),
  costMicrocents: num(row.cost_microcents),
  status: row.status,
  durationMs: num(row.duration_ms),
  at: row.at
})

/** The budget scopes a request counts against, in lock order: the org's, then its token's. */
const scopesOf = (tokenId: string | undefined): ReadonlyArray<readonly [BudgetScope, string]> =>
  tokenId === undefined ? [["org", ""]] : [["org", ""], ["token", tokenId]]

/** `Metering` on the `SqlClient` provided (migrated to `8_inference`). */
export const layer: Layer.Layer<Metering, never, SqlClient.SqlClient> = Layer.effect(
  Metering,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

    /** One transaction for `orgId` (on Postgres, `app.org_id` set for row-level security). */
    const inOrg = <A, E>(orgId: string, effect: Effect.Effect<A, E>) => forOrg(orgId)(sql.withTransaction(effect))

    /** This month's counter of a scope, made (with the scope's limit) if it is not there yet. */
    const ensureCounter = (orgId: string, scope: BudgetScope, tokenId: string, period: string) =>
      sql`INSERT INTO inference_budgets (org_id, scope, token_id, period, limit_microcents, spent, reserved)
        VALUES (${orgId}, ${scope}, ${tokenId}, ${period},
          (SELECT monthly_microcents FROM inference_budget_limits
            WHERE org_id = ${orgId} AND scope = ${scope} AND token_id = ${tokenId}), 0, 0)
        ON CONFLICT (org_id, scope, token_id, period) DO NOTHING`

    const reserve = (raw: Parameters<Metering["Type"]["reserve"]>[0]) =>
      Effect.gen(function* () {
        const input = yield* decode(ReserveInput, "reservation", raw)
        const period = monthOf(yield* now)
        const w = input.worstCaseMicrocents
        yield* inOrg(
          input.orgId,
          Effect.gen(function* () {
            for (const [scope, tokenId] of scopesOf(input.tokenId)) {
              yield* ensureCounter(input.orgId, scope, tokenId, period)
              const held = yield* sql<{ limit_microcents: Num | null }>`UPDATE inference_budgets
                SET reserved = reserved + ${w}
                WHERE org_id = ${input.orgId} AND scope = ${scope} AND token_id = ${tokenId} AND period = ${period}
                  AND (limit_microcents IS NULL OR spent + reserved + ${w} <= limit_microcents)
                RETURNING limit_microcents`
              if (held.length === 0) {
                const [row] = yield* sql<{ limit_microcents: Num | null }>`SELECT limit_microcents FROM inference_budgets
                  WHERE org_id = ${input.orgId} AND scope = ${scope} AND token_id = ${tokenId} AND period = ${period}`
                return yield* new BudgetExceeded({
                  scope,
                  limitMicrocents: num(row?.limit_microcents ?? null),
                  message: `the ${scope}'s monthly budget is spent`
                })
              }
            }
          })
        ).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(sqlFailure("reserve budget")(e))))
        return {
          requestId: input.requestId,
          orgId: input.orgId,
          tokenId: input.tokenId,
          heldMicrocents: w
        } satisfies Reservation
      })

    const settle = (rawReservation: Reservation, rawUsage: Usage) =>
      Effect.gen(function* () {
        const reservation = yield* decode(ReservationInput, "reservation", rawReservation)
        const usage = yield* decode(UsageInput, "usage", rawUsage)
        const at = yield* now
        const period = monthOf(at)
        yield* inOrg(
          reservation.orgId,
          Effect.gen(function* () {
            const inserted = yield* sql<{ request_id: string }>`INSERT INTO inference_ledger
              (org_id, request_id, token_id, provider, model, input_tokens, output_tokens, cost_microcents, status, duration_ms, at)
              VALUES (${reservation.orgId}, ${reservation.requestId}, ${reservation.tokenId ?? null}, ${usage.provider},
                ${usage.model}, ${usage.inputTokens}, ${usage.outputTokens}, ${usage.costMicrocents}, ${usage.status},
                ${usage.durationMs}, ${at})
              ON CONFLICT (request_id) DO NOTHING
              RETURNING request_id`
            if (inserted.length === 0) return
            const held = reservation.heldMicrocents
            for (const [scope, tokenId] of scopesOf(reservation.tokenId)) {
              yield* ensureCounter(reservation.orgId, scope, tokenId, period)
              yield* sql`UPDATE inference_budgets
                SET spent = spent + ${usage.costMicrocents},
                  reserved = CASE WHEN reserved >= ${held} THEN reserved - ${held} ELSE 0 END
                WHERE org_id = ${reservation.orgId} AND scope = ${scope} AND token_id = ${tokenId} AND period = ${period}`
            }
          })
        ).pipe(Effect.mapError(sqlFailure("settle a request")))
      })

    const setBudget = (orgId: string, raw: Parameters<Metering["Type"]["setBudget"]>[1]) =>
      Effect.gen(function* () {
        const org = yield* decode(Id, "org id", orgId)
        const setting = yield* decode(BudgetInput, "budget", raw)
        const tokenId = setting.scope === "token" ? (setting.tokenId ?? "") : ""
        const period = monthOf(yield* now)
        const limit = setting.monthlyMicrocents
        yield* inOrg(
          org,
          Effect.gen(function* () {
            if (limit === undefined) {
              yield* sql`DELETE FROM inference_budget_limits WHERE org_id = ${org} AND scope = ${setting.scope} AND token_id = ${tokenId}`
            } else {
              yield* sql`INSERT INTO inference_budget_limits (org_id, scope, token_id, monthly_microcents)
                VALUES (${org}, ${setting.scope}, ${tokenId}, ${limit})
                ON CONFLICT (org_id, scope, token_id) DO UPDATE SET monthly_microcents = ${limit}`
            }
            yield* ensureCounter(org, setting.scope, tokenId, period)
            yield* sql`UPDATE inference_budgets SET limit_microcents = ${limit ?? null}
              WHERE org_id = ${org} AND scope = ${setting.scope} AND token_id = ${tokenId} AND period = ${period}`
          })
        ).pipe(Effect.mapError(sqlFailure("set a budget")))
      })

    const ledger = (orgId: string, rawRange: { readonly from: string; readonly to: string }) =>
      Effect.gen(function* () {
        const org = yield* decode(Id, "org id", orgId)
        const range = yield* decode(IsoRange, "ledger range", rawRange)
        const rows = yield* inOrg(
          org,
          sql<LedgerSqlRow>`SELECT request_id, org_id, token_id, provider, model, input_tokens, output_tokens,
              cost_microcents, status, duration_ms, at
            FROM inference_ledger WHERE org_id = ${org} AND at >= ${range.from} AND at < ${range.to}
            ORDER BY at, request_id`
        ).pipe(Effect.mapError(sqlFailure("read the ledger")))
        return rows.map(toLedgerRow)
      })

    return Metering.of({ reserve, settle, setBudget, ledger })
  })
)

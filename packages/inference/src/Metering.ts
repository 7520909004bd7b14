/**
 * The two services every managed inference request goes through, apart from the HTTP shell:
 *
 * - `Metering` holds budget before the upstream call (the worst case: input tokens plus the output
 *   cap) and settles it afterwards to the real cost, writing exactly one ledger row per request in
 *   the same step. Concurrent requests can never spend more than a budget: a reservation either fits
 *   under `spent + reserved` or is refused.
 * - `RateLimiter` counts requests and tokens per minute per org and per token, shared by every
 *   gateway replica (a Redis sliding window in the cloud).
 *
 * Costs are integer micro-cents (1 USD = 100 * 1_000_000 micro-cents), as in `cost:updated`.
 * No prompt, completion or transcript ever reaches these services: counts, model, timing, status.
 */
import { Context, Data, Effect, Layer, Ref } from "effect"

/** How a metered request ended. `cut`: the upstream stream stopped midway; `cancelled`: the client left. */
export type UsageStatus = "ok" | "error" | "cut" | "cancelled"

export interface Usage {
  readonly provider: string
  readonly model: string
  readonly inputTokens: number
  readonly outputTokens: number
  readonly costMicrocents: number
  readonly status: UsageStatus
  readonly durationMs: number
}

export interface LedgerRow extends Usage {
  readonly requestId: string
  readonly orgId: string
  readonly tokenId: string | undefined
  readonly at: string
}

export interface Reservation {
  readonly requestId: string
  readonly orgId: string
  readonly tokenId: string | undefined
  readonly heldMicrocents: number
}

export type BudgetScope = "org" | "token"

export class BudgetExceeded extends Data.TaggedError("BudgetExceeded")<{
  readonly scope: BudgetScope
  readonly limitMicrocents: number
  readonly message: string
}> {}

export class RateLimited extends Data.TaggedError("RateLimited")<{
  readonly scope: BudgetScope
  readonly limit: "requests" | "tokens"
  readonly retryAfterMs: number
  readonly message: string
}> {}

export class MeteringError extends Data.TaggedError("MeteringError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export interface BudgetSetting {
  readonly scope: BudgetScope
  /** Required when `scope` is `token`. */
  readonly tokenId?: string | undefined
  /** Per calendar month (UTC). `undefined` removes the budget. */
  readonly monthlyMicrocents: number | undefined
}

export class Metering extends Context.Tag("@relavium/inference/Metering")<
  Metering,
  {
    /** Holds `worstCaseMicrocents` against the org's and the token's budgets of the current month. */
    readonly reserve: (input: {
      readonly requestId: string
      readonly orgId: string
      readonly tokenId: string | undefined
      readonly worstCaseMicrocents: number
    }) => Effect.Effect<Reservation, BudgetExceeded | MeteringError>
    /**
     * Releases the hold and records the real usage: one ledger row, the spend moved from reserved
     * to spent. Settling a reservation twice records nothing the second time.
     */
    readonly settle: (reservation: Reservation, usage: Usage) => Effect.Effect<void, MeteringError>
    readonly setBudget: (orgId: string, setting: BudgetSetting) => Effect.Effect<void, MeteringError>
    readonly ledger: (
      orgId: string,
      range: { readonly from: string; readonly to: string }
    ) => Effect.Effect<ReadonlyArray<LedgerRow>, MeteringError>
  }
>() {}

export interface RateLimits {
  readonly requestsPerMinute?: number | undefined
  readonly tokensPerMinute?: number | undefined
}

export class RateLimiter extends Context.Tag("@relavium/inference/RateLimiter")<
  RateLimiter,
  {
    /** Counts one request of `tokens` (worst case) for the org and the token, or refuses it. */
    readonly acquire: (input: {
      readonly orgId: string
      readonly tokenId: string | undefined
      readonly tokens: number
    }) => Effect.Effect<void, RateLimited | MeteringError>
  }
>() {}

/** No limits at all: for a gateway configured without any. */
export const layerRateLimiterNone: Layer.Layer<RateLimiter> = Layer.succeed(RateLimiter, {
  acquire: () => Effect.void
})

/** The month a timestamp falls in, `YYYY-MM` (UTC): the period every budget counts in. */
export const monthOf = (iso: string): string => iso.slice(0, 7)

/** A memory `Metering` for one process (tests, the monolith): same rules as the SQL one. */
export const layerMeteringMemory: Layer.Layer<Metering> = Layer.effect(
  Metering,
  Effect.gen(function* () {
    interface Counter {
      spent: number
      reserved: number
    }
    interface State {
      readonly budgets: Map<string, number>
      readonly counters: Map<string, Counter>
      readonly settled: Set<string>
      readonly rows: Array<LedgerRow>
    }
    const state = yield* Ref.make<State>({ budgets: new Map(), counters: new Map(), settled: new Set(), rows: [] })
    const keyOf = (orgId: string, scope: BudgetScope, tokenId: string | undefined) =>
      scope === "org" ? `${orgId}|org` : `${orgId}|token|${tokenId ?? ""}`
    const month = Effect.map(Effect.clockWith((clock) => clock.currentTimeMillis), (ms) => monthOf(new Date(ms).toISOString()))
    return {
      reserve: (input) =>
        Effect.flatMap(month, (period) =>
          Ref.modify(state, (s): readonly [Effect.Effect<Reservation, BudgetExceeded>, State] => {
            const scopes: Array<readonly [BudgetScope, string]> = [["org", keyOf(input.orgId, "org", undefined)]]
            if (input.tokenId !== undefined) scopes.push(["token", keyOf(input.orgId, "token", input.tokenId)])
            for (const [scope, key] of scopes) {
              const limit = s.budgets.get(key)
              const counter = s.counters.get(`${key}|${period}`) ?? { spent: 0, reserved: 0 }
              if (limit !== undefined && counter.spent + counter.reserved + input.worstCaseMicrocents > limit) {
                return [
                  Effect.fail(new BudgetExceeded({ scope, limitMicrocents: limit, message: `the ${scope}'s monthly budget is spent` })),
                  s
                ]
              }
            }
            for (const [, key] of scopes) {
              const counter = s.counters.get(`${key}|${period}`) ?? { spent: 0, reserved: 0 }
              s.counters.set(`${key}|${period}`, { spent: counter.spent, reserved: counter.reserved + input.worstCaseMicrocents })
            }
            return [
              Effect.succeed({
                requestId: input.requestId,
                orgId: input.orgId,
                tokenId: input.tokenId,
                heldMicrocents: input.worstCaseMicrocents
              }),
              s
            ]
          }).pipe(Effect.flatten)
        ),
      settle: (reservation, usage) =>
        Effect.flatMap(Effect.zip(month, Effect.clockWith((clock) => clock.currentTimeMillis)), ([period, ms]) =>
          Ref.update(state, (s) => {
            if (s.settled.has(reservation.requestId)) return s
            s.settled.add(reservation.requestId)
            const keys = [keyOf(reservation.orgId, "org", undefined)]
            if (reservation.tokenId !== undefined) keys.push(keyOf(reservation.orgId, "token", reservation.tokenId))
            for (const key of keys) {
              const counter = s.counters.get(`${key}|${period}`) ?? { spent: 0, reserved: 0 }
              s.counters.set(`${key}|${period}`, {
                spent: counter.spent + usage.costMicrocents,
                reserved: Math.max(0, counter.reserved - reservation.heldMicrocents)
              })
            }
            s.rows.push({
              ...usage,
              requestId: reservation.requestId,
              orgId: reservation.orgId,
              tokenId: reservation.tokenId,
              at: new Date(ms).toISOString()
            })
            return s
          })
        ),
      setBudget: (orgId, setting) =>
        Ref.update(state, (s) => {
          const key = keyOf(orgId, setting.scope, setting.tokenId)
          if (setting.monthlyMicrocents === undefined) s.budgets.delete(key)
          else s.budgets.set(key, setting.monthlyMicrocents)
          return s
        }),
      ledger: (orgId, range) =>
        Effect.map(Ref.get(state), (s) =>
          s.rows.filter((row) => row.orgId === orgId && row.at >= range.from && row.at < range.to)
        )
    }
  })
)

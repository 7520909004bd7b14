/**
 * Migration 8 (`8_inference`): the managed gateway's metering (`SqlMetering` in
 * @relavium/inference). Every table has `org_id` and, on Postgres, row-level security like the
 * other org tables (`rowLevelSecurity`): a gateway connected as `relavium_app` reads and writes
 * only the rows of the org its transaction names.
 *
 * - `inference_ledger`: one row per metered request (counts, model, cost, status, timing; never a
 *   prompt or a completion). `request_id` is unique: settling a request twice inserts nothing the
 *   second time, and the spend it moves is moved once.
 * - `inference_budget_limits`: the monthly budget of an org (`scope` `org`, `token_id` empty) or of
 *   one of its API tokens (`scope` `token`), in micro-cents.
 * - `inference_budgets`: one counter per scope and month (`period` `YYYY-MM`, UTC) with the limit
 *   it counts against (copied from the limits when the month's row is made, changed with them),
 *   what is `spent` and what is `reserved` by requests in flight. A reservation is one conditional
 *   `UPDATE … WHERE spent + reserved + $worst <= limit`, the org's row first and then the
 *   token's, in one transaction: concurrent reservations wait on the row and never overshoot.
 */

interface Types {
  readonly bigint: string
}

const tables = (t: Types): ReadonlyArray<string> => [
  `CREATE TABLE inference_ledger (
    org_id text NOT NULL DEFAULT 'local',
    request_id text PRIMARY KEY,
    token_id text,
    provider text NOT NULL,
    model text NOT NULL,
    input_tokens ${t.bigint} NOT NULL,
    output_tokens ${t.bigint} NOT NULL,
    cost_microcents ${t.bigint} NOT NULL,
    status text NOT NULL CHECK (status IN ('ok', 'error', 'cut', 'cancelled')),
    duration_ms ${t.bigint} NOT NULL,
    at text NOT NULL
  )`,
  `CREATE INDEX inference_ledger_by_org ON inference_ledger (org_id, at)`,
  `CREATE TABLE inference_budget_limits (
    org_id text NOT NULL DEFAULT 'local',
    scope text NOT NULL CHECK (scope IN ('org', 'token')),
    token_id text NOT NULL DEFAULT '',
    monthly_microcents ${t.bigint} NOT NULL,
    PRIMARY KEY (org_id, scope, token_id)
  )`,
  `CREATE TABLE inference_budgets (
    org_id text NOT NULL DEFAULT 'local',
    scope text NOT NULL CHECK (scope IN ('org', 'token')),
    token_id text NOT NULL DEFAULT '',
    period text NOT NULL,
    limit_microcents ${t.bigint},
    spent ${t.bigint} NOT NULL DEFAULT 0,
    reserved ${t.bigint} NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, scope, token_id, period)
  )`
]

/** The org tables this migration creates (each gets row-level security on Postgres). */
export const inferenceTables = ["inference_ledger", "inference_budget_limits", "inference_budgets"] as const

export const inferenceSqlite: ReadonlyArray<string> = tables({ bigint: "integer" })

export const inferencePg = (rowLevelSecurity: (table: string) => ReadonlyArray<string>): ReadonlyArray<string> => [
  ...tables({ bigint: "bigint" }),
  ...inferenceTables.flatMap(rowLevelSecurity)
]

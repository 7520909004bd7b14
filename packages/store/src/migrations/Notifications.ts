/**
 * Migration `10_notifications`: gate notifications, their deliveries, one-click gate links and
 * the org's monthly budget with the alerts already sent (docs/notifications.md, docs/cost.md).
 *
 * - `notification_channels`: an org's channels (`email`, `slack`, `webhook`). `config` holds what
 *   is not secret (SMTP host, port, sender, recipients; the webhook's URL); the secret part (SMTP
 *   password, Slack webhook URL, webhook signing secret) is sealed under the org's data key
 *   (`secret_nonce`, `secret_ciphertext`, `data_key_version`), as `provider_keys` rows are.
 * - `notification_deliveries`: one row per (channel, subject): a gate that opened or a budget
 *   threshold reached. Its status (`pending`, `sent`, `failed`, `cancelled`), attempts, the time
 *   of the next attempt, the last error (never a secret) and a claim (`claimed_until`) so two
 *   processes never send the same delivery at once.
 * - `gate_links`: the one-click approve/reject links, by link id (the token itself is never
 *   stored: it is signed, the row only records that it was used).
 * - `org_budgets`, `budget_alerts`: the monthly budget and thresholds, and which threshold of
 *   which month was already notified (its primary key keeps it once).
 *
 * On Postgres each table has row-level security by org; `relavium_orgs_to_notify()` (SECURITY
 * DEFINER, like the recovery sweeps) lists the orgs that have an enabled channel, for the sweep
 * that then acts for each of them under row-level security again.
 */
import { rowLevelSecurity } from "../Migrations.js"

interface Types {
  readonly json: string
  readonly bigint: string
}

/** The new tables with `org_id` (row-level security on Postgres). */
export const notificationTables = [
  "notification_channels",
  "notification_deliveries",
  "gate_links",
  "org_budgets",
  "budget_alerts"
] as const

const tables = (t: Types): ReadonlyArray<string> => [
  `CREATE TABLE notification_channels (
    org_id text NOT NULL DEFAULT 'local',
    channel_id text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('email', 'slack', 'webhook')),
    config ${t.json} NOT NULL,
    secret_nonce text,
    secret_ciphertext text,
    data_key_version integer,
    enabled integer NOT NULL DEFAULT 1,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    PRIMARY KEY (org_id, channel_id),
    UNIQUE (org_id, name)
  )`,
  `CREATE TABLE notification_deliveries (
    org_id text NOT NULL DEFAULT 'local',
    delivery_id text PRIMARY KEY,
    channel_id text NOT NULL,
    subject text NOT NULL,
    subject_kind text NOT NULL CHECK (subject_kind IN ('gate', 'budget')),
    run_id text,
    gate_id text,
    detail ${t.json} NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at text NOT NULL,
    claimed_until text,
    last_error text,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    UNIQUE (org_id, channel_id, subject)
  )`,
  `CREATE INDEX notification_deliveries_due ON notification_deliveries (org_id, status, next_attempt_at)`,
  `CREATE INDEX notification_deliveries_by_gate ON notification_deliveries (org_id, run_id, gate_id)`,
  `CREATE TABLE gate_links (
    org_id text NOT NULL DEFAULT 'local',
    link_id text PRIMARY KEY,
    run_id text NOT NULL,
    gate_id text NOT NULL,
    decision text NOT NULL CHECK (decision IN ('approved', 'rejected')),
    expires_at text NOT NULL,
    used_at text,
    created_at text NOT NULL
  )`,
  `CREATE TABLE org_budgets (
    org_id text PRIMARY KEY DEFAULT 'local',
    monthly_limit_microcents ${t.bigint} NOT NULL,
    thresholds ${t.json} NOT NULL,
    updated_at text NOT NULL
  )`,
  `CREATE TABLE budget_alerts (
    org_id text NOT NULL DEFAULT 'local',
    period text NOT NULL,
    threshold integer NOT NULL,
    spent_microcents ${t.bigint} NOT NULL,
    sent_at text NOT NULL,
    PRIMARY KEY (org_id, period, threshold)
  )`
]

export const notificationsSqlite: ReadonlyArray<string> = tables({ json: "text", bigint: "integer" })

/** A function, not a constant: Migrations.ts imports this module and `rowLevelSecurity` from it. */
export const notificationsPg = (): ReadonlyArray<string> => [
  ...tables({ json: "json", bigint: "bigint" }),
  ...notificationTables.flatMap(rowLevelSecurity),
  // A link is opened before its org is known: the transaction names the link id (128 random
  // bits, only in the signed link) in `app.link_id`, which makes exactly that row readable and
  // its use writable, as `api_tokens_by_hash` does for a token.
  `CREATE POLICY gate_links_by_id ON gate_links FOR SELECT
    USING (link_id = nullif(current_setting('app.link_id', true), ''))`,
  `CREATE POLICY gate_links_use_by_id ON gate_links FOR UPDATE
    USING (link_id = nullif(current_setting('app.link_id', true), ''))
    WITH CHECK (link_id = nullif(current_setting('app.link_id', true), ''))`,
  `CREATE FUNCTION relavium_orgs_to_notify()
    RETURNS TABLE (org_id text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
    $$ SELECT DISTINCT org_id FROM notification_channels WHERE enabled = 1 ORDER BY org_id $$`,
  `REVOKE ALL ON FUNCTION relavium_orgs_to_notify() FROM PUBLIC`,
  `DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'relavium_app') THEN
      GRANT EXECUTE ON FUNCTION relavium_orgs_to_notify() TO relavium_app;
    END IF;
  END $$`
]

/**
 * Migration `9_triggers` (`SqlTriggers`, docs/triggers.md): webhook and schedule triggers and the
 * deliveries that de-duplicate them.
 *
 * - `triggers`: one row per trigger of an org and a workflow. A webhook's secrets (the current
 *   one, and the previous one while a rotation's window lasts) are sealed under the org's data
 *   key (`org_data_keys`, as provider keys are): `*_nonce`, `*_sealed`, `*_key_version`; no
 *   column holds a secret in the clear.
 * - `trigger_deliveries`: one row per accepted delivery (a webhook's `webhook-id`, a schedule's
 *   fire time), unique per trigger, naming the run it started: inserting it first is what makes
 *   a retried delivery or a second replica's fire start no second run.
 * - Postgres: row-level security on both (the org of the transaction), and two SECURITY DEFINER
 *   functions for the two lookups made before an org is known: `relavium_trigger_org(id)` (the
 *   hook route: the org of one trigger id, nothing else) and `relavium_schedules()` (the
 *   scheduler: every schedule trigger with its org and newest fire, never a secret).
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

/** The org tables this migration makes (row-level security on Postgres). */
export const tables = ["triggers", "trigger_deliveries"] as const

const ddl = (json: string): ReadonlyArray<string> => [
  `CREATE TABLE triggers (
    org_id text NOT NULL DEFAULT 'local',
    trigger_id text PRIMARY KEY,
    workflow_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('webhook', 'schedule')),
    name text NOT NULL,
    input_template ${json},
    inputs ${json},
    cron text,
    timezone text,
    missed text CHECK (missed IS NULL OR missed IN ('run_once', 'skip')),
    rate_limit_per_minute integer NOT NULL,
    secret_nonce text,
    secret_sealed text,
    secret_key_version integer,
    previous_nonce text,
    previous_sealed text,
    previous_key_version integer,
    previous_expires_at text,
    created_by text NOT NULL,
    created_at text NOT NULL
  )`,
  `CREATE INDEX triggers_by_org ON triggers (org_id, created_at)`,
  `CREATE TABLE trigger_deliveries (
    org_id text NOT NULL DEFAULT 'local',
    trigger_id text NOT NULL REFERENCES triggers (trigger_id) ON DELETE CASCADE,
    delivery_id text NOT NULL,
    run_id text NOT NULL,
    received_at text NOT NULL,
    PRIMARY KEY (trigger_id, delivery_id)
  )`,
  `CREATE INDEX trigger_deliveries_by_time ON trigger_deliveries (trigger_id, received_at)`
]

const definerFunctions = (rowLevelSecurity: (table: string) => ReadonlyArray<string>, appRole: string): ReadonlyArray<string> => [
  ...tables.flatMap(rowLevelSecurity),
  `CREATE FUNCTION relavium_trigger_org(id text) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
    $$ SELECT org_id FROM triggers WHERE trigger_id = id $$`,
  `CREATE FUNCTION relavium_schedules()
    RETURNS TABLE (org_id text, trigger_id text, workflow_id text, cron text, timezone text, missed text,
      inputs json, created_at text, last_fire text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
    $$ SELECT t.org_id, t.trigger_id, t.workflow_id, t.cron, t.timezone, t.missed, t.inputs, t.created_at,
         (SELECT max(d.delivery_id) FROM trigger_deliveries d WHERE d.trigger_id = t.trigger_id)
       FROM triggers t WHERE t.kind = 'schedule' ORDER BY t.created_at, t.trigger_id $$`,
  `REVOKE ALL ON FUNCTION relavium_trigger_org(text), relavium_schedules() FROM PUBLIC`,
  `DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${appRole}') THEN
      GRANT EXECUTE ON FUNCTION relavium_trigger_org(text), relavium_schedules() TO ${appRole};
      GRANT SELECT, INSERT, UPDATE, DELETE ON triggers, trigger_deliveries TO ${appRole};
    END IF;
  END $$`
]

const run = (statements: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.forEach(statements, (s) => sql.unsafe(s), { discard: true }))

/** The migration, given the row-level security statements and the app role of Migrations.ts. */
export const migration = (
  rowLevelSecurity: (table: string) => ReadonlyArray<string>,
  appRole: string
): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () => run([...ddl("json"), ...definerFunctions(rowLevelSecurity, appRole)]),
      orElse: () => run(ddl("text"))
    })
  )

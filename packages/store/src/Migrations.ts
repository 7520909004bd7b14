/**
 * The Relavium schema: one migration set that creates the same tables on SQLite
 * and on Postgres (dialect differences are column types only), run by
 * `@effect/sql`'s `Migrator` inside one transaction, so a failed migration
 * leaves the database as it was.
 *
 * Conventions, the same in both dialects:
 * - every table has `org_id text not null default 'local'` (cloud tenancy);
 * - ids are text (UUIDs from the engine, but any string the engine chooses);
 * - timestamps are ISO-8601 UTC text, so they round-trip exactly and compare
 *   in time order as strings;
 * - JSON columns are `json` on Postgres (keeps the text as written and accepts
 *   `\u0000`, which model output may contain) and `text` on SQLite.
 *
 * Tables marked "projection" are derived from the run event log and written in
 * the same transaction as the events that change them.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { inferencePg, inferenceSqlite, inferenceTables } from "./migrations/Inference.js"
import * as Triggers from "./migrations/Triggers.js"
import { chatsDistributed } from "./migrations/ChatsDistributed.js"
import { notificationsPg, notificationsSqlite, notificationTables } from "./migrations/Notifications.js"

/** The table that records applied migrations; its presence marks a Relavium database. */
export const migrationsTable = "relavium_migrations"

interface Types {
  readonly json: string
  readonly bigint: string
}

const sqliteTypes: Types = { json: "text", bigint: "integer" }
const pgTypes: Types = { json: "json", bigint: "bigint" }

const statements = (t: Types): ReadonlyArray<string> => [
  `CREATE TABLE projects (
    org_id text NOT NULL DEFAULT 'local',
    project_id text PRIMARY KEY,
    name text NOT NULL,
    root_path text,
    settings ${t.json},
    created_at text NOT NULL,
    updated_at text NOT NULL
  )`,
  `CREATE TABLE workflows (
    org_id text NOT NULL DEFAULT 'local',
    name text NOT NULL,
    project_id text REFERENCES projects (project_id) ON DELETE SET NULL,
    latest_version integer NOT NULL DEFAULT 0,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    PRIMARY KEY (org_id, name)
  )`,
  `CREATE TABLE workflow_versions (
    org_id text NOT NULL DEFAULT 'local',
    workflow_id text PRIMARY KEY,
    name text NOT NULL,
    version integer NOT NULL,
    source text NOT NULL,
    source_hash text NOT NULL,
    file text NOT NULL,
    created_at text NOT NULL,
    UNIQUE (org_id, name, version),
    FOREIGN KEY (org_id, name) REFERENCES workflows (org_id, name) ON DELETE CASCADE
  )`,
  `CREATE INDEX workflow_versions_by_hash ON workflow_versions (org_id, name, source_hash)`,
  // No foreign key to workflow_versions: a run keeps its log even if its workflow is gone.
  `CREATE TABLE runs (
    org_id text NOT NULL DEFAULT 'local',
    run_id text PRIMARY KEY,
    workflow_id text NOT NULL,
    workflow_name text NOT NULL,
    project_id text REFERENCES projects (project_id) ON DELETE SET NULL,
    status text NOT NULL CHECK (status IN ('running', 'waiting', 'completed', 'failed', 'cancelled')),
    created_at text NOT NULL,
    updated_at text NOT NULL,
    last_seq integer NOT NULL DEFAULT -1
  )`,
  `CREATE INDEX runs_by_created ON runs (created_at)`,
  `CREATE INDEX runs_by_status ON runs (status, updated_at)`,
  `CREATE TABLE run_events (
    org_id text NOT NULL DEFAULT 'local',
    run_id text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq integer NOT NULL,
    type text NOT NULL,
    timestamp text NOT NULL,
    payload ${t.json} NOT NULL,
    PRIMARY KEY (run_id, seq)
  )`,
  // Projection: the checkpoint of each node, the latest attempt.
  `CREATE TABLE node_executions (
    org_id text NOT NULL DEFAULT 'local',
    run_id text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    node_id text NOT NULL,
    attempt integer NOT NULL DEFAULT 0,
    status text NOT NULL CHECK (status IN ('pending', 'running', 'waiting', 'completed', 'failed', 'skipped')),
    started_at text,
    finished_at text,
    output ${t.json},
    error ${t.json},
    last_seq integer NOT NULL,
    PRIMARY KEY (run_id, node_id)
  )`,
  // Projection: human and budget gates.
  `CREATE TABLE gates (
    org_id text NOT NULL DEFAULT 'local',
    run_id text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    gate_id text NOT NULL,
    node_id text NOT NULL,
    gate_type text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'resolved')),
    message text NOT NULL,
    assignee text,
    timeout_action text,
    expires_at text,
    decision text,
    decided_by text,
    payload ${t.json},
    comment text,
    paused_seq integer NOT NULL,
    created_at text NOT NULL,
    decided_at text,
    PRIMARY KEY (run_id, gate_id)
  )`,
  `CREATE INDEX gates_pending ON gates (status, run_id)`,
  // Projection: tokens and cost per run, node and model (from cost:updated).
  `CREATE TABLE usage (
    org_id text NOT NULL DEFAULT 'local',
    run_id text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    node_id text NOT NULL,
    model text NOT NULL,
    input_tokens ${t.bigint} NOT NULL DEFAULT 0,
    output_tokens ${t.bigint} NOT NULL DEFAULT 0,
    cost_microcents ${t.bigint} NOT NULL DEFAULT 0,
    updated_at text NOT NULL,
    PRIMARY KEY (run_id, node_id, model)
  )`,
  `CREATE TABLE worktrees (
    org_id text NOT NULL DEFAULT 'local',
    worktree_id text PRIMARY KEY,
    project_id text NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
    path text NOT NULL,
    branch text,
    base_ref text,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'removed')),
    created_at text NOT NULL,
    updated_at text NOT NULL
  )`,
  `CREATE TABLE chats (
    org_id text NOT NULL DEFAULT 'local',
    chat_id text PRIMARY KEY,
    project_id text REFERENCES projects (project_id) ON DELETE CASCADE,
    worktree_id text REFERENCES worktrees (worktree_id) ON DELETE SET NULL,
    title text NOT NULL DEFAULT '',
    model text,
    settings ${t.json},
    created_at text NOT NULL,
    updated_at text NOT NULL,
    archived_at text
  )`,
  `CREATE INDEX chats_by_project ON chats (project_id, updated_at)`,
  `CREATE TABLE messages (
    org_id text NOT NULL DEFAULT 'local',
    message_id text PRIMARY KEY,
    chat_id text NOT NULL REFERENCES chats (chat_id) ON DELETE CASCADE,
    seq integer NOT NULL,
    role text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    run_id text REFERENCES runs (run_id) ON DELETE SET NULL,
    model text,
    input_tokens ${t.bigint} NOT NULL DEFAULT 0,
    output_tokens ${t.bigint} NOT NULL DEFAULT 0,
    cost_microcents ${t.bigint} NOT NULL DEFAULT 0,
    created_at text NOT NULL,
    UNIQUE (chat_id, seq)
  )`,
  `CREATE TABLE content_blocks (
    org_id text NOT NULL DEFAULT 'local',
    block_id text PRIMARY KEY,
    message_id text NOT NULL REFERENCES messages (message_id) ON DELETE CASCADE,
    position integer NOT NULL,
    kind text NOT NULL,
    content ${t.json} NOT NULL,
    created_at text NOT NULL,
    UNIQUE (message_id, position)
  )`
]

/**
 * Provider API keys of the cloud key store, encrypted with AES-256-GCM under a master key held
 * outside the database (`SqlKeyStore`): the row holds the nonce, the ciphertext with its tag,
 * and the id of the master key that sealed it (for rotation); never the key.
 */
const providerKeys = `CREATE TABLE provider_keys (
    org_id text NOT NULL DEFAULT 'local',
    provider text NOT NULL,
    master_key_id text NOT NULL,
    nonce text NOT NULL,
    ciphertext text NOT NULL,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    PRIMARY KEY (org_id, provider)
  )`

/**
 * Chats as the chat service writes them: each chat's turn (status, the process working on it
 * and its heartbeat) and its numbered event log (`chat_events`, like `run_events`); a message's
 * status (a streamed answer is stored as it arrives, so a crash leaves it `streaming` until
 * recovery marks it `interrupted`); a content block's status (a tool call's approval and
 * progress) and the model's tool call id, which approvals and results look up.
 */
const chatTurns = (t: Types): ReadonlyArray<string> => [
  `ALTER TABLE chats ADD COLUMN turn_status text NOT NULL DEFAULT 'idle'
    CHECK (turn_status IN ('idle', 'running', 'awaiting_approval', 'interrupted', 'failed'))`,
  `ALTER TABLE chats ADD COLUMN turn_owner text`,
  `ALTER TABLE chats ADD COLUMN turn_heartbeat_at text`,
  `ALTER TABLE chats ADD COLUMN last_seq integer NOT NULL DEFAULT -1`,
  `CREATE INDEX chats_by_turn ON chats (turn_status, updated_at)`,
  `CREATE INDEX chats_by_updated ON chats (updated_at)`,
  `ALTER TABLE messages ADD COLUMN status text NOT NULL DEFAULT 'completed'
    CHECK (status IN ('streaming', 'completed', 'interrupted', 'failed'))`,
  `ALTER TABLE messages ADD COLUMN updated_at text`,
  `ALTER TABLE content_blocks ADD COLUMN status text`,
  `ALTER TABLE content_blocks ADD COLUMN call_id text`,
  `CREATE INDEX content_blocks_by_status ON content_blocks (kind, status)`,
  `CREATE INDEX projects_by_root ON projects (root_path)`,
  `CREATE TABLE chat_events (
    org_id text NOT NULL DEFAULT 'local',
    chat_id text NOT NULL REFERENCES chats (chat_id) ON DELETE CASCADE,
    seq integer NOT NULL,
    type text NOT NULL,
    timestamp text NOT NULL,
    payload ${t.json} NOT NULL,
    PRIMARY KEY (chat_id, seq)
  )`
]

/**
 * Row-level security for a table with `org_id` (Postgres only): enabled and forced (the table's
 * owner is filtered too), one policy that reads and writes only rows of the org the transaction
 * set with `set_config('app.org_id', …, true)` (an unset or empty setting matches nothing), and
 * `org_id` defaulting to that org so inserts need not name it. Every migration that creates a
 * table with `org_id` applies this to it.
 */
export const rowLevelSecurity = (table: string): ReadonlyArray<string> => [
  `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY ${table}_by_org ON ${table}
    USING (org_id = nullif(current_setting('app.org_id', true), ''))
    WITH CHECK (org_id = nullif(current_setting('app.org_id', true), ''))`,
  `ALTER TABLE ${table} ALTER COLUMN org_id SET DEFAULT nullif(current_setting('app.org_id', true), '')`
]

/**
 * Envelope encryption of the cloud key store (`SqlKeyStore`): each org's data keys, by version,
 * each wrapped (AES-256-GCM) under a master key held outside the database (the row records the
 * master key's id and the nonce; `wrapped` is the sealed data key, never the key). The version
 * not retired is the one new secrets are sealed under; a rotation issues a new version and
 * retires the old. `provider_keys.data_key_version` names the data key a secret is sealed
 * under; it is null for rows written before this migration, sealed directly under the master
 * key, which still open and are re-sealed under a data key by the next write or rotation.
 */
const orgDataKeys: ReadonlyArray<string> = [
  `CREATE TABLE org_data_keys (
    org_id text NOT NULL,
    version integer NOT NULL,
    master_key_id text NOT NULL,
    nonce text NOT NULL,
    wrapped text NOT NULL,
    created_at text NOT NULL,
    retired_at text,
    PRIMARY KEY (org_id, version)
  )`,
  `ALTER TABLE provider_keys ADD COLUMN data_key_version integer`
]

/**
 * Tenancy (`SqlTenancy`): organisations, the people in them, their API tokens and the audit trail.
 *
 * - `orgs` holds each org's name and `audit_seq`, the counter its audit entries are numbered
 *   from: an append increments it in the entry's transaction, so concurrent appends wait on the
 *   org's row and never draw the same number.
 * - `users` is global (one row per person, whatever orgs they belong to) and has no `org_id`.
 *   On Postgres a user row is visible only through a membership of the current org (the policy's
 *   subquery is itself filtered by the memberships policy), so one org never reads another's
 *   member emails; adding a member names the email in `app.user_email` for its transaction,
 *   which lets it find (or insert) that one person's row, and no other.
 * - `api_tokens` stores a token's SHA-256 and its visible prefix, never the token. A token is
 *   resolved before any org is known, so besides the org policy a row is readable, and its
 *   `last_used_at` writable, when the transaction names its hash in `app.token_hash`
 *   (`set_config(…, true)`, transaction-local). Naming a hash requires knowing the token (the
 *   hash is of 256 random bits), so the policy lets a caller see exactly the row its token
 *   opens, as a SECURITY DEFINER lookup would, without running code as the table's owner.
 * - `audit_log` is append-only: a trigger refuses UPDATE and DELETE on both dialects, and on
 *   Postgres those privileges are revoked from PUBLIC and from the `relavium_app` role when it
 *   exists (granted only SELECT and INSERT on this table, and what `SqlTenancy` needs on the
 *   others).
 */
const tenancy = (t: Types): ReadonlyArray<string> => [
  `CREATE TABLE orgs (
    org_id text PRIMARY KEY,
    name text NOT NULL,
    created_at text NOT NULL,
    audit_seq ${t.bigint} NOT NULL DEFAULT 0
  )`,
  `CREATE TABLE users (
    user_id text PRIMARY KEY,
    email text NOT NULL UNIQUE,
    created_at text NOT NULL
  )`,
  `CREATE TABLE memberships (
    org_id text NOT NULL DEFAULT 'local' REFERENCES orgs (org_id),
    user_id text NOT NULL REFERENCES users (user_id),
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at text NOT NULL,
    PRIMARY KEY (org_id, user_id)
  )`,
  `CREATE INDEX memberships_by_user ON memberships (user_id)`,
  `CREATE TABLE api_tokens (
    org_id text NOT NULL DEFAULT 'local' REFERENCES orgs (org_id),
    token_id text PRIMARY KEY,
    name text NOT NULL,
    prefix text NOT NULL,
    token_hash text NOT NULL UNIQUE,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_by text NOT NULL,
    created_at text NOT NULL,
    expires_at text,
    last_used_at text,
    revoked_at text
  )`,
  `CREATE INDEX api_tokens_by_org ON api_tokens (org_id, created_at)`,
  `CREATE TABLE audit_log (
    org_id text NOT NULL DEFAULT 'local' REFERENCES orgs (org_id),
    seq ${t.bigint} NOT NULL,
    at text NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail ${t.json} NOT NULL,
    PRIMARY KEY (org_id, seq)
  )`,
  `CREATE INDEX audit_log_by_action ON audit_log (org_id, action, seq)`
]

const appendOnlyMessage = "audit_log is append-only: its entries are never changed or removed"

const tenancySqlite: ReadonlyArray<string> = [
  ...tenancy(sqliteTypes),
  `CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, '${appendOnlyMessage}'); END`,
  `CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, '${appendOnlyMessage}'); END`
]

const tenancyPg: ReadonlyArray<string> = [
  ...tenancy(pgTypes),
  ...rowLevelSecurity("orgs"),
  ...rowLevelSecurity("memberships"),
  ...rowLevelSecurity("api_tokens"),
  ...rowLevelSecurity("audit_log"),
  `ALTER TABLE users ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE users FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY users_by_membership ON users FOR SELECT
    USING (EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.user_id))`,
  `CREATE POLICY users_by_email ON users FOR SELECT
    USING (email = nullif(current_setting('app.user_email', true), ''))`,
  `CREATE POLICY users_insert_by_email ON users FOR INSERT
    WITH CHECK (email = nullif(current_setting('app.user_email', true), ''))`,
  `CREATE POLICY api_tokens_by_hash ON api_tokens FOR SELECT
    USING (token_hash = nullif(current_setting('app.token_hash', true), ''))`,
  `CREATE POLICY api_tokens_use_by_hash ON api_tokens FOR UPDATE
    USING (token_hash = nullif(current_setting('app.token_hash', true), ''))
    WITH CHECK (token_hash = nullif(current_setting('app.token_hash', true), ''))`,
  `REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC`,
  // The app role (made by an earlier migration or by the operator) gets what SqlTenancy uses, and
  // on audit_log only SELECT and INSERT, whatever default privileges it may have.
  `DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'relavium_app') THEN
      GRANT SELECT, INSERT, UPDATE ON orgs, api_tokens TO relavium_app;
      GRANT SELECT, INSERT ON users TO relavium_app;
      GRANT SELECT, INSERT, UPDATE, DELETE ON memberships TO relavium_app;
      GRANT SELECT, INSERT ON audit_log TO relavium_app;
      REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM relavium_app;
    END IF;
  END $$`,
  `CREATE FUNCTION relavium_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '${appendOnlyMessage}'; END
  $$`,
  `CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION relavium_audit_log_append_only()`,
  `CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION relavium_audit_log_append_only()`
]

/** The role the api, workers and gateway connect as on Postgres: no superuser, no BYPASSRLS, owns nothing. */
export const appRole = "relavium_app"

/** The tables of migrations 1–3, every one with `org_id` (migration 4 put them under RLS). */
const initialOrgTables = [
  "projects",
  "workflows",
  "workflow_versions",
  "runs",
  "run_events",
  "node_executions",
  "gates",
  "usage",
  "worktrees",
  "chats",
  "messages",
  "content_blocks",
  "provider_keys",
  "chat_events"
] as const

/** Every table with `org_id` and row-level security on Postgres (those of later migrations apply it themselves). */
export const orgTables = [...initialOrgTables, ...inferenceTables, ...Triggers.tables, ...notificationTables] as const

/**
 * Postgres tenancy: row-level security on every table with `org_id`, the application role and
 * its grants, and the two functions the cross-org recovery sweeps call.
 *
 * - `relavium_app` is created once per cluster (roles are cluster-wide); a concurrent migration of
 *   another database may create it first, which the DO block tolerates.
 * - It may read and write rows (RLS filters them), never change the schema, and only read the
 *   migrations table (so a process connected as it can verify the schema version).
 * - Default privileges grant it the tables and sequences later migrations create.
 * - The sweeps that find lost work across every org (`relavium_runs_to_recover`,
 *   `relavium_chats_to_recover`) are SECURITY DEFINER functions owned by the migrating (operator)
 *   role, which bypasses RLS: they return only the rows a sweep needs, each with its `org_id`, and
 *   the sweep then acts on each row for that org (`forOrg`), under RLS again.
 */
const rowLevelSecurityMigration = (database: string): ReadonlyArray<string> => [
  ...initialOrgTables.flatMap(rowLevelSecurity),
  `DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${appRole}') THEN
      CREATE ROLE ${appRole} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
  END $$`,
  `GRANT CONNECT ON DATABASE "${database.replaceAll('"', '""')}" TO ${appRole}`,
  `GRANT USAGE ON SCHEMA public TO ${appRole}`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${appRole}`,
  `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${appRole}`,
  `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${appRole}`,
  `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${appRole}`,
  `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ${migrationsTable} FROM ${appRole}`,
  `CREATE FUNCTION relavium_runs_to_recover()
    RETURNS TABLE (org_id text, run_id text, workflow_id text, workflow_name text, status text,
      created_at text, updated_at text, last_seq integer)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
    $$ SELECT org_id, run_id, workflow_id, workflow_name, status, created_at, updated_at, last_seq
       FROM runs WHERE status IN ('running', 'waiting') ORDER BY created_at, run_id $$`,
  `CREATE FUNCTION relavium_chats_to_recover()
    RETURNS TABLE (org_id text, chat_id text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
    $$ SELECT org_id, chat_id FROM chats WHERE turn_status = 'running' ORDER BY updated_at, chat_id $$`,
  `REVOKE ALL ON FUNCTION relavium_runs_to_recover(), relavium_chats_to_recover() FROM PUBLIC`,
  `GRANT EXECUTE ON FUNCTION relavium_runs_to_recover(), relavium_chats_to_recover() TO ${appRole}`
]

const run = (ddl: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    for (const statement of ddl) yield* sql.unsafe(statement)
  })

/** Every migration, by `<id>_<name>`. Append new ones; never edit an applied one. */
export const migrations: Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> = {
  "1_initial": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () => run(statements(pgTypes)),
      orElse: () => run(statements(sqliteTypes))
    })
  ),
  "2_provider_keys": run([providerKeys]),
  "3_chat_turns": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () => run(chatTurns(pgTypes)),
      orElse: () => run(chatTurns(sqliteTypes))
    })
  ),
  "4_row_level_security": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () =>
        Effect.flatMap(sql<{ db: string }>`SELECT current_database() AS db`, (rows) => run(rowLevelSecurityMigration(rows[0]!.db))),
      orElse: () => Effect.void
    })
  ),
  "5_tenancy": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () => run(tenancyPg),
      orElse: () => run(tenancySqlite)
    })
  ),
  "6_org_data_keys": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () => run([...orgDataKeys, ...rowLevelSecurity("org_data_keys")]),
      orElse: () => run(orgDataKeys)
    })
  ),
  /** The org of the single-user deployments (local CLI, monolith), which act for `local` when no caller names another. */
  "7_local_org": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO orgs (org_id, name, created_at) VALUES ('local', 'local', ${new Date().toISOString()})
      ON CONFLICT (org_id) DO NOTHING`.pipe(Effect.asVoid)
  ),
  /** The managed gateway's ledger and budgets (migrations/Inference.ts). */
  "8_inference": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () => run(inferencePg(rowLevelSecurity)),
      orElse: () => run(inferenceSqlite)
    })
  ),
  /** Webhook and schedule triggers and their deliveries (migrations/Triggers.ts). */
  "9_triggers": Triggers.migration(rowLevelSecurity, appRole),
  /** Gate notifications, their deliveries and links, the org's budget and its alerts (migrations/Notifications.ts). */
  "10_notifications": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () => run(notificationsPg()),
      orElse: () => run(notificationsSqlite)
    })
  ),
  "12_chats_distributed": chatsDistributed
}

/** The schema version this build writes: the highest migration id. */
export const schemaVersion: number = Math.max(...Object.keys(migrations).map((key) => Number.parseInt(key, 10)))

export const loader: Migrator.Loader = Migrator.fromRecord(migrations)

/** The migrator of either dialect (neither needs a schema dump). */
export const migrator = Migrator.make({})

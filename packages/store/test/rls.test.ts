/**
 * Tenancy in the database: row-level security on every org table, the application role
 * `relavium_app`, and the org set per transaction by the store's Postgres client. Real Postgres
 * at 127.0.0.1:5432: a fresh database per test, migrated as `postgres` (the operator role), then
 * used as `relavium_app` (trust auth) as the api and workers use it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { ChatStore, forOrg, RunStore, WorkflowStore, type ChatRecord } from "@relavium/ports"
import { cancelled, nodeStarted, started } from "@relavium/ports/testing"
import { Database, Migrations, SqlKeyStore, Store } from "../src/index.js"
import * as OrgClient from "../src/internal/OrgClient.js"

const host = "127.0.0.1:5432"
const asOwner = (db: string) => `postgres://postgres@${host}/${db}`
const asApp = (db: string) => `postgres://${Migrations.appRole}@${host}/${db}`

const onDatabase = <A>(url: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(url), connectTimeout: Duration.seconds(5) }), f)).pipe(
    Effect.provide(Reactivity.layer),
    Effect.orDie
  )

/** A fresh database migrated by the operator role, dropped with the test's scope. */
const freshDatabase = Effect.acquireRelease(
  Effect.gen(function* () {
    const name = `relavium_rls_${crypto.randomUUID().replaceAll("-", "")}`
    yield* onDatabase(asOwner("test"), (sql) => sql.unsafe(`CREATE DATABASE ${name}`))
    yield* Database.migratePg({ url: asOwner(name) }).pipe(Effect.orDie)
    return name
  }),
  (name) => onDatabase(asOwner("test"), (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
)

describe("row-level security", () => {
  it.live("every org table is forced under RLS and the app role is an ordinary role that owns nothing", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const db = yield* freshDatabase
        yield* onDatabase(asOwner(db), (sql) =>
          Effect.gen(function* () {
            const tables = yield* sql<{ table: string; rls: boolean; forced: boolean; owner: string }>`
              SELECT c.relname AS table, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
                pg_get_userbyid(c.relowner) AS owner
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relkind = 'r'
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)
              ORDER BY c.relname`
            assert.includeMembers(tables.map((t) => t.table), [...Migrations.orgTables])
            for (const table of tables) {
              assert.isTrue(table.rls, `${table.table} has row security`)
              assert.isTrue(table.forced, `${table.table} forces row security`)
              assert.notStrictEqual(table.owner, Migrations.appRole)
            }
            const [role] = yield* sql<{ rolsuper: boolean; rolbypassrls: boolean; rolcreaterole: boolean; rolcreatedb: boolean }>`
              SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = ${Migrations.appRole}`
            assert.deepStrictEqual(role, { rolsuper: false, rolbypassrls: false, rolcreaterole: false, rolcreatedb: false })
            const owned = yield* sql<{ relname: string }>`
              SELECT relname FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = ${Migrations.appRole})`
            assert.deepStrictEqual(owned, [])
          })
        )
        // The app role reads the schema version and cannot change it.
        yield* onDatabase(asApp(db), (sql) =>
          Effect.gen(function* () {
            const [version] = yield* sql<{ v: number }>`SELECT MAX(migration_id)::integer AS v FROM relavium_migrations`
            assert.strictEqual(version?.v, Migrations.schemaVersion)
            const write = yield* Effect.either(sql`DELETE FROM relavium_migrations`)
            assert.isTrue(write._tag === "Left", "the app role cannot write the migrations table")
          })
        )
      })
    ))

  it.live("a pooled connection carries no org from one transaction to the next statement", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const db = yield* freshDatabase
        const driver = yield* PgClient.make({ url: Redacted.make(asApp(db)), maxConnections: 1, connectTimeout: Duration.seconds(5) })
        const sql = yield* OrgClient.make(driver, PgClient.makeCompiler())
        const insertRun = (runId: string) =>
          sql`INSERT INTO runs (run_id, workflow_id, workflow_name, status, created_at, updated_at)
            VALUES (${runId}, 'wf', 'wf', 'running', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`
        const runs = sql<{ run_id: string; org_id: string }>`SELECT run_id, org_id FROM runs ORDER BY run_id`

        yield* forOrg("org-a")(sql.withTransaction(Effect.zipRight(insertRun("run-a1"), insertRun("run-a2"))))
        assert.deepStrictEqual(yield* forOrg("org-a")(runs), [
          { run_id: "run-a1", org_id: "org-a" },
          { run_id: "run-a2", org_id: "org-a" }
        ])
        // The same (only) connection, for another org, in a transaction or not: nothing.
        assert.deepStrictEqual(yield* forOrg("org-b")(runs), [])
        assert.deepStrictEqual(yield* forOrg("org-b")(sql.withTransaction(runs)), [])
        assert.deepStrictEqual(yield* forOrg("org-without-data")(runs), [])
        // No org provided: the default org, which has no rows here.
        assert.deepStrictEqual(yield* runs, [])
        // The bare connection holds no org at all after those transactions, and so sees no row.
        const [setting] = yield* driver<{ org: string | null }>`SELECT current_setting('app.org_id', true) AS org`
        assert.isTrue(setting?.org === null || setting?.org === "", `no org left on the connection: ${setting?.org}`)
        assert.deepStrictEqual(yield* driver`SELECT run_id FROM runs`, [])
        // A write naming another org is refused.
        const forged = yield* Effect.either(
          forOrg("org-b")(sql`INSERT INTO runs (org_id, run_id, workflow_id, workflow_name, status, created_at, updated_at)
            VALUES ('org-a', 'run-forged', 'wf', 'wf', 'running', 'x', 'x')`)
        )
        assert.isTrue(forged._tag === "Left", "a row for another org cannot be written")
      }).pipe(Effect.provide(Reactivity.layer))
    ))

  it.live("two orgs on the real stores never see, list or change each other's rows", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const db = yield* freshDatabase
        const services = yield* Layer.build(Store.layerPg({ url: asApp(db) }))
        const runStore = Effect.provide(RunStore, services)
        const masterKey = Redacted.make(randomBytes(32).toString("base64"))
        const now = "2026-01-01T00:00:00.000Z"

        const seed = (org: string) =>
          forOrg(org)(
            Effect.gen(function* () {
              const runs = yield* RunStore
              const workflows = yield* WorkflowStore
              const chats = yield* ChatStore
              const keys = yield* SqlKeyStore.make({ masterKey })
              const workflow = yield* workflows.put({ name: "shared-name", source: `id: ${org}\n`, file: `${org}.yaml` })
              const runId = crypto.randomUUID()
              yield* runs.create({ runId, workflowId: workflow.workflowId, workflowName: "shared-name", createdAt: now })
              yield* runs.append(runId, [started(runId)], { expectedLastSequenceNumber: -1 })
              yield* runs.append(runId, [nodeStarted(runId, "a")])
              const projectId = crypto.randomUUID()
              yield* chats.putProject({ projectId, name: org, rootPath: "/same/root", createdAt: now, updatedAt: now })
              const chat: ChatRecord = {
                chatId: crypto.randomUUID(),
                projectId,
                worktreeId: undefined,
                title: `chat of ${org}`,
                model: undefined,
                settings: {},
                turnStatus: "running",
                turnOwner: undefined,
                turnHeartbeatAt: undefined,
                lastSequenceNumber: -1,
                createdAt: now,
                updatedAt: now
              }
              yield* chats.createChat(chat, { events: [{ type: "chat:created", timestamp: now, data: {} }] })
              assert.isTrue(yield* chats.claimTurn(chat.chatId, { owner: `worker-${org}`, expectedOwner: undefined, at: now }))
              yield* keys.set("openai", Redacted.make(`sk-${org}`))
              return { org, workflowId: workflow.workflowId, runId, chatId: chat.chatId, projectId }
            })
          ).pipe(Effect.provide(services))

        const a = yield* seed("org-a")
        const b = yield* seed("org-b")

        for (const [mine, theirs] of [[a, b], [b, a]] as const) {
          yield* forOrg(mine.org)(
            Effect.gen(function* () {
              const runs = yield* RunStore
              const workflows = yield* WorkflowStore
              const chats = yield* ChatStore
              const keys = yield* SqlKeyStore.make({ masterKey })
              // Reads of the other org's ids find nothing.
              assert.isTrue(Option.isNone(yield* runs.get(theirs.runId)))
              assert.deepStrictEqual(yield* runs.events(theirs.runId), [])
              assert.deepStrictEqual(yield* runs.pendingGates(theirs.runId), [])
              assert.isTrue(Option.isNone(yield* workflows.get(theirs.workflowId)))
              assert.isTrue(Option.isNone(yield* chats.getChat(theirs.chatId)))
              assert.isTrue(Option.isNone(yield* chats.getProject(theirs.projectId)))
              assert.deepStrictEqual(yield* chats.events(theirs.chatId), [])
              assert.deepStrictEqual(yield* chats.messages(theirs.chatId), [])
              // Lists hold only this org's rows.
              assert.deepStrictEqual((yield* runs.list()).map((r) => r.runId), [mine.runId])
              assert.deepStrictEqual((yield* workflows.list).map((w) => w.workflowId), [mine.workflowId])
              assert.deepStrictEqual((yield* chats.listChats()).map((c) => c.chatId), [mine.chatId])
              assert.deepStrictEqual((yield* chats.listProjects()).map((p) => p.projectId), [mine.projectId])
              assert.deepStrictEqual(yield* keys.list, ["openai"])
              assert.strictEqual(Option.map(yield* keys.get("openai"), Redacted.value).pipe(Option.getOrUndefined), `sk-${mine.org}`)
              // Writes aimed at the other org's ids change nothing.
              const cancel = yield* Effect.either(runs.append(theirs.runId, [cancelled(theirs.runId)]))
              assert.strictEqual(cancel._tag === "Left" ? cancel.left._tag : "appended", "RunNotFound")
              const fast = yield* Effect.either(runs.append(theirs.runId, [nodeStarted(theirs.runId, "b")], { expectedLastSequenceNumber: 1 }))
              assert.strictEqual(fast._tag === "Left" ? fast.left._tag : "appended", "RunNotFound")
              const commit = yield* Effect.either(chats.commit(theirs.chatId, { updatedAt: now, turnStatus: "idle", title: "taken" }))
              assert.strictEqual(commit._tag === "Left" ? commit.left._tag : "committed", "ChatNotFound")
              assert.isFalse(yield* chats.claimTurn(theirs.chatId, { owner: "intruder", expectedOwner: `worker-${theirs.org}`, at: now }))
              yield* chats.heartbeat(theirs.chatId, `worker-${theirs.org}`, "2030-01-01T00:00:00.000Z")
              yield* chats.releaseTurn(theirs.chatId, `worker-${theirs.org}`)
              // A fresh run may not reuse the other org's run id.
              yield* runs.create({ runId: theirs.runId, workflowId: "x", workflowName: "x", createdAt: now })
              assert.isTrue(Option.isNone(yield* runs.get(theirs.runId)))
            })
          ).pipe(Effect.provide(services))
        }

        // As the owner: every row is as its own org left it.
        yield* onDatabase(asOwner(db), (sql) =>
          Effect.gen(function* () {
            const runs = yield* sql<{ org_id: string; run_id: string; status: string; last_seq: number }>`
              SELECT org_id, run_id, status, last_seq FROM runs ORDER BY org_id`
            assert.deepStrictEqual(runs, [
              { org_id: "org-a", run_id: a.runId, status: "running", last_seq: 1 },
              { org_id: "org-b", run_id: b.runId, status: "running", last_seq: 1 }
            ])
            const events = yield* sql<{ org_id: string; run_id: string }>`SELECT org_id, run_id FROM run_events ORDER BY org_id, seq`
            assert.deepStrictEqual(events, [
              { org_id: "org-a", run_id: a.runId },
              { org_id: "org-a", run_id: a.runId },
              { org_id: "org-b", run_id: b.runId },
              { org_id: "org-b", run_id: b.runId }
            ])
            const chats = yield* sql<{ org_id: string; title: string; turn_status: string; turn_owner: string; turn_heartbeat_at: string }>`
              SELECT org_id, title, turn_status, turn_owner, turn_heartbeat_at FROM chats ORDER BY org_id`
            assert.deepStrictEqual(chats, [
              { org_id: "org-a", title: "chat of org-a", turn_status: "running", turn_owner: "worker-org-a", turn_heartbeat_at: now },
              { org_id: "org-b", title: "chat of org-b", turn_status: "running", turn_owner: "worker-org-b", turn_heartbeat_at: now }
            ])
            const keys = yield* sql<{ org_id: string }>`SELECT org_id FROM provider_keys ORDER BY org_id`
            assert.deepStrictEqual(keys.map((k) => k.org_id), ["org-a", "org-b"])
            const workflows = yield* sql<{ org_id: string }>`SELECT org_id FROM workflow_versions ORDER BY org_id`
            assert.deepStrictEqual(workflows.map((w) => w.org_id), ["org-a", "org-b"])
          })
        )

        // The recovery sweeps see every org's work, each with its org.
        const toRecover = yield* runStore.pipe(Effect.flatMap((runs) => runs.runsToRecover()))
        assert.deepStrictEqual(
          toRecover.map((r) => [r.orgId, r.runId]).sort(),
          [["org-a", a.runId], ["org-b", b.runId]].sort()
        )
        const chatsToRecover = yield* Effect.provide(Effect.flatMap(ChatStore, (chats) => chats.chatsToRecover()), services)
        assert.deepStrictEqual(
          chatsToRecover.map((c) => [c.orgId, c.chatId, c.turnOwner]).sort(),
          [["org-a", a.chatId, "worker-org-a"], ["org-b", b.chatId, "worker-org-b"]].sort()
        )
      })
    ))

  it.live("a process connected as the app role verifies the schema instead of migrating, and says what to run", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const name = `relavium_rls_${crypto.randomUUID().replaceAll("-", "")}`
        yield* Effect.acquireRelease(onDatabase(asOwner("test"), (sql) => sql.unsafe(`CREATE DATABASE ${name}`)), () =>
          onDatabase(asOwner("test"), (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
        )
        // Migrate one database first so the cluster-wide role exists, then try the empty one as it.
        const other = yield* freshDatabase
        assert.isString(other)
        const error = yield* Effect.flip(Layer.build(Database.layerPg({ url: asApp(name) })))
        assert.include(error.message, "has schema version 0")
        assert.include(error.message, "relavium db migrate --database-url")
        const refused = yield* Effect.flip(Database.migratePg({ url: asApp(name) }))
        assert.include(refused.message, "pass the operator role's URL")
        yield* Database.migratePg({ url: asOwner(name) })
        yield* Layer.build(Database.layerPg({ url: asApp(name) }))
      })
    ))
})

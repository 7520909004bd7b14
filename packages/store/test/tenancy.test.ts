/**
 * `SqlTenancy` on SQLite and on Postgres (a fresh database each, dropped afterwards): the Tenancy
 * contract, then what only the database can show: no column of any table holds a token, audit
 * rows cannot be changed or removed, and on Postgres row level security, for a role that does
 * not bypass it, shows an org only its own rows, a user only through a membership of the
 * current org, and a token's row only to the transaction that names its hash.
 */
import { assert, describe, it } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { forOrg, hashToken, VISIBLE_PREFIX_LENGTH } from "@relavium/ports"
import { tenancyContract } from "@relavium/ports/testing"
import { Database, SqlTenancy } from "../src/index.js"

const server = "postgres://postgres@127.0.0.1:5432"

const onAdmin = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(
    Effect.flatMap(PgClient.make({ url: Redacted.make(`${server}/test`), connectTimeout: Duration.seconds(5) }), f)
  ).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

/** A Postgres database of its own, migrated, dropped when the layer is released. */
const freshPg = () =>
  Layer.unwrapScoped(
    Effect.map(
      Effect.acquireRelease(
        Effect.gen(function* () {
          const name = `relavium_tenancy_${crypto.randomUUID().replaceAll("-", "")}`
          yield* onAdmin((sql) => sql.unsafe(`CREATE DATABASE ${name}`))
          return name
        }),
        (name) => onAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
      ),
      (name) => Database.layerPg({ url: `${server}/${name}` })
    )
  )

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relavium-tenancy-sql-"))
process.on("exit", () => Fs.rmSync(dir, { recursive: true, force: true }))

const databases = [
  ["Postgres", freshPg],
  ["SQLite", () => Database.layerSqlite({ filename: Path.join(dir, `tenancy-${crypto.randomUUID()}.db`) })]
] as const

const tablesOf = (sql: SqlClient.SqlClient) =>
  sql.onDialectOrElse({
    pg: () =>
      sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    orElse: () => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`
  })

const asText = (rows: unknown) => JSON.stringify(rows, (_, value) => (typeof value === "bigint" ? value.toString() : value))

for (const [name, database] of databases) {
  tenancyContract(name, SqlTenancy.layer.pipe(Layer.provide(database())))

  describe(`SqlTenancy on ${name}`, () => {
    it.layer(database(), { timeout: "60 seconds" })((it) => {
      it.effect("no column of any table holds a token: only its SHA-256 and visible prefix", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const { tenancy } = yield* SqlTenancy.make
          const { org, token: first } = yield* tenancy.createOrg("Acme", { email: "ada@example.com" })
          const second = yield* forOrg(org.id)(tenancy.tokens.create({ name: "ci", role: "member", createdBy: "ada@example.com" }))
          assert.isTrue(Option.isSome(yield* tenancy.tokens.resolve(second.token)))
          const tables = (yield* tablesOf(sql)).map((t) => t.name)
          for (const expected of ["orgs", "users", "memberships", "api_tokens", "audit_log"]) assert.include(tables, expected)
          for (const table of tables) {
            const text = asText(yield* sql`SELECT * FROM ${sql(table)}`)
            for (const token of [first.token, second.token]) {
              assert.notInclude(text, Redacted.value(token), table)
              assert.notInclude(text, Redacted.value(token).slice(VISIBLE_PREFIX_LENGTH), table)
            }
          }
          const stored = yield* sql<{ token_id: string; prefix: string; token_hash: string }>`
            SELECT token_id, prefix, token_hash FROM api_tokens WHERE org_id = ${org.id} ORDER BY created_at, token_id`
          assert.sameDeepMembers(
            stored.map((row) => ({ ...row })),
            [first, second].map((t) => ({ token_id: t.info.id, prefix: t.info.prefix, token_hash: hashToken(t.token) }))
          )
        }))

      it.effect("audit entries can be neither changed nor removed", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const { audit, tenancy } = yield* SqlTenancy.make
          const { org } = yield* tenancy.createOrg("Acme", { email: "ada@example.com" })
          yield* forOrg(org.id)(audit.append({ actor: "ada@example.com", action: "key.set", target: "openai" }))
          const before = yield* forOrg(org.id)(audit.list({}))
          const tampering = [
            sql`UPDATE audit_log SET actor = 'mallory@example.com' WHERE org_id = ${org.id}`,
            sql`DELETE FROM audit_log WHERE org_id = ${org.id}`,
            ...sql.onDialectOrElse({ pg: () => [sql`TRUNCATE audit_log`], orElse: () => [] })
          ]
          for (const statement of tampering) {
            const refused = yield* Effect.flip(statement)
            assert.include(Database.describeCause(refused), "audit_log is append-only")
          }
          assert.deepStrictEqual(yield* forOrg(org.id)(audit.list({})), before)
          assert.strictEqual(before[0]?.actor, "ada@example.com")
        }))

      if (name === "Postgres") {
        it.effect("the app role, present when migrating, may read and append audit entries but not change them", () =>
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            // The role is shared by the cluster (the app's); make it only if no one has.
            yield* sql.unsafe(`DO $$ BEGIN
              IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'relavium_app') THEN CREATE ROLE relavium_app NOLOGIN; END IF;
              EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
            const dbName = `relavium_tenancy_${crypto.randomUUID().replaceAll("-", "")}`
            yield* Effect.acquireRelease(onAdmin((admin) => admin.unsafe(`CREATE DATABASE ${dbName}`)), () =>
              onAdmin((admin) => admin.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`))
            )
            yield* Database.migratePg({ url: `${server}/${dbName}` })
            const privileges = yield* Effect.scoped(
              Effect.flatMap(PgClient.make({ url: Redacted.make(`${server}/${dbName}`) }), (db) =>
                db<{ privilege: string; granted: boolean }>`SELECT p AS privilege, has_table_privilege('relavium_app', 'audit_log', p) AS granted
                  FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p`
              )
            ).pipe(Effect.provide(Reactivity.layer))
            assert.deepStrictEqual(
              Object.fromEntries(privileges.map((r) => [r.privilege, r.granted])),
              { SELECT: true, INSERT: true, UPDATE: false, DELETE: false, TRUNCATE: false }
            )
          }).pipe(Effect.scoped))

        it.effect("row level security: an app role sees only the current org's rows, and a token's row by its hash", () =>
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            const { audit, tenancy } = yield* SqlTenancy.make
            const a = yield* tenancy.createOrg("A", { email: "ada@a.example" })
            const b = yield* tenancy.createOrg("B", { email: "bea@b.example" })
            yield* forOrg(a.org.id)(
              Effect.all([tenancy.members.add("al@a.example", "member"), audit.append({ actor: "ada@a.example", action: "member.add", target: "al@a.example" })])
            )
            yield* forOrg(b.org.id)(audit.append({ actor: "bea@b.example", action: "run.start", target: "run-b" }))

            // A role like the app's: no superuser, no BYPASSRLS, ordinary privileges on the tables.
            const role = `rlv_tenancy_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`
            const [{ db }] = (yield* sql<{ db: string }>`SELECT current_database() AS db`) as unknown as [{ db: string }]
            yield* Effect.acquireRelease(
              Effect.all([
                sql.unsafe(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS`),
                sql.unsafe(`GRANT USAGE ON SCHEMA public TO ${role}`),
                sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`)
              ]),
              () => Effect.orDie(Effect.all([sql.unsafe(`DROP OWNED BY ${role}`), sql.unsafe(`DROP ROLE IF EXISTS ${role}`)]))
            )
            yield* Effect.scoped(
              Effect.gen(function* () {
                const app = yield* PgClient.make({ url: Redacted.make(`postgres://${role}@127.0.0.1:5432/${db}`), connectTimeout: Duration.seconds(5) })
                const asApp = Effect.provideService(SqlClient.SqlClient, app)
                const { tenancy: appTenancy } = yield* asApp(SqlTenancy.make)
                /** What the app role reads in a transaction for `orgId` (unset when undefined). */
                const readAs = (orgId: string | undefined) =>
                  app.withTransaction(
                    Effect.gen(function* () {
                      if (orgId !== undefined) yield* app`SELECT set_config('app.org_id', ${orgId}, true)`
                      const column = <R extends Record<string, unknown>>(rows: ReadonlyArray<R>, key: keyof R) => rows.map((r) => String(r[key])).sort()
                      return {
                        orgs: column(yield* app<{ org_id: string }>`SELECT org_id FROM orgs`, "org_id"),
                        users: column(yield* app<{ email: string }>`SELECT email FROM users`, "email"),
                        memberships: column(yield* app<{ org_id: string }>`SELECT org_id FROM memberships`, "org_id"),
                        tokens: column(yield* app<{ token_id: string }>`SELECT token_id FROM api_tokens`, "token_id"),
                        audit: column(yield* app<{ target: string }>`SELECT target FROM audit_log`, "target")
                      }
                    })
                  )
                assert.deepStrictEqual(yield* readAs(a.org.id), {
                  orgs: [a.org.id],
                  users: ["al@a.example", "ada@a.example"].sort(),
                  memberships: [a.org.id, a.org.id],
                  tokens: [a.token.info.id],
                  audit: ["al@a.example"]
                })
                assert.deepStrictEqual(yield* readAs(undefined), { orgs: [], users: [], memberships: [], tokens: [], audit: [] })

                // Resolving names only the token's hash: it finds B's token with no org set, and records its use.
                const principal = yield* appTenancy.tokens.resolve(b.token.token)
                assert.deepStrictEqual(Option.map(principal, (p) => [p.orgId, p.tokenId]), Option.some([b.org.id, b.token.info.id]))
                const used = yield* sql<{ last_used_at: string | null }>`SELECT last_used_at FROM api_tokens WHERE token_id = ${b.token.info.id}`
                assert.isNotNull(used[0]?.last_used_at)

                // Adding to A a person who is already in B finds their user row by the email named, and only it.
                const added = yield* app.withTransaction(
                  Effect.zipRight(app`SELECT set_config('app.org_id', ${a.org.id}, true)`, forOrg(a.org.id)(appTenancy.members.add("bea@b.example", "viewer")))
                )
                const bea = yield* sql<{ user_id: string }>`SELECT user_id FROM users WHERE email = 'bea@b.example'`
                assert.deepStrictEqual([added.userId], bea.map((r) => r.user_id))
                assert.deepStrictEqual((yield* readAs(a.org.id)).users, ["al@a.example", "ada@a.example", "bea@b.example"].sort())
                assert.deepStrictEqual((yield* readAs(b.org.id)).users, ["bea@b.example"])
                // A write into another org is refused by the policy, whatever org_id the statement names.
                const foreign = yield* Effect.flip(
                  app.withTransaction(
                    Effect.zipRight(
                      app`SELECT set_config('app.org_id', ${a.org.id}, true)`,
                      app`INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (${b.org.id}, ${added.userId}, 'owner', '2026-01-01T00:00:00.000Z')`
                    )
                  )
                )
                assert.include(Database.describeCause(foreign), "row-level security")
              }).pipe(Effect.provide(Reactivity.layer))
            )
          }).pipe(Effect.scoped))
      }
    })
  })
}

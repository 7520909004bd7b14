/**
 * The notification tables on Postgres as the application role (`relavium_app`, under row-level
 * security): an org sees only its channels and cannot open another's secret; a gate link is found
 * by its id before the org is known (and by nothing else), is used once, and only in its own org;
 * the sweep's list of orgs to notify crosses orgs through its SECURITY DEFINER function.
 */
import { assert, describe, it } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { forOrg, NotificationStore } from "@relavium/ports"
import { Database, Migrations, SqlNotifications } from "../src/index.js"

const host = "127.0.0.1:5432"
const asOwner = (db: string) => `postgres://postgres@${host}/${db}`
const asApp = (db: string) => `postgres://${Migrations.appRole}@${host}/${db}`

const onDatabase = <A>(url: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(url), connectTimeout: Duration.seconds(5) }), f)).pipe(
    Effect.provide(Reactivity.layer),
    Effect.orDie
  )

const freshDatabase = Effect.acquireRelease(
  Effect.gen(function* () {
    const name = `relavium_notify_${crypto.randomUUID().replaceAll("-", "")}`
    yield* onDatabase(asOwner("test"), (sql) => sql.unsafe(`CREATE DATABASE ${name}`))
    yield* Database.migratePg({ url: asOwner(name) }).pipe(Effect.orDie)
    return name
  }),
  (name) => onDatabase(asOwner("test"), (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
)

describe("notifications under row-level security", () => {
  it.live("keeps channels, secrets and gate links to their org; finds a link by its id alone", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const db = yield* freshDatabase
        const context = yield* Layer.build(
          SqlNotifications.layer(Option.some({ masterKey: Redacted.make(randomBytes(32).toString("base64")) })).pipe(
            Layer.provideMerge(Database.layerPg({ url: asApp(db) }))
          )
        )
        const store = Layer.succeedContext(context)
        const secret = `https://hooks.slack.test/services/${randomBytes(8).toString("hex")}`
        const channel = yield* forOrg("org_a")(
          Effect.flatMap(NotificationStore, (s) => s.channels.put({ name: "team", settings: { kind: "slack" }, secret: Redacted.make(secret) }))
        ).pipe(Effect.provide(store))
        const seenByB = yield* forOrg("org_b")(
          Effect.flatMap(NotificationStore, (s) => Effect.all([s.channels.list, s.channels.secret(channel.id)]))
        ).pipe(Effect.provide(store))
        assert.deepStrictEqual(seenByB[0], [])
        assert.isTrue(Option.isNone(seenByB[1]))
        const opened = yield* forOrg("org_a")(Effect.flatMap(NotificationStore, (s) => s.channels.secret(channel.id))).pipe(Effect.provide(store))
        assert.strictEqual(Option.map(opened, Redacted.value).pipe(Option.getOrUndefined), secret)
        // The row holds no secret in the clear.
        const rows = yield* onDatabase(asOwner(db), (sql) => sql<{ row: string }>`SELECT row_to_json(c)::text AS row FROM notification_channels c`)
        assert.isFalse(rows.some((r) => r.row.includes(secret)))

        const linkId = `l${randomBytes(16).toString("base64url")}`
        yield* forOrg("org_a")(
          Effect.flatMap(NotificationStore, (s) =>
            s.links.create({ linkId, runId: "run-1", gateId: "g-1", decision: "approved", expiresAt: "2099-01-01T00:00:00.000Z" }, "2026-01-01T00:00:00.000Z")
          )
        ).pipe(Effect.provide(store))
        const found = yield* Effect.flatMap(NotificationStore, (s) => s.links.find(linkId)).pipe(Effect.provide(store))
        assert.deepStrictEqual(Option.map(found, (l) => [l.orgId, l.runId, l.gateId, l.decision]), Option.some(["org_a", "run-1", "g-1", "approved"]))
        const other = yield* Effect.flatMap(NotificationStore, (s) => s.links.find(`l${randomBytes(16).toString("base64url")}`)).pipe(Effect.provide(store))
        assert.isTrue(Option.isNone(other))
        const now = "2026-01-02T00:00:00.000Z"
        assert.strictEqual(yield* forOrg("org_b")(Effect.flatMap(NotificationStore, (s) => s.links.use(linkId, now))).pipe(Effect.provide(store)), "unknown")
        assert.strictEqual(yield* forOrg("org_a")(Effect.flatMap(NotificationStore, (s) => s.links.use(linkId, now))).pipe(Effect.provide(store)), "used")
        assert.strictEqual(yield* forOrg("org_a")(Effect.flatMap(NotificationStore, (s) => s.links.use(linkId, now))).pipe(Effect.provide(store)), "already_used")

        // Without an org, the app role sees no row; the sweep's function lists the orgs to notify.
        const unscoped = yield* onDatabase(asApp(db), (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM gate_links`)
        assert.strictEqual(unscoped[0]!.n, 0)
        const orgs = yield* Effect.flatMap(NotificationStore, (s) => s.orgsToNotify).pipe(Effect.provide(store))
        assert.deepStrictEqual(orgs, ["org_a"])
      })
    )
  )
})

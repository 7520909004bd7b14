/**
 * `relavium keys rotate ORG` and `relavium keys rotate-master`, run as a user runs them (the
 * built binary on a fresh Postgres database): they say what they re-sealed and re-wrapped in
 * counts, never a key, and afterwards every provider key opens under the new master key alone.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { AuditLog, forOrg } from "@relavium/ports"
import { Database, SqlKeyStore, SqlTenancy } from "@relavium/store"
import { createDatabase, dropDatabase, onDatabase } from "../../../test/support/cloud.js"
import { relaviumAsync } from "./relavium.js"

const oldKey = randomBytes(32).toString("base64")
const newKey = randomBytes(32).toString("hex")
const secrets = { "org-a": { openai: `sk-a-${randomBytes(8).toString("hex")}` }, "org-b": { anthropic: `sk-b-${randomBytes(8).toString("hex")}` } }

const withStore = <A, E>(url: string, settings: SqlKeyStore.EncryptedOptions, f: (keys: Effect.Effect.Success<ReturnType<typeof SqlKeyStore.make>>) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(SqlKeyStore.make(settings), f).pipe(Effect.provide(Database.layerPg({ url }))))

describe("relavium keys rotate and rotate-master", () => {
  it.effect("re-seal and re-wrap every key, printing counts and never a key", () =>
    Effect.acquireUseRelease(
      Effect.promise(() => createDatabase("cli_keys")),
      ({ url }) =>
        Effect.gen(function* () {
          const OLD = { masterKey: Redacted.make(oldKey) }
          yield* withStore(url, OLD, (keys) =>
            Effect.forEach(Object.entries(secrets), ([orgId, entries]) =>
              forOrg(orgId)(Effect.forEach(Object.entries(entries), ([provider, value]) => keys.set(provider, Redacted.make(value))))
            )
          )
          // The orgs exist (their audit trails record the rotations).
          yield* Effect.promise(() =>
            onDatabase(url, `INSERT INTO orgs (org_id, name, created_at) VALUES ('org-a', 'A', '2026-01-01T00:00:00.000Z'), ('org-b', 'B', '2026-01-01T00:00:00.000Z')`)
          )
          const run = (args: ReadonlyArray<string>, env: Record<string, string>) =>
            Effect.promise(() => relaviumAsync(args, { env: { RELAVIUM_MASTER_KEY: "", RELAVIUM_MASTER_KEYS: "", ...env } }))

          const rotated = yield* run(["keys", "rotate", "org-a", "--database-url", url, "--json"], { RELAVIUM_MASTER_KEY: oldKey })
          assert.strictEqual(rotated.status, 0, rotated.stderr)
          assert.deepStrictEqual(JSON.parse(rotated.stdout), { type: "rotate", orgId: "org-a", version: 2, retired: [1], resealed: 1, legacy: 0 })
          assert.notInclude(rotated.stderr, "audit entry was not written")
          const trail = yield* Effect.scoped(
            forOrg("org-a")(Effect.flatMap(AuditLog, (log) => log.list({}))).pipe(
              Effect.provide(Layer.provideMerge(SqlTenancy.layer, Database.layerPg({ url })))
            )
          )
          assert.deepStrictEqual(
            trail.map((entry) => [entry.actor, entry.action, entry.target, entry.detail]),
            [["operator", "key.rotate", "org-a", { version: 2, resealed: 1 }]]
          )

          const both = `2026-12:${newKey},2026-06:${oldKey}`
          const master = yield* run(["keys", "rotate-master", "--database-url", url], { RELAVIUM_MASTER_KEYS: both })
          assert.strictEqual(master.status, 0, master.stderr)
          assert.include(master.stdout, "every data key is wrapped under master key 2026-12")
          assert.include(master.stdout, "re-wrapped: 3 data keys (0 already under it)")
          const again = yield* run(["keys", "rotate-master", "--database-url", url, "--json"], { RELAVIUM_MASTER_KEYS: both })
          assert.strictEqual(again.status, 0, again.stderr)
          assert.deepInclude(JSON.parse(again.stdout), { type: "rotate-master", orgs: 2, rewrapped: 0, alreadyCurrent: 3, legacyResealed: 0 })

          // Without a master key, or with a malformed list: exit 2, nothing echoed.
          const missing = yield* run(["keys", "rotate-master", "--database-url", url], {})
          assert.strictEqual(missing.status, 2)
          assert.include(missing.stderr, "no master key: set RELAVIUM_MASTER_KEYS")
          const malformed = yield* run(["keys", "rotate", "org-a", "--database-url", url, "--json"], { RELAVIUM_MASTER_KEYS: newKey })
          assert.strictEqual(malformed.status, 2)
          assert.strictEqual(JSON.parse(malformed.stderr).code, "validation")
          // The old master alone opens nothing any more: exit 1 with the reason's message.
          const stale = yield* run(["keys", "rotate", "org-b", "--database-url", url], { RELAVIUM_MASTER_KEY: oldKey })
          assert.strictEqual(stale.status, 1)
          assert.include(stale.stderr, "which this process does not hold")

          for (const output of [rotated, master, again, missing, malformed, stale]) {
            const text = output.stdout + output.stderr
            for (const value of [oldKey, newKey, secrets["org-a"].openai, secrets["org-b"].anthropic]) assert.notInclude(text, value)
          }
          const NEW = { masterKeys: Redacted.make(`2026-12:${newKey}`) }
          const opened = yield* withStore(url, NEW, (keys) =>
            Effect.all([forOrg("org-a")(keys.get("openai")), forOrg("org-b")(keys.get("anthropic"))])
          )
          assert.deepStrictEqual(opened.map((key) => Redacted.value(Option.getOrThrow(key))), [secrets["org-a"].openai, secrets["org-b"].anthropic])
        }),
      ({ name }) => Effect.promise(() => dropDatabase(name))
    ), { timeout: 120_000 })
})

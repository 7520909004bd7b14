/**
 * `relavium keys rotate-master` and `relavium keys rotate <org>`: rotation of the distributed
 * mode's encrypted provider keys (KeyRotation in @relavium/store), run by the database operator
 * (a Postgres role that bypasses row-level security) with the master keys in the environment
 * (`RELAVIUM_MASTER_KEYS`, or `RELAVIUM_MASTER_KEY`; never flags). They print what was
 * re-wrapped and re-sealed — counts and ids, never a key — as text or, with `--json`, one JSON
 * object. A missing or malformed setting exits 2; a database that cannot be reached or a key
 * that does not open exits 1, and nothing of that org is changed.
 */
import { Console, Effect, Either, Layer, Option, type Redacted } from "effect"
import { AuditLog, forOrg, type KeyStoreError, type StoreError } from "@relavium/ports"
import { endingOf, ExitCode, keyRotationErrors } from "../ExitCodes.js"
import { Misconfigured } from "../Problem.js"
import * as Settings from "../runtime/Settings.js"
import type { RotateMasterArgs, RotateOrgArgs } from "../commands/Keys.js"

const loadStore = () => import("@relavium/store")

/** The database and master keys every rotation needs, checked before anything connects. */
const prepare = (databaseUrl: Option.Option<Redacted.Redacted<string>>) =>
  Effect.gen(function* () {
    if (Option.isNone(databaseUrl)) return yield* new Misconfigured({ message: "missing --database-url (or RELAVIUM_DATABASE_URL)" })
    const settings = yield* Settings.masterKey
    if (Option.isNone(settings)) {
      return yield* new Misconfigured({
        message: "no master key: set RELAVIUM_MASTER_KEYS (label:key,…, the current key first) or RELAVIUM_MASTER_KEY"
      })
    }
    const store = yield* Effect.promise(loadStore)
    const ring = store.SqlKeyStore.masterKeyring(settings.value)
    if (Either.isLeft(ring)) return yield* new Misconfigured({ message: ring.left.message })
    const database = store.Database.layerPg({ url: databaseUrl.value, migrate: "verify", maxConnections: 2 })
    return { store, settings: settings.value, database }
  })

const ended = (command: string, json: boolean) => (error: Misconfigured | StoreError | KeyStoreError) =>
  Effect.sync(() => {
    const ending = endingOf(keyRotationErrors, error) ?? { exit: ExitCode.failed, code: "failed" }
    process.stderr.write(
      json
        ? `${JSON.stringify({ type: "error", code: ending.code, message: error.message })}\n`
        : `relavium keys ${command}: ${error.message}\n`
    )
    process.exitCode = ending.exit
  })

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

export const rotateMaster = ({ databaseUrl, json }: RotateMasterArgs) =>
  Effect.gen(function* () {
    const { database, settings, store } = yield* prepare(databaseUrl)
    const report = yield* store.KeyRotation.rotateMaster(settings).pipe(Effect.provide(database))
    yield* Console.log(
      json
        ? JSON.stringify({ type: "rotate-master", ...report })
        : [
            `relavium keys rotate-master: every data key is wrapped under master key ${report.masterKeyLabel} (${report.masterKeyId})`,
            `  orgs:       ${report.orgs}`,
            `  re-wrapped: ${plural(report.rewrapped, "data key")} (${report.alreadyCurrent} already under it)`,
            `  re-sealed:  ${plural(report.legacyResealed, "provider key")} sealed directly under a master key, now under their org's data key`,
            "  Older master keys may now be removed from RELAVIUM_MASTER_KEYS once every process has restarted with this list."
          ].join("\n")
    )
  }).pipe(Effect.catchAll(ended("rotate-master", json)))

export const rotateOrg = ({ databaseUrl, json, org }: RotateOrgArgs) =>
  Effect.gen(function* () {
    const { database, settings, store } = yield* prepare(databaseUrl)
    const report = yield* Effect.gen(function* () {
      const rotated = yield* store.KeyRotation.rotateOrg(settings, org)
      // The org's audit trail records the rotation (the version and counts; never a key).
      yield* Effect.flatMap(AuditLog, (log) =>
        log.append({ actor: "operator", action: "key.rotate", target: org, detail: { version: rotated.version, resealed: rotated.resealed } })
      ).pipe(
        forOrg(org),
        Effect.catchAll((e) => Console.error(`relavium keys rotate ${org}: rotated, but the audit entry was not written: ${e.message}`))
      )
      return rotated
    }).pipe(Effect.provide(Layer.provideMerge(store.SqlTenancy.layer, database)))
    yield* Console.log(
      json
        ? JSON.stringify({ type: "rotate", ...report })
        : [
            `relavium keys rotate ${org}: data key version ${report.version}${
              report.retired.length > 0 ? ` (retired version ${report.retired.join(", ")})` : ""
            }`,
            `  re-sealed: ${plural(report.resealed, "provider key")}${report.legacy > 0 ? ` (${report.legacy} sealed directly under a master key before)` : ""}`
          ].join("\n")
    )
  }).pipe(Effect.catchAll(ended(`rotate ${org}`, json)))

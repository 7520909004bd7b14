/**
 * `relavium db migrate --database-url URL`: brings the distributed mode's
 * Postgres database to this build's schema under the migration advisory lock
 * (api replicas starting at the same time take turns with it) and says what it
 * applied. Running it again applies nothing. The Postgres client loads only
 * when the command runs.
 */
import { Command } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { endingOf, ExitCode, migrateErrors } from "../ExitCodes.js"
import { secretFlag } from "./Flags.js"
import * as Settings from "../runtime/Settings.js"

const migrate = Command.make(
  "migrate",
  {
    databaseUrl: secretFlag("database-url", Settings.databaseUrl, "Postgres: postgres://user[:password]@host:port/database")
  },
  ({ databaseUrl }) =>
    Effect.gen(function* () {
      if (Option.isNone(databaseUrl)) {
        process.stderr.write("relavium db migrate: missing --database-url (or RELAVIUM_DATABASE_URL)\n")
        process.exitCode = ExitCode.invalid
        return
      }
      const cloud = yield* Effect.promise(() => import("../runtime/Deployment.js"))
      const report = yield* cloud.migrate({ databaseUrl: databaseUrl.value })
      yield* Console.log(
        report.applied.length > 0
          ? `relavium db migrate: ${report.database}: applied ${report.applied.join(", ")} (schema ${report.version})`
          : `relavium db migrate: ${report.database}: up to date (schema ${report.version})`
      )
    }).pipe(
      Effect.catchAll((error) =>
        Effect.sync(() => {
          process.stderr.write(`relavium db migrate: ${error.message}\n`)
          process.exitCode = endingOf(migrateErrors, error)?.exit ?? ExitCode.failed
        })
      )
    )
).pipe(Command.withDescription("Bring the distributed mode's Postgres database to this build's schema (safe to run again, and alongside api replicas)"))

export const db = Command.make("db").pipe(
  Command.withDescription("The distributed mode's Postgres database"),
  Command.withSubcommands([migrate])
)

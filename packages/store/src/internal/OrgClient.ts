/**
 * The Postgres `SqlClient` every store uses: each statement runs for the fiber's `CurrentOrg`.
 *
 * Row-level security (Migrations.ts, `rowLevelSecurity`) lets a statement see and write only the
 * rows of the org named by the transaction-local setting `app.org_id`. This client sets it once
 * per transaction, here, so no store method has to:
 *
 * - a transaction (`withTransaction`, group commit, the migrator) sends `BEGIN` and
 *   `SELECT set_config('app.org_id', <org>, true)` as one simple-protocol message: the same one
 *   round trip `BEGIN` cost before. A savepoint sets the org of the fiber that opens it the same
 *   way (one message with the `SAVEPOINT`), so writes of several orgs can share a group commit,
 *   each under its own savepoint;
 * - a statement outside a transaction takes a pooled connection and runs as
 *   `BEGIN; set_config` (one message), the statement, `COMMIT`: three round trips instead of one.
 *   A statement that was one round trip on its own (PgAppend's one-statement append, reads) now
 *   costs three; inside a transaction nothing changes.
 *
 * The setting is never set for the session (`set_config(…, false)` or `SET`): it ends with the
 * transaction, so a pooled connection never carries an org into the next user's statements. An
 * org id is sent as a quoted literal (simple protocol takes no parameters), escaped like
 * node-postgres's `escapeLiteral`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import type { Compiler } from "@effect/sql/Statement"
import { Effect, Exit, type Scope, Stream } from "effect"
import { currentOrgId } from "@relavium/ports"

/** `value` as a Postgres string literal, whatever `standard_conforming_strings` is. */
export const quoteLiteral = (value: string): string => {
  const body = value.replaceAll("'", "''")
  return value.includes("\\") ? ` E'${body.replaceAll("\\", "\\\\")}'` : `'${body}'`
}

/** The statement that scopes the current transaction to `orgId`. */
export const setOrg = (orgId: string): string => `SELECT set_config('app.org_id', ${quoteLiteral(orgId)}, true)`

const checkedOrg = Effect.flatMap(currentOrgId, (orgId) =>
  orgId.includes("\u0000")
    ? Effect.fail(new SqlError({ message: "an org id cannot contain a NUL character", cause: undefined }))
    : Effect.succeed(orgId)
)

const beginText = "BEGIN"
const savepointText = (name: string) => `SAVEPOINT ${name}`

/** A transaction's connection: its BEGIN and each SAVEPOINT also set the org of the fiber issuing them. */
const transactionConnection = (connection: Connection): Connection => ({
  // The driver's connection is a class instance: its methods are bound, not spread.
  execute: (text, params, transformRows) => connection.execute(text, params, transformRows),
  executeRaw: (text, params) => connection.executeRaw(text, params),
  executeValues: (text, params) => connection.executeValues(text, params),
  executeStream: (text, params, transformRows) => connection.executeStream(text, params, transformRows),
  executeUnprepared: (text, params, transformRows) =>
    text === beginText || text.startsWith("SAVEPOINT ")
      ? Effect.flatMap(checkedOrg, (orgId) => Effect.as(connection.executeRaw(`${text}; ${setOrg(orgId)}`, []), []))
      : connection.executeUnprepared(text, params, transformRows)
})

/**
 * Runs `body` on a pooled connection inside a transaction of its own scoped to the current org:
 * committed when it succeeds, rolled back otherwise (interruption included), so the connection
 * goes back to the pool outside any transaction.
 */
const ownTransaction = <A>(
  reserve: Effect.Effect<Connection, SqlError, Scope.Scope>,
  body: (connection: Connection) => Effect.Effect<A, SqlError>
): Effect.Effect<A, SqlError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.scoped(
      Effect.gen(function* () {
        const orgId = yield* checkedOrg
        const connection = yield* reserve
        const exit = yield* Effect.exit(
          restore(Effect.zipRight(connection.executeRaw(`BEGIN; ${setOrg(orgId)}`, []), body(connection)))
        )
        if (Exit.isSuccess(exit)) {
          yield* connection.executeRaw("COMMIT", [])
          return exit.value
        }
        yield* Effect.ignore(connection.executeRaw("ROLLBACK", []))
        return yield* exit
      })
    )
  )

/**
 * Wraps a Postgres client so that every statement runs for `CurrentOrg` (see above). The
 * driver-specific members (`config`, `json`, `listen`, `notify`) are kept.
 */
export const make = <C extends SqlClient.SqlClient>(pg: C, compiler: Compiler) =>
  Effect.gen(function* () {
    const reserve = pg.reserve
    const standalone: Connection = {
      execute: (text, params, transformRows) => ownTransaction(reserve, (c) => c.execute(text, params, transformRows)),
      executeRaw: (text, params) => ownTransaction(reserve, (c) => c.executeRaw(text, params)),
      executeValues: (text, params) => ownTransaction(reserve, (c) => c.executeValues(text, params)),
      executeUnprepared: (text, params, transformRows) =>
        ownTransaction(reserve, (c) => c.executeUnprepared(text, params, transformRows)),
      executeStream: (text, params, transformRows) =>
        Stream.unwrapScoped(
          Effect.gen(function* () {
            const orgId = yield* checkedOrg
            const connection = yield* reserve
            yield* connection.executeRaw(`BEGIN; ${setOrg(orgId)}`, [])
            yield* Effect.addFinalizer((exit) =>
              Effect.ignore(connection.executeRaw(Exit.isSuccess(exit) ? "COMMIT" : "ROLLBACK", []))
            )
            return connection.executeStream(text, params, transformRows)
          })
        )
    }
    const client = yield* SqlClient.make({
      acquirer: Effect.succeed(standalone),
      transactionAcquirer: Effect.map(reserve, transactionConnection),
      compiler,
      spanAttributes: [["db.system.name", "postgresql"]],
      beginTransaction: beginText,
      savepoint: savepointText
    })
    const driver = pg as unknown as Record<string, unknown>
    return Object.assign(client, {
      [pgTypeId]: pgTypeId,
      config: driver["config"],
      json: driver["json"],
      listen: driver["listen"],
      notify: driver["notify"]
    }) as unknown as C
  })

/** @effect/sql-pg's brand of a `PgClient`. */
const pgTypeId = "~@effect/sql-pg/PgClient"

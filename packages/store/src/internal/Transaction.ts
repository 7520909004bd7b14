/**
 * Transactions for the write path of a run, with every statement prepared once.
 *
 * `SqlClient.withTransaction` issues BEGIN and COMMIT unprepared (SQLite compiles them again for
 * every transaction) and runs each statement inside its own span and scope; on a durable step of a
 * few microseconds of SQLite work that costs more than the work. Here, on SQLite, BEGIN, COMMIT
 * and ROLLBACK go through the connection's prepared-statement cache like any other statement, and
 * the statements of the hot path are compiled to their dialect's text once (`compiled`) and run
 * directly on the transaction's connection. Postgres keeps `withTransaction`; its body gets the
 * same connection interface. Tagged statements (`sql\`…\``) inside the body run on the
 * transaction's connection too.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import type { Statement } from "@effect/sql/Statement"
import { Effect, Exit, Scope } from "effect"

/** A statement's text in the client's dialect (its parameters are given at each run). */
export const compiled = (statement: Statement<unknown>): string => statement.compile()[0]

/** Runs compiled statement text with its parameters on a connection; rows as the driver returns them. */
export const run = <A = Record<string, unknown>>(
  connection: Connection,
  text: string,
  params: ReadonlyArray<unknown>
): Effect.Effect<ReadonlyArray<A>, SqlError> =>
  connection.execute(text, params as Array<unknown>, undefined) as Effect.Effect<ReadonlyArray<A>, SqlError>

const end = (connection: Connection, text: "COMMIT" | "ROLLBACK") => connection.execute(text, [], undefined)

/**
 * Runs `body` in one transaction on `sql` and commits it, or rolls it back when `body` fails.
 * A COMMIT that fails is rolled back and fails the transaction with its SqlError.
 */
export const transaction = <A, E>(
  sql: SqlClient.SqlClient,
  body: (connection: Connection) => Effect.Effect<A, E>
): Effect.Effect<A, E | SqlError> =>
  sql.onDialectOrElse({
    sqlite: () =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(Scope.make(), (scope) =>
          Effect.flatMap(Scope.extend(sql.reserve, scope), (connection) =>
            connection.execute("BEGIN", [], undefined).pipe(
              Effect.zipRight(restore(Effect.provideService(body(connection), SqlClient.TransactionConnection, [connection, 0]))),
              Effect.exit,
              Effect.flatMap(
                (exit): Effect.Effect<A, E | SqlError> =>
                  Exit.isSuccess(exit)
                    ? end(connection, "COMMIT").pipe(
                        Effect.as(exit.value),
                        Effect.tapError(() => Effect.ignore(end(connection, "ROLLBACK")))
                      )
                    : Effect.zipRight(Effect.orDie(end(connection, "ROLLBACK")), exit)
              )
            )
          ).pipe(Effect.onExit((exit) => Scope.close(scope, exit)))
        )
      ),
    orElse: () =>
      sql.withTransaction(
        Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (held) =>
          held._tag === "Some" ? body(held.value[0]) : Effect.dieMessage("withTransaction provided no connection")
        )
      )
  })

/**
 * Runs `body` on the connection of the transaction it is already inside (`transaction` above, or
 * `withTransaction`, whose nested calls are savepoints): an append's statements, whoever commits them.
 */
export const inTransaction = <A, E>(body: (connection: Connection) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.flatMap(
    Effect.serviceOption(SqlClient.TransactionConnection),
    (held): Effect.Effect<A, E> => (held._tag === "Some" ? body(held.value[0]) : Effect.dieMessage("an append ran outside a transaction"))
  )

/**
 * Group commit: writes that arrive while others are being committed share one
 * transaction, so a burst of appends from many runs costs one commit (one WAL
 * flush on Postgres) instead of one each.
 *
 * Each write of a shared transaction runs under its own savepoint: one that is
 * refused (a closed run, a sequence conflict) or fails rolls back alone, and
 * the others still commit. A write's caller is answered only after the shared
 * commit: if that commit fails, every write of it fails (with `lost`), none is
 * reported written. Writes are taken in key order (a stable sort, so two
 * writes of one key keep their order): two transactions in flight lock rows
 * keyed the same way in the same order and cannot deadlock each other.
 *
 * Writes run in the writer fibers, not their callers': each runs for its caller's org (`forOrg`),
 * so on Postgres its savepoint scopes it to that org, and writes of several orgs can share one
 * transaction without seeing each other's rows.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Chunk, Deferred, Effect, Exit, Queue, type Scope } from "effect"
import { currentOrgId, forOrg } from "@relavium/ports"

export interface GroupCommitOptions {
  /** Transactions in flight at once; each holds a pooled connection while it runs. */
  readonly writers: number
  /** The most writes one transaction takes. */
  readonly maxBatch: number
}

interface Write<A, E> {
  readonly key: string
  /** The org of the caller: the write runs for it (its savepoint sets it; see OrgClient.ts). */
  readonly orgId: string
  readonly body: Effect.Effect<A, E>
  readonly done: Deferred.Deferred<A, E>
}

const byKey = (a: { readonly key: string }, b: { readonly key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

/**
 * A function that runs `body` in a transaction shared with the writes arriving meanwhile. `lost`
 * turns a failure outside any one write (BEGIN or COMMIT failing, a connection lost) into the
 * writes' error. The writers live until the scope closes.
 */
export const make = <A, E>(
  options: GroupCommitOptions,
  lost: (cause: Cause.Cause<unknown>) => E
): Effect.Effect<(key: string, body: Effect.Effect<A, E>) => Effect.Effect<A, E>, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const pending = yield* Effect.acquireRelease(Queue.unbounded<Write<A, E>>(), Queue.shutdown)

    /** A write's own failure stands; anything else (a defect, a failed statement or COMMIT) is `lost`. */
    const settled = (exit: Exit.Exit<A, E | SqlError>): Exit.Exit<A, E> =>
      Exit.isSuccess(exit)
        ? Exit.succeed(exit.value)
        : Cause.isFailType(exit.cause) && !(exit.cause.error instanceof SqlError)
          ? Exit.fail(exit.cause.error)
          : Exit.fail(lost(exit.cause))

    const commitOne = (write: Write<A, E>) =>
      forOrg(write.orgId)(sql.withTransaction(write.body)).pipe(
        Effect.exit,
        Effect.flatMap((exit) => Deferred.done(write.done, settled(exit)))
      )

    const commitMany = (writes: ReadonlyArray<Write<A, E>>) =>
      sql
        .withTransaction(Effect.forEach(writes, (write) => Effect.exit(forOrg(write.orgId)(sql.withTransaction(write.body)))))
        .pipe(
          Effect.exit,
          Effect.flatMap((outer) =>
            Effect.forEach(
              writes,
              (write, i) =>
                Deferred.done(write.done, Exit.isSuccess(outer) ? settled(outer.value[i]!) : Exit.fail(lost(outer.cause))),
              { discard: true }
            )
          )
        )

    const writer = Queue.takeBetween(pending, 1, options.maxBatch).pipe(
      Effect.flatMap((chunk) => {
        const writes = Chunk.toArray(chunk).sort(byKey)
        return (writes.length === 1 ? commitOne(writes[0]!) : commitMany(writes)).pipe(
          Effect.onInterrupt(() => Effect.forEach(writes, (write) => Deferred.interrupt(write.done), { discard: true }))
        )
      }),
      Effect.forever
    )
    yield* Effect.forkScoped(Effect.all(Array.from({ length: Math.max(1, options.writers) }, () => writer), { concurrency: "unbounded", discard: true }))

    return (key: string, body: Effect.Effect<A, E>) =>
      Effect.flatMap(Effect.zip(Deferred.make<A, E>(), currentOrgId), ([done, orgId]) =>
        Queue.offer(pending, { key, orgId, body, done }).pipe(Effect.zipRight(Deferred.await(done)))
      )
  })

/**
 * A keyed live topic on core NATS for any numbered log besides runs (a chat's
 * events): entries of key K go to the subject `<subjectPrefix>.<kind>.<K>` as
 * a JSON array of Schema-encoded entries (one message per key per publish,
 * keeping the publisher's order), and a subscriber decodes each with the same
 * schema, skipping a malformed message. Best effort, like `NatsUpdateHub`:
 * followers join it to the stored log with `NumberedLog.follow`, which fills
 * a lost or reordered entry from the store.
 */
import type { NatsConnection, Subscription } from "nats"
import { Chunk, Effect, Either, Queue, Schema, type Scope, Stream } from "effect"

export interface TopicOptions<A, I> {
  /** The subject token after the prefix (e.g. `chat`). */
  readonly kind: string
  readonly subjectPrefix?: string | undefined
  readonly schema: Schema.Schema<A, I>
  readonly keyOf: (entry: A) => string
}

export interface Topic<A> {
  readonly publish: (entries: ReadonlyArray<A>) => Effect.Effect<void>
  /** Subscribes now: once this returns, every entry published afterwards (by any connection) is delivered. */
  readonly subscribe: (key: string) => Effect.Effect<Stream.Stream<A>, never, Scope.Scope>
}

/** NATS subject tokens cannot hold `.`, `*`, `>` or whitespace. */
const token = (value: string) => value.replace(/[.*>\s]/g, "_")

export const topicSubject = (subjectPrefix: string, kind: string, key: string) => `${subjectPrefix}.${token(kind)}.${token(key)}`

/** The topic over an open connection (its scope owns the connection). */
export const make = <A, I>(nc: NatsConnection, options: TopicOptions<A, I>): Topic<A> => {
  const prefix = options.subjectPrefix ?? "relavium"
  const encode = Schema.encodeSync(Schema.Array(options.schema))
  const decode = Schema.decodeUnknownEither(Schema.Array(options.schema))

  const publish = (entries: ReadonlyArray<A>): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (entries.length === 0 || nc.isClosed()) return Effect.void
      const byKey = new Map<string, Array<A>>()
      for (const entry of entries) {
        const key = options.keyOf(entry)
        let list = byKey.get(key)
        if (list === undefined) byKey.set(key, (list = []))
        list.push(entry)
      }
      return Effect.try(() => {
        for (const [key, list] of byKey) nc.publish(topicSubject(prefix, options.kind, key), JSON.stringify(encode(list)))
      }).pipe(Effect.catchAll((error) => Effect.logWarning(`cannot publish ${options.kind} events on NATS`, error.error)))
    })

  const subscribe = (key: string): Effect.Effect<Stream.Stream<A>, never, Scope.Scope> =>
    Effect.gen(function* () {
      const queue = yield* Effect.acquireRelease(Queue.unbounded<ReadonlyArray<A>>(), Queue.shutdown)
      yield* Effect.acquireRelease(
        Effect.sync(
          (): Subscription =>
            nc.subscribe(topicSubject(prefix, options.kind, key), {
              callback: (error, message) => {
                if (error !== null) return
                let parsed: unknown
                try {
                  parsed = message.json()
                } catch {
                  return
                }
                const decoded = decode(parsed)
                if (Either.isRight(decoded)) queue.unsafeOffer(decoded.right)
              }
            })
        ),
        (subscription) => Effect.sync(() => subscription.unsubscribe())
      )
      // Registered on the server once a round trip after the subscribe.
      yield* Effect.promise(() => nc.flush().catch(() => undefined))
      return Stream.fromQueue(queue).pipe(Stream.mapConcatChunk((entries) => Chunk.unsafeFromArray([...entries])))
    })

  return { publish, subscribe }
}

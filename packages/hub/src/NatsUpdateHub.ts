/**
 * `UpdateHub` on core NATS: each run's events go to the subject
 * `<subjectPrefix>.run.<runId>` as JSON (one message per run per publish, an
 * array of Schema-encoded events), so an api replica can stream the events a
 * worker in another process commits. Core NATS is at-most-once and keeps
 * nothing: `EventLog.follow` subscribes first, replays from the store and
 * fills any gap by sequence number.
 */
import { connect, type NatsConnection, type Subscription } from "nats"
import { Chunk, Data, Duration, Effect, Either, Layer, Queue, Schema, type Scope, Stream } from "effect"
import { RunEvent as RE } from "@relavium/domain"
import { UpdateHub } from "@relavium/ports"

export class HubError extends Data.TaggedError("HubError")<{ readonly message: string; readonly cause?: unknown }> {}

export interface NatsOptions {
  /** One or more `nats://host:port` URLs (credentials in a URL are never shown in an error). */
  readonly servers: string | ReadonlyArray<string>
  /** The first tokens of every subject, e.g. `relavium` or `relavium.<deployment>`. */
  readonly subjectPrefix?: string | undefined
  /** How long to wait for NATS before failing (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Shown by the NATS server in its connection list. */
  readonly name?: string | undefined
}

/** A NATS URL without its credentials, for messages. */
export const redactUrl = (url: string): string => url.replace(/\/\/[^@/]*@/, "//***@")

/** NATS subject tokens cannot hold `.`, `*`, `>` or whitespace; run ids are UUIDs, but be safe. */
const token = (value: string) => value.replace(/[.*>\s]/g, "_")

export const subjectOf = (subjectPrefix: string, runId: string) => `${subjectPrefix}.run.${token(runId)}`

const encodeEvents = Schema.encodeSync(Schema.Array(RE.RunEvent))
const decodeEvents = Schema.decodeUnknownEither(Schema.Array(RE.RunEvent))

const describeError = (cause: unknown): string => {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code
    return typeof code === "string" && !cause.message.includes(code) ? `${cause.message} (${code})` : cause.message
  }
  return String(cause)
}

/**
 * A NATS connection for the scope, drained when it closes; fails with a `HubError` naming NATS and
 * its URL (credentials masked) when it cannot be reached. Shared by the hub and the tool-call router.
 */
export const acquireConnection = (
  options: Pick<NatsOptions, "servers" | "connectTimeout" | "name">
): Effect.Effect<NatsConnection, HubError, Scope.Scope> => {
  const servers = typeof options.servers === "string" ? [options.servers] : [...options.servers]
  const shown = servers.map(redactUrl).join(", ")
  const timeout = Duration.decode(options.connectTimeout ?? "5 seconds")
  return Effect.acquireRelease(
    Effect.tryPromise({
      try: () => connect({ servers, timeout: Duration.toMillis(timeout), name: options.name ?? "relavium-hub" }),
      catch: (cause) =>
        new HubError({
          message: `cannot reach NATS at ${shown}: ${describeError(cause)}; is NATS running? \`bash scripts/services.sh\` starts it`,
          cause
        })
    }).pipe(
      Effect.timeoutFail({
        duration: Duration.sum(timeout, Duration.seconds(1)),
        onTimeout: () => new HubError({ message: `cannot reach NATS at ${shown}: no answer within ${Duration.format(timeout)}` })
      })
    ),
    (nc: NatsConnection) =>
      // Drain sends what is buffered and ends subscriptions cleanly; close if it takes too long.
      Effect.tryPromise(() => nc.drain()).pipe(
        Effect.timeout("3 seconds"),
        Effect.catchAll(() => Effect.tryPromise(() => nc.close())),
        Effect.ignore
      )
  )
}

/** `UpdateHub` on NATS; fails with a `HubError` naming NATS and its URL when it cannot be reached. */
export const layerNats = (options: NatsOptions): Layer.Layer<UpdateHub, HubError> =>
  Layer.scoped(
    UpdateHub,
    Effect.gen(function* () {
      const shown = (typeof options.servers === "string" ? [options.servers] : [...options.servers]).map(redactUrl).join(", ")
      const subjectPrefix = options.subjectPrefix ?? "relavium"
      const nc = yield* acquireConnection(options)

      const publish: UpdateHub["Type"]["publish"] = (events) =>
        Effect.suspend(() => {
          if (events.length === 0 || nc.isClosed()) return Effect.void
          // One message per run, keeping the publisher's order (NATS keeps it per connection).
          const byRun = new Map<string, Array<RE.RunEvent>>()
          for (const event of events) {
            let list = byRun.get(event.runId)
            if (list === undefined) byRun.set(event.runId, (list = []))
            list.push(event)
          }
          return Effect.try(() => {
            for (const [runId, list] of byRun) nc.publish(subjectOf(subjectPrefix, runId), JSON.stringify(encodeEvents(list)))
          }).pipe(
            // Delivery is best effort: a subscriber fills what it missed from the stored log.
            Effect.catchAll((error) => Effect.logWarning(`cannot publish run events on NATS at ${shown}`, error.error))
          )
        })

      const subscribe: UpdateHub["Type"]["subscribe"] = (runId) =>
        Effect.gen(function* () {
          const queue = yield* Effect.acquireRelease(Queue.unbounded<ReadonlyArray<RE.RunEvent>>(), Queue.shutdown)
          const subject = subjectOf(subjectPrefix, runId)
          yield* Effect.acquireRelease(
            Effect.sync(
              (): Subscription =>
                nc.subscribe(subject, {
                  callback: (error, message) => {
                    if (error !== null) return
                    let parsed: unknown
                    try {
                      parsed = message.json()
                    } catch {
                      return
                    }
                    const decoded = decodeEvents(parsed)
                    // A malformed message is skipped; the stored log still has the events.
                    if (Either.isRight(decoded)) queue.unsafeOffer(decoded.right)
                  }
                })
            ),
            (subscription) => Effect.sync(() => subscription.unsubscribe())
          )
          // The server has registered the subscription once a round trip after it completes:
          // only then is every event published afterwards (by any connection) delivered here.
          yield* Effect.promise(() => nc.flush().catch(() => undefined))
          return Stream.fromQueue(queue).pipe(Stream.mapConcatChunk((events) => Chunk.unsafeFromArray([...events])))
        })

      return UpdateHub.of({ publish, subscribe })
    })
  )

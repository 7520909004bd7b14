/**
 * `UpdateHub` on Redis Streams: each run's events go to the stream
 * `<keyPrefix>:run-events:<runId>`, one entry per event, whose id is the
 * event's sequence number (`<seq>-1`), so a follower's `Last-Event-ID` is a
 * stream id. Streams are trimmed to about `maxLen` entries (`MAXLEN ~`) and
 * expire `retention` after their last event.
 *
 * Subscribers of one process share one blocking connection: a reader fiber
 * `XREAD BLOCK`s on every subscribed run's stream from the last id it read. A
 * new subscription wakes it by adding to a wake-up stream of this process that
 * every read includes, so no read can miss the new run. A follower's replay
 * reads the stream from its sequence number (`XRANGE`); when the stream no
 * longer holds that point (trimmed, expired, never written) `EventLog.follow`
 * reads the store instead, and any gap is filled from the store as on NATS.
 */
import { Redis, type RedisOptions } from "ioredis"
import { Duration, Effect, Either, Layer, Option, Queue, Runtime, Schema, type Scope, Stream } from "effect"
import { RunEvent as RE } from "@relavium/domain"
import { UpdateHub } from "@relavium/ports"
import { HubError } from "./NatsUpdateHub.js"

export interface RedisStreamsOptions {
  /** `redis://[user:password@]host:port[/db]` (a password is never shown in an error). */
  readonly url: string
  /** The first part of every key, e.g. `relavium` or `relavium:<deployment>` (default `relavium`). */
  readonly keyPrefix?: string | undefined
  /** About how many events each run's stream keeps (default 1,000); older ones are read from the store. */
  readonly maxLen?: number | undefined
  /** How long a run's stream lives after its last event (default 1 hour). */
  readonly retention?: Duration.DurationInput | undefined
  /** How long to wait for Redis before failing (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/** A Redis URL without its password, for messages. */
export const redactUrl = (url: string): string => url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@")

export const streamKey = (keyPrefix: string, runId: string) => `${keyPrefix}:run-events:${runId}`

/** The stream id of the event numbered `seq` (`0-0` is not a valid id, hence the `-1`). */
export const entryId = (seq: number) => `${seq}-1`

const seqOfId = (id: string): number => Number(id.slice(0, id.indexOf("-")))

const decodeEvent = Schema.decodeUnknownEither(Schema.parseJson(RE.RunEvent))

/** One stream entry `[id, [field, value, …]]` as ioredis returns it. */
type Entry = [id: string, fields: Array<string>]

/** The event in an entry, or none when it is not one (a malformed or foreign entry is skipped). */
const eventOf = ([, fields]: Entry): RE.RunEvent | undefined => {
  const at = fields.indexOf("e")
  if (at < 0 || at % 2 !== 0) return undefined
  const decoded = decodeEvent(fields[at + 1])
  return Either.isRight(decoded) ? decoded.right : undefined
}

const describeError = (cause: unknown): string => (cause instanceof Error ? cause.message || cause.name : String(cause))

/**
 * A connected client for the scope, proven with a PING; fails with a `HubError` naming Redis and
 * its URL (password masked) instead of retrying for ever when Redis cannot be reached.
 */
const acquireClient = (url: string, timeout: Duration.Duration, options: RedisOptions) => {
  const unreachable = (reason: string, cause?: unknown) =>
    new HubError({
      message: `cannot reach Redis at ${redactUrl(url)}: ${reason}; is Redis running? \`bash scripts/services.sh\` starts it`,
      cause
    })
  return Effect.acquireRelease(
    Effect.suspend(() => {
      let lastError: unknown
      const client = new Redis(url, { ...options, lazyConnect: true, connectTimeout: Duration.toMillis(timeout) })
      // Errors while connected are reported by the failing command; keep them from going unhandled.
      client.on("error", (error) => (lastError = error))
      return Effect.tryPromise({
        try: () => client.connect().then(() => client.ping()),
        catch: (cause) => unreachable(describeError(lastError ?? cause), lastError ?? cause)
      }).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => unreachable(`no answer within ${Duration.format(timeout)}`) }),
        Effect.as(client),
        Effect.tapError(() => Effect.sync(() => client.disconnect()))
      )
    }),
    (client) => Effect.sync(() => client.disconnect())
  )
}

interface Subscriber {
  readonly queue: Queue.Queue<RE.RunEvent>
  /** Only events numbered above this were published after the subscription. */
  readonly after: number
}

interface Watched {
  /** The last id read from the stream. */
  cursor: string
  readonly subscribers: Set<Subscriber>
}

/** `UpdateHub` on Redis Streams; fails with a `HubError` naming Redis and its URL when it cannot be reached. */
export const layerRedisStreams = (options: RedisStreamsOptions): Layer.Layer<UpdateHub, HubError> =>
  Layer.scoped(UpdateHub, make(options))

const make = (options: RedisStreamsOptions): Effect.Effect<UpdateHub["Type"], HubError, Scope.Scope> =>
  Effect.gen(function* () {
    const keyPrefix = options.keyPrefix ?? "relavium"
    const maxLen = String(options.maxLen ?? 1000)
    const retentionMs = String(Duration.toMillis(options.retention ?? "1 hour"))
    const timeout = Duration.decode(options.connectTimeout ?? "5 seconds")
    const shown = redactUrl(options.url)
    const runtime = yield* Effect.runtime<never>()
    const warn = (message: string, cause: unknown) => Runtime.runFork(runtime)(Effect.logWarning(message, describeError(cause)))

    // Publishes and replays fail fast while Redis is away (delivery is best effort); the reader waits.
    const commands = yield* acquireClient(options.url, timeout, { maxRetriesPerRequest: 1 })
    const reader = yield* acquireClient(options.url, timeout, { maxRetriesPerRequest: null })

    const watched = new Map<string, Watched>()
    const wakeKey = `${keyPrefix}:hub-wake:${crypto.randomUUID()}`
    let wakeCursor = "0-0"
    yield* Effect.addFinalizer(() => Effect.promise(() => commands.del(wakeKey).catch(() => 0)))

    const deliver = (key: string, entries: ReadonlyArray<Entry>) => {
      const target = watched.get(key)
      if (target === undefined || entries.length === 0) return
      target.cursor = entries[entries.length - 1]![0]
      for (const entry of entries) {
        const event = eventOf(entry)
        if (event === undefined) continue
        for (const subscriber of target.subscribers) {
          if (event.sequenceNumber > subscriber.after) subscriber.queue.unsafeOffer(event)
        }
      }
    }

    // One blocking read over every watched stream and the wake-up stream, from the last id read of each.
    const readOnce = Effect.suspend(() => {
      const keys = [wakeKey, ...watched.keys()]
      const ids = [wakeCursor, ...[...watched.values()].map((w) => w.cursor)]
      return Effect.tryPromise(() => reader.xread("COUNT", 1000, "BLOCK", 5000, "STREAMS", ...keys, ...ids)).pipe(
        Effect.map((reply) => {
          for (const [key, entries] of reply ?? []) {
            if (key === wakeKey) wakeCursor = entries.length > 0 ? entries[entries.length - 1]![0] : wakeCursor
            else deliver(key, entries as Array<Entry>)
          }
        })
      )
    })
    // Redis went away: say so once, wait a little and read again from the same ids until it is back.
    let failing = false
    yield* readOnce.pipe(
      Effect.tap(() => Effect.sync(() => (failing = false))),
      Effect.catchAll((error) =>
        Effect.zipRight(
          Effect.sync(() => {
            if (!failing) warn(`cannot read run events from Redis at ${shown}; retrying`, error.error)
            failing = true
          }),
          Effect.sleep("200 millis")
        )
      ),
      Effect.forever,
      Effect.forkScoped
    )

    const publish: UpdateHub["Type"]["publish"] = (events) =>
      Effect.sync(() => {
        if (events.length === 0) return
        const pipeline = commands.pipeline()
        const keys = new Set<string>()
        for (const event of events) {
          const key = streamKey(keyPrefix, event.runId)
          keys.add(key)
          pipeline.xadd(key, "MAXLEN", "~", maxLen, entryId(event.sequenceNumber), "e", RE.encodeRunEventJson(event))
        }
        for (const key of keys) pipeline.pexpire(key, retentionMs)
        // Not awaited: the commit goes on while Redis appends (one connection keeps the order).
        pipeline.exec().then(
          (results) => {
            // An id at or below the stream's last is another writer's later event, added first:
            // followers fill that one from the store. Anything else is worth a warning.
            const failed = results?.find(([error]) => error !== null && !/equal or smaller/.test(error.message))
            if (failed !== undefined) warn(`cannot publish run events on Redis at ${shown}`, failed[0])
          },
          (error: unknown) => warn(`cannot publish run events on Redis at ${shown}`, error)
        )
      })

    const wake = Effect.tryPromise(() =>
      commands.multi().xadd(wakeKey, "MAXLEN", "1", "*", "w", "1").pexpire(wakeKey, retentionMs).exec()
    )

    const subscribe: UpdateHub["Type"]["subscribe"] = (runId) =>
      Effect.gen(function* () {
        const key = streamKey(keyPrefix, runId)
        const queue = yield* Effect.acquireRelease(Queue.unbounded<RE.RunEvent>(), Queue.shutdown)
        // Events published from now on get ids above the stream's last one.
        const last = yield* Effect.tryPromise(() => commands.xrevrange(key, "+", "-", "COUNT", 1)).pipe(
          Effect.map((entries) => entries[0]?.[0]),
          Effect.orElseSucceed(() => undefined)
        )
        const subscriber: Subscriber = { queue, after: last === undefined ? -1 : seqOfId(last) }
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            const existing = watched.get(key)
            if (existing !== undefined) existing.subscribers.add(subscriber)
            else watched.set(key, { cursor: last ?? "0-0", subscribers: new Set([subscriber]) })
          }),
          () =>
            Effect.sync(() => {
              const target = watched.get(key)
              target?.subscribers.delete(subscriber)
              if (target?.subscribers.size === 0) watched.delete(key)
            })
        )
        // The reader may be blocked on a read without this stream: wake it. If Redis is away the
        // reader is retrying anyway, and reads this stream from `last` once it is back.
        yield* Effect.ignore(wake)
        return Stream.fromQueue(queue)
      })

    const replay: NonNullable<UpdateHub["Type"]["replay"]> = (runId, after) =>
      Effect.tryPromise(() => {
        const key = streamKey(keyPrefix, runId)
        return commands.pipeline().xrange(key, "-", "+", "COUNT", 1).xrange(key, entryId(after + 1), "+").exec()
      }).pipe(
        Effect.map((results) => {
          const [oldest, rest] = (results ?? []).map(([error, value]) => (error === null ? (value as Array<Entry>) : undefined))
          const first = oldest?.[0]
          // Nothing kept (expired, never written) or the stream no longer reaches back to `after + 1`.
          if (rest === undefined || first === undefined || seqOfId(first[0]) > after + 1) return Option.none()
          const events: Array<RE.RunEvent> = []
          for (const entry of rest) {
            const event = eventOf(entry)
            if (event === undefined) return Option.none()
            events.push(event)
          }
          return Option.some(events)
        }),
        Effect.orElseSucceed(() => Option.none())
      )

    return UpdateHub.of({ publish, subscribe, replay })
  })

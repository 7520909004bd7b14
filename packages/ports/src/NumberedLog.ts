/**
 * The one way a numbered log (a run's events, a chat's events) is followed:
 * the stored entries after a point, then the live tail of a best-effort hub,
 * each entry once and in order. A hub may deliver another writer's entries
 * early or drop one (core NATS is at most once), so a gap is filled from the
 * store, and the store is re-read now and then in case nothing follows a lost
 * entry to reveal it. Writers store first and publish after, so whatever a
 * follower sees from the hub can always be found in the store.
 */
import { Chunk, type Duration, Effect, Option, Queue, type Scope, Stream } from "effect"

export interface NumberedSource<E, Err> {
  /** Subscribes now: entries published after this returns are seen. */
  readonly subscribe: Effect.Effect<Stream.Stream<E>, never, Scope.Scope>
  /** The stored entries numbered after `after`, in order. */
  readonly read: (after: number) => Effect.Effect<ReadonlyArray<E>, Err>
  /**
   * The entries after `after` the hub still keeps, when it keeps the first of them; the
   * store is read instead on `None` (or without it), and for any gap in what it gives.
   */
  readonly replay?: ((after: number) => Effect.Effect<Option.Option<ReadonlyArray<E>>>) | undefined
  readonly seqOf: (entry: E) => number
  /** An entry after which nothing more is logged (the stream ends with it). */
  readonly isLast?: ((entry: E) => boolean) | undefined
  /** How often a waiting follower re-reads the store. */
  readonly catchUpInterval?: Duration.DurationInput | undefined
}

const CATCH_UP_INTERVAL = "2 seconds"

/** Every entry numbered after `after`, stored ones first, then the live tail. */
export const follow = <E, Err>(source: NumberedSource<E, Err>, after: number): Stream.Stream<E, Err> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const { read, seqOf, isLast } = source
      const live = yield* source.subscribe
      let next = after + 1
      const inOrder = (entries: ReadonlyArray<E>) => {
        const fresh = entries.filter((e) => seqOf(e) >= next)
        if (fresh.length > 0) next = seqOf(fresh[fresh.length - 1]!) + 1
        return fresh
      }
      // Chunk by chunk: in the usual case (entries arrive in order) no effect runs per entry.
      const fromHub = (entries: ReadonlyArray<E>): Effect.Effect<ReadonlyArray<E>, Err> => {
        const out: Array<E> = []
        for (const entry of entries) {
          const seq = seqOf(entry)
          if (seq < next) continue
          if (seq === next) {
            out.push(entry)
            next += 1
            continue
          }
          let upTo = seq
          for (const e of entries) if (seqOf(e) > upTo) upTo = seqOf(e)
          return read(next - 1).pipe(Effect.map((stored) => [...out, ...inOrder(stored.filter((e) => seqOf(e) <= upTo))]))
        }
        return Effect.succeed(out)
      }
      // What the hub still keeps spares the store a read; a trimmed or missing start falls back to it.
      const replayed = source.replay === undefined ? Option.none() : yield* source.replay(after)
      const first = Option.isSome(replayed) ? yield* fromHub(replayed.value) : inOrder(yield* read(after))
      const end = <R>(stream: Stream.Stream<E, Err, R>) => (isLast === undefined ? stream : Stream.takeUntil(stream, isLast))
      if (isLast !== undefined && first.some(isLast)) return end(Stream.fromIterable(first))
      const tail = Stream.merge(
        live.pipe(Stream.chunks, Stream.map((chunk) => Chunk.toReadonlyArray(chunk))),
        Stream.tick(source.catchUpInterval ?? CATCH_UP_INTERVAL).pipe(Stream.map(() => undefined))
      ).pipe(
        // One element at a time, so `next` moves in order whichever source woke us.
        Stream.mapEffect((entries) => (entries === undefined ? read(next - 1).pipe(Effect.map(inOrder)) : fromHub(entries))),
        Stream.flattenIterables
      )
      return end(Stream.concat(Stream.fromIterable(first), tail))
    })
  )

export interface MemoryHub<E> {
  readonly publish: (entries: ReadonlyArray<E>) => Effect.Effect<void>
  readonly subscribe: (key: string) => Effect.Effect<Stream.Stream<E>, never, Scope.Scope>
}

/**
 * In-process fan-out routed by key (a run, a chat): an entry is offered only to
 * its own key's subscribers, so a publish costs nothing for other keys.
 */
export const makeMemoryHub = <E>(keyOf: (entry: E) => string): Effect.Effect<MemoryHub<E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const subscribers = new Map<string, Set<Queue.Queue<E>>>()
    yield* Effect.addFinalizer(() =>
      Effect.forEach([...subscribers.values()].flatMap((set) => [...set]), Queue.shutdown, { discard: true })
    )
    const unsubscribe = (key: string, queue: Queue.Queue<E>) =>
      Effect.suspend(() => {
        const set = subscribers.get(key)
        set?.delete(queue)
        if (set?.size === 0) subscribers.delete(key)
        return Queue.shutdown(queue)
      })
    return {
      publish: (entries) =>
        Effect.sync(() => {
          for (const entry of entries) {
            const set = subscribers.get(keyOf(entry))
            if (set !== undefined) for (const queue of set) queue.unsafeOffer(entry)
          }
        }),
      subscribe: (key) =>
        Effect.acquireRelease(
          Effect.flatMap(Queue.unbounded<E>(), (queue) =>
            Effect.sync(() => {
              let set = subscribers.get(key)
              if (set === undefined) subscribers.set(key, (set = new Set()))
              set.add(queue)
              return queue
            })
          ),
          (queue) => unsubscribe(key, queue)
        ).pipe(Effect.map((queue) => Stream.fromQueue(queue)))
    }
  })

/**
 * Writing and following a run's events. A commit stores events first (the store
 * numbers them) and only then publishes them, so a subscriber that sees an
 * event can always find every earlier one in the store.
 */
import { Chunk, Context, Effect, Layer, Stream } from "effect"
import { RunEvent as RE } from "@relavium/domain"
import { type AppendOptions, RunStore } from "./RunStore.js"
import { UpdateHub } from "./UpdateHub.js"

/** How often a follower re-reads the store while it waits for live events. */
const CATCH_UP_INTERVAL = "2 seconds"

export class EventLog extends Context.Tag("@relavium/ports/EventLog")<
  EventLog,
  {
    readonly commit: (
      runId: string,
      drafts: ReadonlyArray<RE.RunEventDraft>,
      options?: AppendOptions
    ) => Effect.Effect<ReadonlyArray<RE.RunEvent>, RunStore.Error<"append">>
    /**
     * Every event after `afterSequenceNumber`, stored ones first, then the live tail,
     * each once and in order, ending with the run's terminal event.
     */
    readonly follow: (
      runId: string,
      afterSequenceNumber?: number
    ) => Stream.Stream<RE.RunEvent, RunStore.Error<"events">>
  }
>() {
  static readonly layer: Layer.Layer<EventLog, never, RunStore | UpdateHub> = Layer.effect(
    EventLog,
    Effect.gen(function* () {
      const store = yield* RunStore
      const hub = yield* UpdateHub
      return EventLog.of({
        commit: (runId, drafts, options) =>
          drafts.length === 0
            ? Effect.succeed([])
            : store.append(runId, drafts, options).pipe(Effect.tap((events) => hub.publish(events))),
        follow: (runId, after = -1) =>
          Stream.unwrapScoped(
            Effect.gen(function* () {
              const live = yield* hub.subscribe(runId)
              const stored = yield* store.events(runId, after)
              let next = after + 1
              const inOrder = (events: ReadonlyArray<RE.RunEvent>) => {
                const fresh = events.filter((e) => e.sequenceNumber >= next)
                if (fresh.length > 0) next = fresh[fresh.length - 1]!.sequenceNumber + 1
                return fresh
              }
              const first = inOrder(stored)
              if (first.some(RE.isTerminal)) {
                return Stream.fromIterable(first).pipe(Stream.takeUntil(RE.isTerminal))
              }
              // Chunk by chunk: in the usual case (events arrive in order) no effect runs per event.
              const fromHub = (events: ReadonlyArray<RE.RunEvent>) => {
                const out: Array<RE.RunEvent> = []
                for (const event of events) {
                  if (event.sequenceNumber < next) continue
                  if (event.sequenceNumber === next) {
                    out.push(event)
                    next += 1
                    continue
                  }
                  // Another writer's events reached the hub first: fill the gap from the store.
                  let upTo = event.sequenceNumber
                  for (const e of events) if (e.sequenceNumber > upTo) upTo = e.sequenceNumber
                  return store
                    .events(runId, next - 1)
                    .pipe(Effect.map((stored) => [...out, ...inOrder(stored.filter((e) => e.sequenceNumber <= upTo))]))
                }
                return Effect.succeed(out)
              }
              // A hub may drop an event (core NATS delivers at most once), and nothing may follow it
              // to reveal the gap: re-read the store now and then, so a follower never waits forever.
              const tail = Stream.merge(
                live.pipe(Stream.chunks, Stream.map((chunk) => Chunk.toReadonlyArray(chunk))),
                Stream.tick(CATCH_UP_INTERVAL).pipe(Stream.map(() => undefined))
              ).pipe(
                // One element at a time, so `next` moves in order whichever source woke us.
                Stream.mapEffect((events) =>
                  events === undefined ? store.events(runId, next - 1).pipe(Effect.map(inOrder)) : fromHub(events)
                ),
                Stream.flattenIterables
              )
              return Stream.concat(Stream.fromIterable(first), tail).pipe(Stream.takeUntil(RE.isTerminal))
            })
          )
      })
    })
  )
}

/**
 * Writing and following a run's events. A commit stores events first (the store
 * numbers them) and only then publishes them, so a subscriber that sees an
 * event can always find every earlier one in the store.
 */
import { Context, Effect, Layer, Stream } from "effect"
import { RunEvent as RE } from "@relavium/domain"
import { type AppendOptions, RunStore } from "./RunStore.js"
import { UpdateHub } from "./UpdateHub.js"

export class EventLog extends Context.Tag("@relavium/core/EventLog")<
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
              const tail = live.pipe(
                Stream.mapEffect((event) =>
                  event.sequenceNumber < next
                    ? Effect.succeed([])
                    : event.sequenceNumber === next
                      ? Effect.succeed(inOrder([event]))
                      : // Another writer's events reached the hub first: fill the gap from the store.
                        store.events(runId, next - 1).pipe(
                          Effect.map((events) => inOrder(events.filter((e) => e.sequenceNumber <= event.sequenceNumber)))
                        )
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

/**
 * Writing and following a run's events. A commit stores events first (the store
 * numbers them) and only then publishes them, so a subscriber that sees an
 * event can always find every earlier one in the store.
 */
import { Context, Effect, Layer, type Stream } from "effect"
import { RunEvent as RE } from "@relavium/domain"
import { type AppendOptions, RunStore } from "./RunStore.js"
import { UpdateHub } from "./UpdateHub.js"
import * as NumberedLog from "./NumberedLog.js"


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
      const replay = hub.replay
      return EventLog.of({
        commit: (runId, drafts, options) =>
          drafts.length === 0
            ? Effect.succeed([])
            : store.append(runId, drafts, options).pipe(Effect.tap((events) => hub.publish(events))),
        follow: (runId, after = -1) =>
          NumberedLog.follow(
            {
              subscribe: hub.subscribe(runId),
              read: (afterSeq) => store.events(runId, afterSeq),
              replay: replay === undefined ? undefined : (afterSeq) => replay(runId, afterSeq),
              seqOf: (event) => event.sequenceNumber,
              isLast: RE.isTerminal
            },
            after
          )
      })
    })
  )
}

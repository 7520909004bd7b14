/**
 * Live fan-out of run events to subscribers. Delivery is best effort and may
 * reorder events from different writers; `EventLog.follow` joins it with the
 * stored log to give each subscriber every event once, in order.
 */
import { Context, Effect, Layer, PubSub, Stream } from "effect"
import type { Scope } from "effect"
import type { RunEvent as RE } from "@relavium/domain"

export class UpdateHub extends Context.Tag("@relavium/core/UpdateHub")<
  UpdateHub,
  {
    readonly publish: (events: ReadonlyArray<RE.RunEvent>) => Effect.Effect<void>
    /** Subscribes now (events published after this returns are seen) to one run's events. */
    readonly subscribe: (runId: string) => Effect.Effect<Stream.Stream<RE.RunEvent>, never, Scope.Scope>
  }
>() {
  static readonly layerMemory: Layer.Layer<UpdateHub> = Layer.scoped(
    UpdateHub,
    Effect.gen(function* () {
      const hub = yield* Effect.acquireRelease(PubSub.unbounded<RE.RunEvent>(), PubSub.shutdown)
      return UpdateHub.of({
        publish: (events) => (events.length === 0 ? Effect.void : PubSub.publishAll(hub, events).pipe(Effect.asVoid)),
        subscribe: (runId) =>
          PubSub.subscribe(hub).pipe(
            Effect.map((queue) => Stream.fromQueue(queue).pipe(Stream.filter((e) => e.runId === runId)))
          )
      })
    })
  )
}

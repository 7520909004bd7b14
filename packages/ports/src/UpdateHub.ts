/**
 * Live fan-out of run events to subscribers. Delivery is best effort and may
 * reorder events from different writers; `EventLog.follow` joins it with the
 * stored log to give each subscriber every event once, in order.
 */
import { Context, Effect, Layer, Queue, Stream } from "effect"
import type { Scope } from "effect"
import type { RunEvent as RE } from "@relavium/domain"

export class UpdateHub extends Context.Tag("@relavium/ports/UpdateHub")<
  UpdateHub,
  {
    readonly publish: (events: ReadonlyArray<RE.RunEvent>) => Effect.Effect<void>
    /** Subscribes now (events published after this returns are seen) to one run's events. */
    readonly subscribe: (runId: string) => Effect.Effect<Stream.Stream<RE.RunEvent>, never, Scope.Scope>
  }
>() {
  /**
   * In-process fan-out, routed by run: an event is offered only to its own run's
   * subscribers, so the cost of a publish does not grow with the number of runs
   * (or of subscribers to other runs) in the process.
   */
  static readonly layerMemory: Layer.Layer<UpdateHub> = Layer.scoped(
    UpdateHub,
    Effect.gen(function* () {
      const subscribers = new Map<string, Set<Queue.Queue<RE.RunEvent>>>()
      yield* Effect.addFinalizer(() =>
        Effect.forEach([...subscribers.values()].flatMap((set) => [...set]), Queue.shutdown, { discard: true })
      )
      const unsubscribe = (runId: string, queue: Queue.Queue<RE.RunEvent>) =>
        Effect.suspend(() => {
          const set = subscribers.get(runId)
          set?.delete(queue)
          if (set?.size === 0) subscribers.delete(runId)
          return Queue.shutdown(queue)
        })
      return UpdateHub.of({
        publish: (events) =>
          Effect.sync(() => {
            for (const event of events) {
              const set = subscribers.get(event.runId)
              if (set !== undefined) for (const queue of set) queue.unsafeOffer(event)
            }
          }),
        subscribe: (runId) =>
          Effect.acquireRelease(
            Effect.flatMap(Queue.unbounded<RE.RunEvent>(), (queue) =>
              Effect.sync(() => {
                let set = subscribers.get(runId)
                if (set === undefined) subscribers.set(runId, (set = new Set()))
                set.add(queue)
                return queue
              })
            ),
            (queue) => unsubscribe(runId, queue)
          ).pipe(Effect.map((queue) => Stream.fromQueue(queue)))
      })
    })
  )
}

/**
 * Live fan-out of run events to subscribers. Delivery is best effort and may
 * reorder events from different writers; `EventLog.follow` joins it with the
 * stored log to give each subscriber every event once, in order.
 */
import { Context, Effect, Layer } from "effect"
import type { Option, Scope, Stream } from "effect"
import type { RunEvent as RE } from "@relavium/domain"
import * as NumberedLog from "./NumberedLog.js"

export class UpdateHub extends Context.Tag("@relavium/ports/UpdateHub")<
  UpdateHub,
  {
    readonly publish: (events: ReadonlyArray<RE.RunEvent>) => Effect.Effect<void>
    /** Subscribes now (events published after this returns are seen) to one run's events. */
    readonly subscribe: (runId: string) => Effect.Effect<Stream.Stream<RE.RunEvent>, never, Scope.Scope>
    /**
     * A hub that keeps recent events (Redis Streams) answers a follower's replay from
     * them: every event it holds after `afterSequenceNumber`, in order, when it still
     * holds the first of them (`Some`); `None` when it has trimmed it or keeps nothing,
     * and the follower reads the store. A hub without it keeps nothing.
     */
    readonly replay?: (runId: string, afterSequenceNumber: number) => Effect.Effect<Option.Option<ReadonlyArray<RE.RunEvent>>>
  }
>() {
  /**
   * In-process fan-out, routed by run: an event is offered only to its own run's
   * subscribers, so the cost of a publish does not grow with the number of runs
   * (or of subscribers to other runs) in the process.
   */
  static readonly layerMemory: Layer.Layer<UpdateHub> = Layer.scoped(
    UpdateHub,
    Effect.map(NumberedLog.makeMemoryHub((event: RE.RunEvent) => event.runId), (hub) => UpdateHub.of(hub))
  )
}

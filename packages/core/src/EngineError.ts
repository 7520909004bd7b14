/**
 * The engine's one error type, and the mapping of a store failure into it.
 */
import { Clock, Data, Effect } from "effect"

export class EngineError extends Data.TaggedError("EngineError")<{
  readonly reason: "not_found" | "invalid_input" | "invalid_workflow" | "conflict" | "store"
  readonly message: string
  readonly cause?: unknown
}> {}

/** A store (or queue) failure as an EngineError; the original stays as its cause. */
export const storeError = (cause: { readonly _tag: string; readonly message?: string }) =>
  new EngineError({ reason: "store", message: cause.message ?? cause._tag, cause })

/**
 * An ISO 8601 timestamp of a `Clock` reading. A node's events are written within the same
 * millisecond more often than not (a chain writes three or four per node), so the last reading's
 * text is kept: the profile of a 10,000-node chain had a Date and its formatting per event.
 */
let lastMs = Number.NaN
let lastIso = ""
export const isoAt = (ms: number): string => {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString()
    lastMs = ms
  }
  return lastIso
}

/**
 * The timestamp events carry: the time on the fiber's `Clock`, so that every time the engine acts
 * on (a run's deadline, a gate's expiry, a retry's backoff, the staleness the sweep looks for) is
 * read from one clock, and a test can move it with `TestClock`.
 */
export const now: Effect.Effect<string> = Effect.map(Clock.currentTimeMillis, isoAt)

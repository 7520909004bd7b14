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

/** An ISO 8601 timestamp of a `Clock` reading. */
export const isoAt = (ms: number): string => new Date(ms).toISOString()

/**
 * The timestamp events carry: the time on the fiber's `Clock`, so that every time the engine acts
 * on (a run's deadline, a gate's expiry, a retry's backoff, the staleness the sweep looks for) is
 * read from one clock, and a test can move it with `TestClock`.
 */
export const now: Effect.Effect<string> = Effect.map(Clock.currentTimeMillis, isoAt)

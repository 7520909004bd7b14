/**
 * How the engine tries again: a node's retry policy (which failures, how long
 * to wait), and the schedules for a queue offer or a job whose store or queue
 * failed for a moment.
 */
import { Cause, Option, Schedule } from "effect"
import type { Workflow } from "@relavium/domain"
import type { EngineError } from "./EngineError.js"

/** The failures a node's `retry` policy retries when it names none (`retry_on`). */
export const retryOnDefault: ReadonlyArray<string> = ["provider_rate_limit", "provider_unavailable", "tool_failed", "sandbox_error"]

/** An offer that failed (Redis restarting) is tried again in place, for about 3 s: the commit before it has landed. */
export const offerRetry = { times: 5, schedule: Schedule.exponential("100 millis") }

/** How a job whose store or queue failed runs again: from 100 ms, doubling to at most 5 s apart, for up to 2 minutes. */
export const jobRetry = Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")), Schedule.upTo("2 minutes"))

/**
 * A failure worth running the job again for: the store failing (not a run that is gone) or the
 * queue failing (a QueueError defect).
 */
export const isTransient = (cause: Cause.Cause<EngineError>): boolean =>
  !Cause.isInterrupted(cause) &&
  (Option.exists(
    Cause.failureOption(cause),
    (e) => e.reason === "store" && (e.cause as { readonly _tag?: unknown } | undefined)?._tag !== "RunNotFound"
  ) ||
    Option.exists(Cause.dieOption(cause), (d) => (d as { readonly _tag?: unknown } | null)?._tag === "QueueError"))

const MAX_BACKOFF_MS = 24 * 60 * 60 * 1000

/** The pause before retry number `attempt` (1-based) under `policy`, at most a day. */
export const retryDelay = (policy: Workflow.RetryPolicy, attempt: number): number => {
  const base = policy.backoff_ms ?? 1000
  const delay = policy.backoff === "linear" ? base * attempt : base * 2 ** (attempt - 1)
  return Math.min(delay, MAX_BACKOFF_MS)
}

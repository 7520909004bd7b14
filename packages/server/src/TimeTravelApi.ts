/**
 * The bodies of `POST /runs/{runId}/fork` and `POST /runs/{runId}/retry` (docs/time-travel.md),
 * declared beside the runs group of Api.ts.
 */
import { Schema } from "effect"

const Inputs = Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))

export const ForkRequest = Schema.Struct({
  /** The node the new run runs again, with everything downstream of it. */
  from: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
  /** Inputs replacing the ended run's (typed values); its secret inputs must be given again. */
  inputs: Inputs
})

/** No body (or `null`) is the same as `{}`: a retry needs only the secret inputs a run had. */
export const RetryRequest = Schema.NullOr(
  Schema.Struct({
    /** Only the run's secret inputs, whose values were never stored. */
    inputs: Inputs
  })
)

export const forkDescription =
  "Start a new run of an ended run's workflow from one of its nodes: the outputs of the nodes not downstream of `from` are reused, `from` and what follows run again (409 while the run has not ended)"

export const retryDescription =
  "Continue a failed or cancelled run as a new run: its completed nodes are reused, the rest run (409 for a run that has not ended, or completed)"

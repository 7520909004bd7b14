/**
 * Evaluates the JS expressions of condition, transform and merge nodes (and
 * edge conditions) in an isolated sandbox with time and memory limits.
 */
import type { Effect } from "effect"
import { Context } from "effect"
import type { RunError } from "@relavium/domain"

export interface ExpressionScope {
  readonly inputs: Readonly<Record<string, unknown>>
  readonly ctx: Readonly<Record<string, unknown>>
  /** Only the outputs the expression references (or all completed ones, sorted by id). */
  readonly outputs: Readonly<Record<string, unknown>>
  /** Settled branch values, for merge_fn. */
  readonly branches?: ReadonlyArray<unknown> | undefined
}

export class ExpressionSandbox extends Context.Tag("@relavium/ports/ExpressionSandbox")<
  ExpressionSandbox,
  {
    /** Evaluates `source` as one JS expression; the result must be JSON (undefined becomes null). */
    readonly evaluate: (source: string, scope: ExpressionScope) => Effect.Effect<unknown, RunError.NodeFailure>
    /**
     * A hint that these expressions (a run's) are about to be evaluated: a sandbox that starts
     * something slowly (a worker, a VM) may start it now. Never fails, never waits for the start.
     */
    readonly prepare?: ((sources: ReadonlyArray<string>) => Effect.Effect<void>) | undefined
  }
>() {}

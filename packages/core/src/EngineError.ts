/**
 * The engine's one error type, and the mapping of a store failure into it.
 */
import { Data } from "effect"

export class EngineError extends Data.TaggedError("EngineError")<{
  readonly reason: "not_found" | "invalid_input" | "invalid_workflow" | "conflict" | "store"
  readonly message: string
  readonly cause?: unknown
}> {}

/** A store (or queue) failure as an EngineError; the original stays as its cause. */
export const storeError = (cause: { readonly _tag: string; readonly message?: string }) =>
  new EngineError({ reason: "store", message: cause.message ?? cause._tag, cause })

/** The timestamp events carry. */
export const now = () => new Date().toISOString()

/**
 * Identifier rules and derived ids shared by every surface.
 */
import { Schema } from "effect"
import { MAX_ID_LENGTH, tooLong } from "./Limits.js"

export const KebabPattern = /^[a-z0-9]+(?:-[a-z0-9]+)*$/

export const KebabId = Schema.String.pipe(
  Schema.maxLength(MAX_ID_LENGTH, tooLong(MAX_ID_LENGTH)),
  Schema.pattern(KebabPattern, {
    message: () => "must be kebab-case (lowercase letters and digits separated by single dashes)"
  })
)

/** The gate id of a human_gate node in a run is derived, so a retried gate keeps its id. */
export const gateIdFor = (runId: string, nodeId: string): string => `${runId}:${nodeId}`

/**
 * What a node event leaves in its `node_executions` row: the row's values when it is new, and
 * what an existing row takes from it (`onConflict`, an `ON CONFLICT … DO UPDATE SET` list).
 * One description for both write paths of a run store: the general append (SqlRunStore) and
 * Postgres's one-statement append (PgAppend).
 */
import type { RunEvent as RE } from "@relavium/domain"

export interface NodeRow {
  readonly nodeId: string
  readonly attempt: number
  readonly status: string
  readonly startedAt: string | null
  readonly finishedAt: string | null
  readonly output: string | null
  readonly error: string | null
  readonly onConflict: string
}

/** JSON text for a column, or NULL for an absent value. */
export const toJson = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value))

/** The row a node event writes; undefined for an event that is not a node's own. */
export const nodeRow = (e: RE.RunEvent): NodeRow | undefined => {
  const empty = { startedAt: null, finishedAt: null, output: null, error: null }
  switch (e.type) {
    case "node:started":
      return {
        ...empty,
        nodeId: e.nodeId,
        attempt: e.attemptNumber ?? 1,
        status: "running",
        startedAt: e.timestamp,
        onConflict:
          "attempt = excluded.attempt, status = 'running', started_at = excluded.started_at, finished_at = NULL, output = NULL, error = NULL"
      }
    case "node:retrying":
      return { ...empty, nodeId: e.nodeId, attempt: e.attemptNumber, status: "pending", onConflict: "attempt = excluded.attempt" }
    case "node:completed":
      return {
        ...empty,
        nodeId: e.nodeId,
        attempt: 0,
        status: "completed",
        finishedAt: e.timestamp,
        output: toJson(e.output),
        onConflict: "status = 'completed', finished_at = excluded.finished_at, output = excluded.output, error = NULL"
      }
    case "node:failed":
      return {
        ...empty,
        nodeId: e.nodeId,
        attempt: 0,
        status: "failed",
        finishedAt: e.timestamp,
        error: toJson(e.error),
        onConflict: "status = 'failed', finished_at = excluded.finished_at, error = excluded.error"
      }
    case "node:skipped":
      return { ...empty, nodeId: e.nodeId, attempt: 0, status: "skipped", finishedAt: e.timestamp, onConflict: "status = 'skipped', finished_at = excluded.finished_at" }
    default:
      return undefined
  }
}

/** A gate's pause leaves its node waiting. */
export const waitingRow = (nodeId: string): NodeRow => ({
  nodeId,
  attempt: 0,
  status: "waiting",
  startedAt: null,
  finishedAt: null,
  output: null,
  error: null,
  onConflict: "status = 'waiting'"
})

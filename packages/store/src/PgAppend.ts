/**
 * The engine's usual append on Postgres in one statement, one round trip and
 * no explicit transaction: an append that names the sequence number it
 * expects (so its events can be numbered before it is sent) and whose events
 * touch at most the run row, the event log and node executions (one row per
 * node). One statement of data-modifying CTEs is atomic on its own: the run row
 * is advanced only while it is open and at the expected number, and the
 * events and node rows are written only with it. When no row was advanced a
 * second read says why (not found, closed, or a conflict), as the general
 * append does.
 *
 * Anything else (gates, usage, a node twice, no expected number) goes the
 * general way (`fastPlan` answers undefined).
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { RunEvent as RE } from "@relavium/domain"
import { type NodeRow, nodeRow } from "./internal/NodeRows.js"
import { numberDrafts, RunClosed, RunNotFound, SequenceConflict, openStatusAfter, type RunStatus, TerminalStatuses } from "@relavium/ports"

/** Events that write more than the run row, the log and their node's row: they go the general way. */
const general = new Set<RE.RunEventType>(["human_gate:paused", "human_gate:resumed", "cost:updated"])

export interface FastPlan {
  readonly events: ReadonlyArray<RE.RunEvent>
  readonly nodes: ReadonlyArray<NodeRow & { readonly seq: number }>
  readonly status: RunStatus | undefined
  readonly updatedAt: string
}

/**
 * The numbered events and node rows of an append that can go in one statement, or undefined.
 * `expected` is the run's last sequence number the caller expects.
 */
export const fastPlan = (runId: string, drafts: ReadonlyArray<RE.RunEventDraft>, expected: number | undefined): FastPlan | undefined => {
  if (expected === undefined || drafts.length === 0) return undefined
  const { events } = numberDrafts(
    { runId, workflowId: "", workflowName: "", status: "running", createdAt: "", updatedAt: "", lastSequenceNumber: expected },
    drafts
  )
  // Drafts after a terminal one are dropped by the general path; keep that case there.
  if (events.length !== drafts.length) return undefined
  const nodes: Array<NodeRow & { readonly seq: number }> = []
  const seen = new Set<string>()
  let status: RunStatus | undefined = undefined
  for (const event of events) {
    if (general.has(event.type)) return undefined
    const row = nodeRow(event)
    if (row !== undefined) {
      if (seen.has(row.nodeId)) return undefined
      seen.add(row.nodeId)
      nodes.push({ ...row, seq: event.sequenceNumber })
    }
    status = openStatusAfter(event) ?? status
  }
  return { events, nodes, status, updatedAt: events[events.length - 1]!.timestamp }
}

const terminalList = [...TerminalStatuses].map((s) => `'${s}'`).join(", ")

/** Runs the plan's one statement; fails as the general append does when the run is not open at `expected`. */
export const appendFast = (
  sql: SqlClient.SqlClient,
  runId: string,
  expected: number,
  plan: FastPlan
): Effect.Effect<ReadonlyArray<RE.RunEvent>, SqlError | RunClosed | RunNotFound | SequenceConflict> => {
  const params: Array<unknown> = [runId, expected, plan.events.length, plan.status ?? null, plan.updatedAt]
  const p = (value: unknown) => {
    params.push(value)
    return `$${params.length}`
  }
  const values = plan.events
    .map((e) => `(${p(e.sequenceNumber)}::integer, ${p(e.type)}::text, ${p(e.timestamp)}::text, ${p(JSON.stringify(e))}::json)`)
    .join(", ")
  const parts = [
    `WITH r AS (
      UPDATE runs SET last_seq = last_seq + $3::integer, status = COALESCE($4::text, status), updated_at = $5::text
      WHERE run_id = $1::text AND status NOT IN (${terminalList}) AND last_seq = $2::integer
      RETURNING run_id)`,
    `e AS (INSERT INTO run_events (run_id, seq, type, timestamp, payload)
      SELECT r.run_id, v.seq, v.type, v.ts, v.payload FROM r, (VALUES ${values}) AS v (seq, type, ts, payload))`
  ]
  plan.nodes.forEach((n, i) => {
    parts.push(`n${i} AS (INSERT INTO node_executions (run_id, node_id, attempt, status, started_at, finished_at, output, error, last_seq)
      SELECT r.run_id, ${p(n.nodeId)}::text, ${p(n.attempt)}::integer, ${p(n.status)}::text, ${p(n.startedAt)}::text,
        ${p(n.finishedAt)}::text, ${p(n.output)}::json, ${p(n.error)}::json, ${p(n.seq)}::integer FROM r
      ON CONFLICT (run_id, node_id) DO UPDATE SET ${n.onConflict}, last_seq = excluded.last_seq)`)
  })
  const statement = `${parts.join(",\n")}\nSELECT count(*)::integer AS advanced FROM r`
  return Effect.gen(function* () {
    const [row] = yield* sql.unsafe<{ advanced: number }>(statement, params)
    if (Number(row?.advanced) === 1) return plan.events
    const [run] = yield* sql<{ status: RunStatus; last_seq: number | string }>`SELECT status, last_seq FROM runs WHERE run_id = ${runId}`
    if (run === undefined) return yield* new RunNotFound({ runId })
    if (TerminalStatuses.has(run.status)) return yield* new RunClosed({ runId })
    return yield* new SequenceConflict({ runId, expected, actual: Number(run.last_seq) })
  })
}

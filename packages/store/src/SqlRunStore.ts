/**
 * `RunStore` on SQL (SQLite or Postgres, the same statements).
 *
 * An append is one transaction (internal/Transaction.ts: statements prepared once): it first advances the run's `last_seq` with an
 * `UPDATE … RETURNING` (a row lock on Postgres; on SQLite the first write of the
 * transaction takes the database write lock, waiting out other connections with
 * the busy timeout, so there is no read-then-upgrade deadlock), then inserts all
 * the events in one statement and updates the projections (node executions,
 * gates, usage). A refused append (closed run, sequence conflict) rolls back and
 * leaves nothing behind.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Effect, Layer, Option, type Scope } from "effect"
import { type AppendOptions, numberDrafts, type PendingGateRecord, RunClosed, RunNotFound, type RunRecord, type RunStatus, RunStore, SequenceConflict, openStatusAfter, StoreError, type TerminalStatus, TerminalStatuses } from "@relavium/ports"
import type { RunEvent as RE } from "@relavium/domain"
import type { Connection } from "@effect/sql/SqlConnection"
import * as Database from "./Database.js"
import * as GroupCommit from "./internal/GroupCommit.js"
import * as PgAppend from "./PgAppend.js"
import { type NodeRow, nodeRow, toJson, waitingRow } from "./internal/NodeRows.js"
import { chunks, fromJson } from "./internal/Rows.js"
import * as Tx from "./internal/Transaction.js"

/** Rows per multi-row INSERT: well under SQLite's and Postgres's bound-parameter limits. */
const insertChunk = 1000

interface RunRow {
  readonly run_id: string
  readonly workflow_id: string
  readonly workflow_name: string
  readonly status: RunStatus
  readonly created_at: string
  readonly updated_at: string
  readonly last_seq: number | string
}

const toRecord = (row: RunRow): RunRecord => ({
  runId: row.run_id,
  workflowId: row.workflow_id,
  workflowName: row.workflow_name,
  status: row.status,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  lastSequenceNumber: Number(row.last_seq)
})

interface GateRow {
  readonly run_id: string
  readonly gate_id: string
  readonly node_id: string
  readonly gate_type: PendingGateRecord["gateType"]
  readonly message: string
  readonly assignee: string | null
  readonly expires_at: string | null
  readonly timeout_action: "approve" | "reject" | null
  readonly created_at: string
}

const toGate = (row: GateRow): PendingGateRecord => ({
  runId: row.run_id,
  gateId: row.gate_id,
  nodeId: row.node_id,
  gateType: row.gate_type,
  message: row.message,
  ...(row.assignee !== null ? { assignee: row.assignee } : {}),
  ...(row.expires_at !== null ? { expiresAt: row.expires_at } : {}),
  ...(row.timeout_action !== null ? { timeoutAction: row.timeout_action } : {}),
  pausedAt: row.created_at
})

const terminal = [...TerminalStatuses]
const active = ["running", "waiting"]

/**
 * What a batch of drafts does to the run row before it is numbered: how many
 * are kept (none after a terminal event) and the status and `updated_at` they
 * leave (undefined: unchanged). Matches `numberDrafts` for any open run.
 */
const planBatch = (drafts: ReadonlyArray<RE.RunEventDraft>) => {
  let count = 0
  let status: RunStatus | undefined = undefined
  let updatedAt: string | undefined = undefined
  for (const draft of drafts) {
    count += 1
    updatedAt = draft.timestamp
    status = openStatusAfter(draft) ?? status
    if (TerminalStatuses.has(status ?? "running")) break
  }
  return { count, status, updatedAt }
}

type AppendError = StoreError | RunClosed | RunNotFound | SequenceConflict
type Append = (runId: string, drafts: ReadonlyArray<RE.RunEventDraft>, options?: AppendOptions) => Effect.Effect<ReadonlyArray<RE.RunEvent>, AppendError>

/** How appends reach the database: `appendIn` is an append's statements, to run inside a transaction. */
type Committer<R> = (sql: SqlClient.SqlClient, database: string, appendIn: Append) => Effect.Effect<Append, never, R>

/** Each append in a transaction of its own. */
const ownTransaction: Committer<never> = (sql, database, appendIn) =>
  Effect.succeed((runId, drafts, options) =>
    Tx.transaction(sql, () => appendIn(runId, drafts, options)).pipe(
      Effect.catchTag("SqlError", (cause) =>
        Effect.fail(new StoreError({ message: `${database}: appending to run ${runId} failed: ${Database.describeCause(cause)}`, cause }))
      )
    ))

/**
 * Postgres: the engine's usual append (an expected sequence number, node events) in one statement
 * of its own (PgAppend.ts); any other shares a transaction with the appends arriving meanwhile
 * (GroupCommit.ts).
 */
const serverCommitter =
  (options: GroupCommit.GroupCommitOptions): Committer<Scope.Scope> =>
  (sql, database, appendIn) =>
    Effect.map(
      GroupCommit.make<ReadonlyArray<RE.RunEvent>, AppendError>(
        options,
        (cause): AppendError =>
          new StoreError({ message: `${database}: committing appended events failed: ${Database.describeCause(Cause.squash(cause))}`, cause })
      ),
      (grouped): Append => (runId, drafts, appendOptions) => {
        const expected = appendOptions?.expectedLastSequenceNumber
        const plan = PgAppend.fastPlan(runId, drafts, expected)
        return plan === undefined || expected === undefined
          ? grouped(runId, appendIn(runId, drafts, appendOptions))
          : PgAppend.appendFast(sql, runId, expected, plan).pipe(
              Effect.catchTag("SqlError", (cause) =>
                Effect.fail(new StoreError({ message: `${database}: appending to run ${runId} failed: ${Database.describeCause(cause)}`, cause }))
              )
            )
      }
    ).pipe(Effect.provideService(SqlClient.SqlClient, sql))

const makeWith = <R>(committer: Committer<R>): Effect.Effect<RunStore.Service, never, SqlClient.SqlClient | R> => Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const database = Database.describeDatabase(sql)
  const storeError = (action: string) => (cause: SqlError) =>
    new StoreError({ message: `${database}: ${action} failed: ${Database.describeCause(cause)}`, cause })

  // The statements of every append, compiled to this dialect's text once; see internal/Transaction.ts.
  const advanceRun = Tx.compiled(sql`UPDATE runs SET last_seq = last_seq + ${0},
      status = COALESCE(${null}, status),
      updated_at = COALESCE(${null}, updated_at)
    WHERE run_id = ${""} AND status NOT IN ${sql.in(terminal)}
    RETURNING last_seq, workflow_id, workflow_name, created_at`)
  const eventColumns = { run_id: "", seq: 0, type: "", timestamp: "", payload: "" }
  const insertTexts = new Map<number, string>()
  const insertText = (rows: number) => {
    let text = insertTexts.get(rows)
    if (text === undefined) {
      text = Tx.compiled(sql`INSERT INTO run_events ${sql.insert(Array.from({ length: rows }, () => eventColumns))}`)
      if (rows <= 16) insertTexts.set(rows, text)
    }
    return text
  }

  const insertEvents = (connection: Connection, events: ReadonlyArray<RE.RunEvent>) =>
    Effect.forEach(
      chunks(events, insertChunk),
      (chunk) => {
        const params: Array<unknown> = []
        for (const e of chunk) params.push(e.runId, e.sequenceNumber, e.type, e.timestamp, JSON.stringify(e))
        return Tx.run(connection, insertText(chunk.length), params)
      },
      { discard: true }
    )

  const upsertTexts = new Map<string, string>()
  const upsertNode = (connection: Connection, e: RE.RunEvent, row: NodeRow) => {
    let text = upsertTexts.get(row.onConflict)
    if (text === undefined) {
      text = Tx.compiled(sql`INSERT INTO node_executions (run_id, node_id, attempt, status, started_at, finished_at, output, error, last_seq)
        VALUES (${""}, ${""}, ${0}, ${""}, ${null}, ${null}, ${null}, ${null}, ${0})
        ON CONFLICT (run_id, node_id) DO UPDATE SET ${sql.literal(row.onConflict)}, last_seq = excluded.last_seq`)
      upsertTexts.set(row.onConflict, text)
    }
    return Tx.run(connection, text, [
      e.runId,
      row.nodeId,
      row.attempt,
      row.status,
      row.startedAt,
      row.finishedAt,
      row.output,
      row.error,
      e.sequenceNumber
    ])
  }

  /** The statements that keep node executions and gates in step with one event. */
  const project = (connection: Connection, e: RE.RunEvent): Effect.Effect<unknown, SqlError> | undefined => {
    const row = nodeRow(e)
    if (row !== undefined) return upsertNode(connection, e, row)
    switch (e.type) {
      case "human_gate:paused":
        return Effect.zipRight(
          sql`INSERT INTO gates (run_id, gate_id, node_id, gate_type, status, message, assignee, timeout_action,
              expires_at, paused_seq, created_at)
            VALUES (${e.runId}, ${e.gateId}, ${e.nodeId}, ${e.gateType}, 'pending', ${e.message}, ${e.assignee ?? null},
              ${e.timeoutAction ?? null}, ${e.expiresAt ?? null}, ${e.sequenceNumber}, ${e.timestamp})
            ON CONFLICT (run_id, gate_id) DO UPDATE SET node_id = excluded.node_id, gate_type = excluded.gate_type,
              status = 'pending', message = excluded.message, assignee = excluded.assignee,
              timeout_action = excluded.timeout_action, expires_at = excluded.expires_at, decision = NULL,
              decided_by = NULL, payload = NULL, comment = NULL, decided_at = NULL,
              paused_seq = excluded.paused_seq, created_at = excluded.created_at`,
          upsertNode(connection, e, waitingRow(e.nodeId))
        )
      case "human_gate:resumed": {
        // The gate named, or (as the run state fold does) the node's first pending gate.
        const gate =
          e.gateId !== undefined
            ? sql`${e.gateId}`
            : sql`(SELECT gate_id FROM gates WHERE run_id = ${e.runId} AND node_id = ${e.nodeId}
                AND status = 'pending' ORDER BY paused_seq LIMIT 1)`
        // An approved budget gate resumes the agent node that asked for it.
        const budget =
          e.decision === "approved"
            ? sql`UPDATE node_executions SET status = 'running', last_seq = ${e.sequenceNumber}
                WHERE run_id = ${e.runId} AND node_id = ${e.nodeId} AND EXISTS (
                  SELECT 1 FROM gates WHERE run_id = ${e.runId} AND gate_id = ${gate}
                    AND status = 'pending' AND gate_type = 'budget')`
            : Effect.void
        return Effect.zipRight(
          budget,
          sql`UPDATE gates SET status = 'resolved', decision = ${e.decision}, decided_by = ${e.decidedBy},
              payload = ${toJson(e.payload)}, comment = ${e.comment ?? null}, decided_at = ${e.timestamp}
            WHERE run_id = ${e.runId} AND status = 'pending' AND gate_id = ${gate}`
        )
      }
      default:
        return undefined
    }
  }

  /** Token usage and cost per node and model, summed over the batch, then added in one statement. */
  const addUsage = (events: ReadonlyArray<RE.RunEvent>) => {
    const totals = new Map<
      string,
      { run_id: string; node_id: string; model: string; input_tokens: number; output_tokens: number; cost_microcents: number; updated_at: string }
    >()
    for (const e of events) {
      if (e.type !== "cost:updated") continue
      const key = `${e.nodeId}\u0000${e.model}`
      const total = totals.get(key)
      if (total) {
        total.input_tokens += e.inputTokens
        total.output_tokens += e.outputTokens
        total.cost_microcents += e.costMicrocents
        total.updated_at = e.timestamp
      } else {
        totals.set(key, {
          run_id: e.runId,
          node_id: e.nodeId,
          model: e.model,
          input_tokens: e.inputTokens,
          output_tokens: e.outputTokens,
          cost_microcents: e.costMicrocents,
          updated_at: e.timestamp
        })
      }
    }
    if (totals.size === 0) return Effect.void
    return sql`INSERT INTO usage ${sql.insert([...totals.values()])}
      ON CONFLICT (run_id, node_id, model) DO UPDATE SET
        input_tokens = usage.input_tokens + excluded.input_tokens,
        output_tokens = usage.output_tokens + excluded.output_tokens,
        cost_microcents = usage.cost_microcents + excluded.cost_microcents,
        updated_at = excluded.updated_at`
  }

  /** An append's statements, to run inside a transaction (its own, or a savepoint of a shared one). */
  const appendIn: Append = (runId, drafts, options) => {
    const plan = planBatch(drafts)
    return Tx.inTransaction((connection) =>
      Effect.gen(function* () {
        // First statement a write: takes the run's row lock (Postgres) or the write lock (SQLite).
        const rows = yield* Tx.run<{ last_seq: number | string; workflow_id: string; workflow_name: string; created_at: string }>(
          connection,
          advanceRun,
          [plan.count, plan.status ?? null, plan.updatedAt ?? null, runId, ...terminal]
        )
        const row = rows[0]
        if (row === undefined) {
          const exists = yield* sql`SELECT 1 AS one FROM runs WHERE run_id = ${runId}`
          return yield* exists.length === 0 ? new RunNotFound({ runId }) : new RunClosed({ runId })
        }
        const before = Number(row.last_seq) - plan.count
        if (options?.expectedLastSequenceNumber !== undefined && options.expectedLastSequenceNumber !== before) {
          return yield* new SequenceConflict({ runId, expected: options.expectedLastSequenceNumber, actual: before })
        }
        const { events } = numberDrafts(
          {
            runId,
            workflowId: row.workflow_id,
            workflowName: row.workflow_name,
            status: "running",
            createdAt: row.created_at,
            updatedAt: row.created_at,
            lastSequenceNumber: before
          },
          drafts
        )
        if (events.length === 0) return events
        yield* insertEvents(connection, events)
        for (const event of events) {
          const statement = project(connection, event)
          if (statement !== undefined) yield* statement
        }
        yield* addUsage(events)
        return events
      })
    ).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(storeError(`appending to run ${runId}`)(error))))
  }

  const append = yield* committer(sql, database, appendIn)

  return RunStore.of({
    create: (run) =>
      sql`INSERT INTO runs (run_id, workflow_id, workflow_name, status, created_at, updated_at, last_seq)
        VALUES (${run.runId}, ${run.workflowId}, ${run.workflowName}, 'running', ${run.createdAt}, ${run.createdAt}, -1)
        ON CONFLICT (run_id) DO NOTHING`.pipe(Effect.asVoid, Effect.mapError(storeError(`creating run ${run.runId}`))),
    append,
    events: (runId, after = -1) =>
      sql<{ payload: unknown }>`SELECT payload FROM run_events WHERE run_id = ${runId} AND seq > ${after} ORDER BY seq`.pipe(
        Effect.map((rows) => rows.map((row) => fromJson(row.payload) as RE.RunEvent)),
        Effect.mapError(storeError(`reading the events of run ${runId}`))
      ),
    get: (runId) =>
      sql<RunRow>`SELECT * FROM runs WHERE run_id = ${runId}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toRecord)),
        Effect.mapError(storeError(`reading run ${runId}`))
      ),
    list: (query) =>
      sql<RunRow>`SELECT * FROM runs
        ${query?.status !== undefined ? sql`WHERE status = ${query.status}` : sql.literal("")}
        ORDER BY created_at DESC
        ${query?.limit !== undefined ? sql`LIMIT ${Math.max(0, query.limit)}` : sql.literal("")}`.pipe(
        Effect.map((rows) => rows.map(toRecord)),
        Effect.mapError(storeError("listing runs"))
      ),
    prune: (olderThan, statuses = terminal as Array<TerminalStatus>) => {
      const prunable = statuses.filter((s) => TerminalStatuses.has(s))
      if (prunable.length === 0) return Effect.succeed(0)
      const doomed = sql`SELECT run_id FROM runs WHERE status IN ${sql.in(prunable)} AND updated_at < ${olderThan.toISOString()}`
      // Children first and explicitly, so pruning does not depend on SQLite's foreign_keys pragma.
      return sql
        .withTransaction(
          Effect.gen(function* () {
            for (const table of ["run_events", "node_executions", "gates", "usage"]) {
              yield* sql`DELETE FROM ${sql(table)} WHERE run_id IN (${doomed})`
            }
            yield* sql`UPDATE messages SET run_id = NULL WHERE run_id IN (${doomed})`
            const deleted = yield* sql`DELETE FROM runs WHERE run_id IN (${doomed}) RETURNING run_id`
            return deleted.length
          })
        )
        .pipe(Effect.mapError(storeError("pruning runs")))
    },
    pendingGates: (runId) =>
      sql<GateRow>`SELECT g.run_id, g.gate_id, g.node_id, g.gate_type, g.message, g.assignee, g.expires_at,
          g.timeout_action, g.created_at
        FROM gates g JOIN runs r ON r.run_id = g.run_id
        WHERE g.status = 'pending' AND r.status NOT IN ${sql.in(terminal)}
          ${runId !== undefined ? sql`AND g.run_id = ${runId}` : sql.literal("")}
        ORDER BY r.created_at, r.run_id, g.paused_seq`.pipe(
        Effect.map((rows) => rows.map(toGate)),
        Effect.mapError(storeError("reading pending gates"))
      ),
    // Postgres: every org's runs, through the operator's SECURITY DEFINER function (Migrations.ts).
    runsToRecover: () =>
      sql.onDialectOrElse({
        pg: () =>
          Effect.map(sql<RunRow & { org_id: string }>`SELECT * FROM relavium_runs_to_recover()`, (rows) =>
            rows.map((row) => ({ ...toRecord(row), orgId: row.org_id }))
          ),
        orElse: () => Effect.map(sql<RunRow>`SELECT * FROM runs WHERE status IN ${sql.in(active)} ORDER BY created_at, run_id`, (rows) => rows.map(toRecord))
      }).pipe(
        Effect.mapError(storeError("listing runs to recover"))
      )
  })
})

export const make: Effect.Effect<RunStore.Service, never, SqlClient.SqlClient> = makeWith(ownTransaction)

/** The same store for Postgres: one-statement appends and group commit (see `serverCommitter`). */
export const makeServer = (options: GroupCommit.GroupCommitOptions): Effect.Effect<RunStore.Service, never, SqlClient.SqlClient | Scope.Scope> =>
  makeWith(serverCommitter(options))

/** `RunStore` on whatever `SqlClient` is provided (already migrated: see `Database`). */
export const layer: Layer.Layer<RunStore, never, SqlClient.SqlClient> = Layer.effect(RunStore, make)

/**
 * The same for Postgres taking appends from many runs at once: the engine's usual append in one
 * statement, others in transactions shared by a burst of appends. `writers` transactions run at once.
 */
export const layerServer = (options: GroupCommit.GroupCommitOptions = defaultGroupCommit): Layer.Layer<RunStore, never, SqlClient.SqlClient> =>
  Layer.scoped(RunStore, makeServer(options))

/** Two transactions in flight: one commits while the next fills. */
export const defaultGroupCommit: GroupCommit.GroupCommitOptions = { writers: 2, maxBatch: 64 }

/** `RunStore` on a SQLite file: WAL, busy timeout, foreign keys, migrated. */
export const layerSqlite = (options: Database.SqliteOptions): Layer.Layer<RunStore, StoreError> =>
  layer.pipe(Layer.provide(Database.layerSqlite(options)))

/** `RunStore` on Postgres, migrated; fails within the connect timeout if the server is unreachable. */
export const layerPg = (options: Database.PgOptions): Layer.Layer<RunStore, StoreError> =>
  layerServer().pipe(Layer.provide(Database.layerPg(options)))

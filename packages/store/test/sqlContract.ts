/**
 * What the SQL layers promise beyond the tag: projections written in the same
 * transaction as their events, a failed append that leaves nothing behind,
 * idempotent migrations, and the commit cost of a node checkpoint.
 */
import { assert, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, type Layer, Option } from "effect"
import { RunStore, SequenceConflict, type StoreError } from "@relavium/ports"
import type { RunEvent as RE } from "@relavium/domain"
import { Database, Migrations, type Store } from "../src/index.js"
import {
  completed,
  costUpdated,
  failure,
  gatePaused,
  gateResumed,
  newRunId,
  nodeCompleted,
  nodeStarted,
  started
} from "@relavium/ports/testing"

const createRun = (runId: string) =>
  Effect.flatMap(RunStore, (store) =>
    store.create({ runId, workflowId: "wf-1", workflowName: "demo", createdAt: new Date().toISOString() })
  )

const allMigrationIds = Object.keys(Migrations.migrations).map((key) => Number.parseInt(key, 10)).sort((a, b) => a - b)

const json = (value: unknown) => (typeof value === "string" ? JSON.parse(value) : value)


export const sqlContract = (name: string, layer: Layer.Layer<Store.Services, StoreError>) =>
  it.layer(layer, { timeout: "60 seconds" })(`SQL store: ${name}`, (it) => {
    it.effect("writes node executions, gates and usage with the events", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const sql = yield* SqlClient.SqlClient
        const runId = newRunId()
        yield* createRun(runId)
        yield* store.append(runId, [started(runId), nodeStarted(runId, "a"), nodeStarted(runId, "b", 2)])
        yield* store.append(runId, [
          costUpdated(runId, "a", "m1", 300),
          costUpdated(runId, "a", "m1", 200),
          costUpdated(runId, "a", "m2", 7),
          nodeCompleted(runId, "a", { answer: 42 })
        ])
        yield* store.append(runId, [costUpdated(runId, "a", "m1", 1), gatePaused(runId, "b", "gate-b", { gateType: "budget" })])
        const nodes = yield* sql<{ node_id: string; status: string; attempt: number; output: unknown; finished_at: string | null }>`
          SELECT node_id, status, attempt, output, finished_at FROM node_executions WHERE run_id = ${runId} ORDER BY node_id`
        assert.deepStrictEqual(
          nodes.map((n) => [n.node_id, n.status, Number(n.attempt), json(n.output)]),
          [["a", "completed", 1, { answer: 42 }], ["b", "waiting", 2, null]]
        )
        const usage = yield* sql<{ node_id: string; model: string; input_tokens: unknown; output_tokens: unknown; cost_microcents: unknown }>`
          SELECT node_id, model, input_tokens, output_tokens, cost_microcents FROM usage WHERE run_id = ${runId} ORDER BY model`
        assert.deepStrictEqual(
          usage.map((u) => [u.node_id, u.model, Number(u.input_tokens), Number(u.output_tokens), Number(u.cost_microcents)]),
          [["a", "m1", 300, 60, 501], ["a", "m2", 100, 20, 7]]
        )
        // An approved budget gate resumes its node; the gate row records the decision.
        yield* store.append(runId, [gateResumed(runId, "b")])
        const [gate] = yield* sql<{ status: string; decision: string; decided_by: string; gate_type: string }>`
          SELECT status, decision, decided_by, gate_type FROM gates WHERE run_id = ${runId} AND gate_id = 'gate-b'`
        assert.deepStrictEqual(gate, { status: "resolved", decision: "approved", decided_by: "ada", gate_type: "budget" })
        const [b] = yield* sql<{ status: string }>`SELECT status FROM node_executions WHERE run_id = ${runId} AND node_id = 'b'`
        assert.strictEqual(b?.status, "running")
        const [run] = yield* sql<{ last_seq: unknown; status: string }>`SELECT last_seq, status FROM runs WHERE run_id = ${runId}`
        assert.deepStrictEqual([Number(run?.last_seq), run?.status], [9, "running"])
      }))

    it.effect("a failed append leaves nothing: no events, no projections, the run row unchanged", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const sql = yield* SqlClient.SqlClient
        const runId = newRunId()
        yield* createRun(runId)
        yield* store.append(runId, [started(runId), nodeStarted(runId, "a")])
        const before = yield* store.get(runId)
        // The usage row (written last) violates NOT NULL: events and node rows were already written.
        const broken = { ...costUpdated(runId, "a", "m", 1), model: null } as unknown as RE.RunEventDraft
        const error = yield* failure(
          store.append(runId, [nodeCompleted(runId, "a"), gatePaused(runId, "g", "gate-g"), broken, completed(runId)])
        )
        assert.strictEqual(error._tag, "StoreError")
        assert.match(error.message, /appending to run/)
        assert.deepStrictEqual(yield* store.get(runId), before)
        assert.strictEqual((yield* store.events(runId)).length, 2)
        const [node] = yield* sql<{ status: string }>`SELECT status FROM node_executions WHERE run_id = ${runId} AND node_id = 'a'`
        assert.strictEqual(node?.status, "running")
        assert.strictEqual((yield* sql`SELECT 1 AS one FROM gates WHERE run_id = ${runId}`).length, 0)
        assert.deepStrictEqual(yield* store.pendingGates(runId), [])
        // The store is still usable and numbering continues where it was.
        const next = yield* store.append(runId, [nodeCompleted(runId, "a")])
        assert.strictEqual(next[0]?.sequenceNumber, 2)
      }))

    it.effect("an engine step's append (expected sequence number, node events) writes its events, node rows and run row, or nothing", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const sql = yield* SqlClient.SqlClient
        const runId = newRunId()
        yield* createRun(runId)
        yield* store.append(runId, [started(runId), nodeStarted(runId, "a")], { expectedLastSequenceNumber: -1 })
        const skipped: RE.RunEventDraft = { type: "node:skipped", runId, timestamp: new Date().toISOString(), nodeId: "c", reason: "branch_not_taken" }
        const step = yield* store.append(runId, [nodeCompleted(runId, "a", { answer: 42 }), skipped, nodeStarted(runId, "b", 2)], {
          expectedLastSequenceNumber: 1
        })
        assert.deepStrictEqual(step.map((e) => [e.sequenceNumber, e.type]), [[2, "node:completed"], [3, "node:skipped"], [4, "node:started"]])
        assert.deepStrictEqual(yield* store.events(runId, 1), step)
        const nodes = yield* sql<{ node_id: string; status: string; attempt: number; output: unknown; last_seq: unknown }>`
          SELECT node_id, status, attempt, output, last_seq FROM node_executions WHERE run_id = ${runId} ORDER BY node_id`
        assert.deepStrictEqual(
          nodes.map((n) => [n.node_id, n.status, Number(n.attempt), json(n.output), Number(n.last_seq)]),
          [["a", "completed", 1, { answer: 42 }, 2], ["b", "running", 2, null, 4], ["c", "skipped", 0, null, 3]]
        )
        // A stale expected number: a conflict naming the actual one, and nothing written.
        const conflict = yield* failure(store.append(runId, [nodeCompleted(runId, "b")], { expectedLastSequenceNumber: 1 }))
        assert.instanceOf(conflict, SequenceConflict)
        if (conflict._tag === "SequenceConflict") assert.deepStrictEqual([conflict.expected, conflict.actual], [1, 4])
        assert.strictEqual((yield* store.events(runId)).length, 5)
        const [b] = yield* sql<{ status: string }>`SELECT status FROM node_executions WHERE run_id = ${runId} AND node_id = 'b'`
        assert.strictEqual(b?.status, "running")
        yield* store.append(runId, [nodeCompleted(runId, "b"), completed(runId)], { expectedLastSequenceNumber: 4 })
        const run = Option.getOrThrow(yield* store.get(runId))
        assert.deepStrictEqual([run.status, run.lastSequenceNumber], ["completed", 6])
        // A closed run refuses before any sequence check; an unknown run is not found.
        assert.strictEqual((yield* failure(store.append(runId, [nodeStarted(runId, "d")], { expectedLastSequenceNumber: 0 })))._tag, "RunClosed")
        assert.strictEqual((yield* failure(store.append(newRunId(), [nodeStarted(runId, "d")], { expectedLastSequenceNumber: -1 })))._tag, "RunNotFound")
      }))

    it.effect("migrations are idempotent and recorded once", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* Database.migrate("the test database")
        yield* Database.migrate("the test database")
        const rows = yield* sql<{ migration_id: unknown }>`SELECT migration_id FROM ${sql(Migrations.migrationsTable)}`
        assert.deepStrictEqual(rows.map((r) => Number(r.migration_id)).sort((a, b) => a - b), allMigrationIds)
        for (const table of ["projects", "workflows", "workflow_versions", "runs", "run_events", "node_executions", "gates", "usage", "worktrees", "chats", "messages", "content_blocks", "provider_keys"]) {
          const [row] = yield* sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM ${sql(table)} WHERE org_id <> 'local'`
          assert.strictEqual(Number(row?.n), 0, table)
        }
      }))

    it.effect("commits many node checkpoints in a row, each numbered after the last", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const runId = newRunId()
        yield* createRun(runId)
        yield* store.append(runId, [started(runId)])
        const output = { summary: "x".repeat(200), items: [1, 2, 3] }
        for (let i = 0; i < 200; i++) {
          const [event] = yield* store.append(runId, [nodeCompleted(runId, `n${i}`, output)])
          assert.strictEqual(event!.sequenceNumber, i + 1)
        }
        assert.strictEqual(Option.getOrThrow(yield* store.get(runId)).lastSequenceNumber, 200)
      }))
  })

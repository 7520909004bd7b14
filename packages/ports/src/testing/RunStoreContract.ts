/**
 * The contract every `RunStore` layer must meet, one suite parameterised by
 * layer (memory, SQLite, Postgres). Tests share one store per
 * suite, so each uses its own run ids and, where it looks at every run, its
 * own stretch of time (runs of other tests are in the present).
 */
import { assert, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, type Layer, Option } from "effect"
import { type PendingGateRecord, RunStore, type StoreError } from "../RunStore.js"
import type { RunEvent as RE } from "@relavium/domain"

export const newRunId = (): string => crypto.randomUUID()

/** Canonical timestamps: `at(0)` is a fixed instant in `year`, `at(n)` n milliseconds later. */
export const clockOf = (year = 2025) => (n: number) => new Date(Date.UTC(year, 0, 1) + n).toISOString()
const now = clockOf(new Date().getUTCFullYear())

export const started = (runId: string, timestamp = now(0)): RE.RunEventDraft => ({
  type: "run:started",
  runId,
  timestamp,
  workflowId: "wf-1",
  inputs: { title: "Add dark mode" },
  executionMode: "local"
})
export const nodeStarted = (runId: string, nodeId: string, attemptNumber?: number): RE.RunEventDraft => ({
  type: "node:started",
  runId,
  timestamp: now(1),
  nodeId,
  nodeType: "transform",
  ...(attemptNumber !== undefined ? { attemptNumber } : {})
})
export const nodeCompleted = (runId: string, nodeId: string, output: unknown = { ok: true }, timestamp = now(2)): RE.RunEventDraft => ({
  type: "node:completed",
  runId,
  timestamp,
  nodeId,
  output,
  tokensUsed: { input: 10, output: 5 },
  durationMs: 3
})
export const gatePaused = (runId: string, nodeId: string, gateId: string, extra: Partial<RE.RunEventOf<"human_gate:paused">> = {}): RE.RunEventDraft => ({
  type: "human_gate:paused",
  runId,
  timestamp: now(3),
  nodeId,
  gateId,
  gateType: "approval",
  message: `approve ${nodeId}?`,
  ...extra
})
export const gateResumed = (runId: string, nodeId: string, gateId?: string): RE.RunEventDraft => ({
  type: "human_gate:resumed",
  runId,
  timestamp: now(4),
  nodeId,
  ...(gateId !== undefined ? { gateId } : {}),
  decision: "approved",
  decidedBy: "ada"
})
export const paused = (runId: string, gateIds: ReadonlyArray<string>): RE.RunEventDraft => ({
  type: "run:paused",
  runId,
  timestamp: now(5),
  pendingGateCount: gateIds.length,
  gateIds
})
export const completed = (runId: string, timestamp = now(6)): RE.RunEventDraft => ({
  type: "run:completed",
  runId,
  timestamp,
  outputs: {},
  totalTokensUsed: { input: 0, output: 0 },
  totalCostMicrocents: 0,
  durationMs: 6
})
export const cancelled = (runId: string, timestamp = now(6)): RE.RunEventDraft => ({ type: "run:cancelled", runId, timestamp })
export const costUpdated = (runId: string, nodeId: string, model: string, costMicrocents: number): RE.RunEventDraft => ({
  type: "cost:updated",
  runId,
  timestamp: now(2),
  nodeId,
  model,
  inputTokens: 100,
  outputTokens: 20,
  costMicrocents,
  cumulativeCostMicrocents: costMicrocents
})

const createRun = (runId: string, createdAt = now(0)) =>
  Effect.flatMap(RunStore, (store) => store.create({ runId, workflowId: "wf-1", workflowName: "demo", createdAt }))

const seqs = (events: ReadonlyArray<RE.RunEvent>) => events.map((e) => e.sequenceNumber)
const range = (n: number) => Array.from({ length: n }, (_, i) => i)

export const runStoreContract = (name: string, layer: Layer.Layer<RunStore, StoreError>) =>
  it.layer(layer, { timeout: "60 seconds" })(`RunStore contract: ${name}`, (it) => {
    it.effect("creates a run once and reads it back", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const runId = newRunId()
        yield* createRun(runId)
        yield* store.create({ runId, workflowId: "other", workflowName: "other", createdAt: now(9) })
        const record = yield* store.get(runId)
        assert.deepStrictEqual(Option.getOrThrow(record), {
          runId,
          workflowId: "wf-1",
          workflowName: "demo",
          status: "running",
          createdAt: now(0),
          updatedAt: now(0),
          lastSequenceNumber: -1
        })
        assert.deepStrictEqual(yield* store.events(runId), [])
        assert.isTrue(Option.isNone(yield* store.get(newRunId())))
        assert.deepStrictEqual(yield* store.events(newRunId()), [])
      }))

    it.effect("numbers events from 0 and reads them back after any sequence number", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const runId = newRunId()
        yield* createRun(runId)
        const first = yield* store.append(runId, [started(runId), nodeStarted(runId, "a")])
        assert.deepStrictEqual(seqs(first), [0, 1])
        const output = { text: "héllo \u0000 wörld ✓", n: 1.5, list: [1, null, { deep: true }], empty: "" }
        const second = yield* store.append(runId, [nodeCompleted(runId, "a", output)])
        assert.deepStrictEqual(seqs(second), [2])
        const all = yield* store.events(runId)
        assert.deepStrictEqual(all, [...first, ...second])
        assert.deepStrictEqual((all[2] as RE.RunEventOf<"node:completed">).output, output)
        assert.deepStrictEqual(yield* store.events(runId, 0), all.slice(1))
        assert.deepStrictEqual(yield* store.events(runId, 2), [])
        assert.deepStrictEqual(yield* store.events(runId, -1), all)
        const record = Option.getOrThrow(yield* store.get(runId))
        assert.strictEqual(record.lastSequenceNumber, 2)
        assert.strictEqual(record.updatedAt, now(2))
        assert.strictEqual(record.status, "running")
        assert.deepStrictEqual(yield* store.append(runId, []), [])
      }))

    it.effect("moves the status with the events: paused → waiting, resumed → running, completed", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const runId = newRunId()
        yield* createRun(runId)
        yield* store.append(runId, [started(runId), gatePaused(runId, "g", "gate-1"), paused(runId, ["gate-1"])])
        assert.strictEqual(Option.getOrThrow(yield* store.get(runId)).status, "waiting")
        yield* store.append(runId, [nodeCompleted(runId, "x")])
        assert.strictEqual(Option.getOrThrow(yield* store.get(runId)).status, "waiting")
        yield* store.append(runId, [gateResumed(runId, "g", "gate-1")])
        assert.strictEqual(Option.getOrThrow(yield* store.get(runId)).status, "running")
        yield* store.append(runId, [completed(runId)])
        assert.strictEqual(Option.getOrThrow(yield* store.get(runId)).status, "completed")
      }))

    it.effect("fails RunNotFound for an unknown run", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const runId = newRunId()
        const result = yield* Effect.either(store.append(runId, [started(runId)]))
        assert.deepStrictEqual(Either.getLeft(result).pipe(Option.map((e) => e._tag)), Option.some("RunNotFound"))
      }))

    it.effect("refuses appends after the terminal event (RunClosed) and drops drafts after it in a batch", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const runId = newRunId()
        yield* createRun(runId)
        const events = yield* store.append(runId, [started(runId), completed(runId), nodeStarted(runId, "late")])
        assert.deepStrictEqual(events.map((e) => e.type), ["run:started", "run:completed"])
        const record = Option.getOrThrow(yield* store.get(runId))
        assert.strictEqual(record.status, "completed")
        assert.strictEqual(record.lastSequenceNumber, 1)
        assert.strictEqual(record.updatedAt, now(6))
        for (const drafts of [[nodeStarted(runId, "later")], [cancelled(runId)], []]) {
          const result = yield* Effect.either(store.append(runId, drafts))
          assert.deepStrictEqual(Either.getLeft(result).pipe(Option.map((e) => e._tag)), Option.some("RunClosed"))
        }
        // A closed run reports RunClosed before any sequence check.
        const conflict = yield* Effect.either(store.append(runId, [cancelled(runId)], { expectedLastSequenceNumber: 7 }))
        assert.deepStrictEqual(Either.getLeft(conflict).pipe(Option.map((e) => e._tag)), Option.some("RunClosed"))
        assert.deepStrictEqual(seqs(yield* store.events(runId)), [0, 1])
      }))

    it.effect("checks expectedLastSequenceNumber (SequenceConflict) and writes nothing on a conflict", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const runId = newRunId()
        yield* createRun(runId)
        assert.deepStrictEqual(seqs(yield* store.append(runId, [started(runId)], { expectedLastSequenceNumber: -1 })), [0])
        const stale = yield* Effect.either(
          store.append(runId, [nodeStarted(runId, "a"), completed(runId)], { expectedLastSequenceNumber: -1 })
        )
        const error = Option.getOrThrow(Either.getLeft(stale))
        assert.strictEqual(error._tag, "SequenceConflict")
        if (error._tag === "SequenceConflict") {
          assert.strictEqual(error.expected, -1)
          assert.strictEqual(error.actual, 0)
          assert.strictEqual(error.runId, runId)
        }
        const record = Option.getOrThrow(yield* store.get(runId))
        assert.strictEqual(record.lastSequenceNumber, 0)
        assert.strictEqual(record.status, "running")
        assert.strictEqual(record.updatedAt, now(0))
        assert.deepStrictEqual(seqs(yield* store.events(runId)), [0])
        assert.deepStrictEqual(seqs(yield* store.append(runId, [nodeStarted(runId, "a")], { expectedLastSequenceNumber: 0 })), [1])
      }))

    it.effect("numbers concurrent appends from many fibers with no gap and no duplicate", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const runId = newRunId()
        yield* createRun(runId)
        const fibers = 16
        const appendsEach = 8
        const returned = yield* Effect.forEach(
          range(fibers),
          (fiber) =>
            Effect.forEach(range(appendsEach), (i) =>
              store.append(runId, range((i % 3) + 1).map((k) => nodeStarted(runId, `f${fiber}-${i}-${k}`)))
            ),
          { concurrency: "unbounded" }
        )
        const total = fibers * appendsEach * 2 // (1 + 2 + 3) per 3 appends → 2 per append on average
        const batches = returned.flat()
        for (const batch of batches) {
          const s = seqs(batch)
          assert.deepStrictEqual(s, range(s.length).map((k) => s[0]! + k))
        }
        const all = yield* store.events(runId)
        assert.strictEqual(all.length, batches.reduce((n, b) => n + b.length, 0))
        assert.isTrue(all.length >= total - fibers * 2)
        assert.deepStrictEqual(seqs(all), range(all.length))
        assert.deepStrictEqual(
          [...batches.flat()].sort((a, b) => a.sequenceNumber - b.sequenceNumber),
          all
        )
        assert.strictEqual(Option.getOrThrow(yield* store.get(runId)).lastSequenceNumber, all.length - 1)
      }))

    it.effect("lists runs newest first, by status, with a limit", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        // Far in the future, so these are the newest runs of the store.
        const at = clockOf(2999)
        const ids = [newRunId(), newRunId(), newRunId()]
        for (const [i, runId] of ids.entries()) yield* createRun(runId, at(i))
        yield* store.append(ids[1]!, [started(ids[1]!, at(10)), completed(ids[1]!, at(11))])
        const top = yield* store.list({ limit: 3 })
        assert.deepStrictEqual(top.map((r) => r.runId), [ids[2], ids[1], ids[0]])
        assert.deepStrictEqual((yield* store.list({ limit: 1 })).map((r) => r.runId), [ids[2]])
        const done = (yield* store.list({ status: "completed" })).filter((r) => ids.includes(r.runId))
        assert.deepStrictEqual(done.map((r) => r.runId), [ids[1]])
        assert.strictEqual(done[0]!.updatedAt, at(11))
        const all = (yield* store.list()).filter((r) => ids.includes(r.runId))
        assert.strictEqual(all.length, 3)
        assert.deepStrictEqual(yield* store.list({ limit: 0 }), [])
      }))

    it.effect("prunes ended runs older than a date, with their events, and nothing else", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        // In 2001, so no other test's run is old enough to be pruned.
        const at = clockOf(2001)
        const [oldDone, oldFailed, oldRunning, newDone, oldCancelled] = [newRunId(), newRunId(), newRunId(), newRunId(), newRunId()]
        for (const runId of [oldDone, oldFailed, oldRunning, newDone, oldCancelled]) yield* createRun(runId, at(0))
        yield* store.append(oldDone, [started(oldDone, at(1)), completed(oldDone, at(2))])
        yield* store.append(oldFailed, [
          started(oldFailed, at(1)),
          {
            type: "run:failed",
            runId: oldFailed,
            timestamp: at(3),
            error: { code: "internal", message: "boom", retryable: false },
            partialOutputs: {}
          }
        ])
        yield* store.append(oldRunning, [started(oldRunning, at(1)), gatePaused(oldRunning, "g", "gate-old")])
        yield* store.append(newDone, [started(newDone, at(1)), completed(newDone, clockOf(2003)(0))])
        yield* store.append(oldCancelled, [started(oldCancelled, at(1)), cancelled(oldCancelled, at(4))])
        const cutoff = new Date(clockOf(2002)(0))
        assert.strictEqual(yield* store.prune(cutoff, []), 0)
        assert.strictEqual(yield* store.prune(cutoff, ["failed"]), 1)
        assert.isTrue(Option.isNone(yield* store.get(oldFailed)))
        assert.strictEqual(yield* store.prune(cutoff), 2)
        for (const gone of [oldDone, oldFailed, oldCancelled]) {
          assert.isTrue(Option.isNone(yield* store.get(gone)))
          assert.deepStrictEqual(yield* store.events(gone), [])
        }
        for (const kept of [oldRunning, newDone]) {
          assert.isTrue(Option.isSome(yield* store.get(kept)))
          assert.strictEqual((yield* store.events(kept)).length, 2)
        }
        assert.strictEqual(yield* store.prune(cutoff), 0)
        // The cutoff is exclusive: a run that ended exactly at it stays.
        assert.strictEqual(yield* store.prune(new Date(clockOf(2003)(0))), 0)
        assert.strictEqual(yield* store.prune(new Date(clockOf(2003)(1))), 1)
        // A pruned run can be created again from scratch.
        yield* createRun(oldDone, at(0))
        assert.deepStrictEqual(seqs(yield* store.append(oldDone, [started(oldDone, at(1))])), [0])
        yield* store.append(oldDone, [cancelled(oldDone, at(1))])
        yield* store.append(oldRunning, [cancelled(oldRunning, at(1))])
        assert.strictEqual(yield* store.prune(cutoff), 2)
      }))

    it.effect("lists pending gates from the log: resolved by id or by node, none once the run ends", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const at = clockOf(2010)
        const [first, second] = [newRunId(), newRunId()]
        yield* createRun(first, at(0))
        yield* createRun(second, at(1))
        yield* store.append(first, [
          started(first),
          gatePaused(first, "review", "g-1", { expiresAt: "2030-01-01T00:00:00.000Z", timeoutAction: "reject", assignee: "ada" }),
          gatePaused(first, "budget-node", "g-2", { gateType: "budget" }),
          gatePaused(first, "input", "g-3", { gateType: "input" }),
          paused(first, ["g-1", "g-2", "g-3"])
        ])
        yield* store.append(second, [started(second), gatePaused(second, "n", "g-9")])
        const mine = (gates: ReadonlyArray<PendingGateRecord>) => gates.filter((g) => g.runId === first || g.runId === second)
        const all = mine(yield* store.pendingGates())
        assert.deepStrictEqual(all.map((g) => [g.runId, g.gateId]), [[first, "g-1"], [first, "g-2"], [first, "g-3"], [second, "g-9"]])
        assert.deepStrictEqual(all[0], {
          runId: first,
          gateId: "g-1",
          nodeId: "review",
          gateType: "approval",
          message: "approve review?",
          assignee: "ada",
          expiresAt: "2030-01-01T00:00:00.000Z",
          timeoutAction: "reject",
          pausedAt: now(3)
        })
        assert.deepStrictEqual(all[1], {
          runId: first,
          gateId: "g-2",
          nodeId: "budget-node",
          gateType: "budget",
          message: "approve budget-node?",
          pausedAt: now(3)
        })
        yield* store.append(first, [gateResumed(first, "review", "g-1"), gateResumed(first, "input")])
        assert.deepStrictEqual((yield* store.pendingGates(first)).map((g) => g.gateId), ["g-2"])
        // Resolving a gate twice changes nothing.
        yield* store.append(first, [gateResumed(first, "review", "g-1")])
        assert.deepStrictEqual((yield* store.pendingGates(first)).map((g) => g.gateId), ["g-2"])
        assert.deepStrictEqual((yield* store.pendingGates(second)).map((g) => g.gateId), ["g-9"])
        assert.deepStrictEqual(yield* store.pendingGates(newRunId()), [])
        yield* store.append(second, [cancelled(second)])
        assert.deepStrictEqual(yield* store.pendingGates(second), [])
        assert.deepStrictEqual(mine(yield* store.pendingGates()).map((g) => g.gateId), ["g-2"])
      }))

    it.effect("lists the runs to recover (running or waiting), oldest first", () =>
      Effect.gen(function* () {
        const store = yield* RunStore
        const at = clockOf(2020)
        const [waiting, running, done, fresh] = [newRunId(), newRunId(), newRunId(), newRunId()]
        yield* createRun(running, at(1))
        yield* createRun(waiting, at(0))
        yield* createRun(done, at(2))
        yield* createRun(fresh, at(3))
        yield* store.append(waiting, [started(waiting), gatePaused(waiting, "g", "g"), paused(waiting, ["g"])])
        yield* store.append(running, [started(running), nodeStarted(running, "a")])
        yield* store.append(done, [started(done), completed(done)])
        const mine = (yield* store.runsToRecover()).filter((r) => [waiting, running, done, fresh].includes(r.runId))
        assert.deepStrictEqual(mine.map((r) => [r.runId, r.status]), [[waiting, "waiting"], [running, "running"], [fresh, "running"]])
        // A multi-tenant store names each run's org (here the default one); the record is the run's.
        const { orgId, ...record } = mine[1]!
        assert.include([undefined, "local"], orgId)
        assert.deepStrictEqual(record, Option.getOrThrow(yield* store.get(running)))
      }))
  })

/** Runs an effect expected to fail and returns its error. */
export const failure = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
    return Option.isSome(error) ? Effect.succeed(error.value) : Effect.dieMessage(`expected a failure, got ${String(exit)}`)
  })

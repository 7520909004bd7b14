import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { WorkflowEngine } from "../src/index.js"
import { checkLog, collectAll, engineLayer, last, ofType, runToRest } from "./harness.js"

const wf = (body: string) => `schema_version: '1.0'\nworkflow:\n${body.replace(/^/gm, "  ")}\n`

/** Runs `effect` with the process in a fresh temporary directory (save_to paths are relative to it). */
const inTempDir = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const previous = process.cwd()
      const dir = mkdtempSync(join(tmpdir(), "relavium-save-to-"))
      process.chdir(dir)
      return { previous, dir }
    }),
    ({ dir }) => Effect.map(effect, (a) => ({ a, dir })),
    ({ previous }) => Effect.sync(() => process.chdir(previous))
  )

describe("output nodes", () => {
  it.live("one feeder passes its value verbatim; several give an object keyed by feeder, sorted", () =>
    Effect.gen(function* () {
      const { events } = yield* runToRest(
        wf(`id: outputs
nodes:
  - { id: zeta, type: transform, transform: '"z"' }
  - { id: alpha, type: transform, transform: '({ a: 1 })' }
  - { id: both, type: output }
  - { id: one, type: output }
  - { id: none, type: output }
edges:
  - { from: zeta, to: both }
  - { from: alpha, to: both }
  - { from: alpha, to: one }`)
      )
      checkLog(events)
      const done = last(events)
      if (done.type !== "run:completed") return assert.fail(done.type)
      assert.deepStrictEqual(done.outputs, { both: { alpha: { a: 1 }, zeta: "z" }, one: { a: 1 }, none: null })
      assert.deepStrictEqual(Object.keys(done.outputs.both as object), ["alpha", "zeta"])
    }).pipe(Effect.provide(engineLayer())))

  it.live("save_to writes the output under the run's id, text as text and values as JSON", () =>
    Effect.gen(function* () {
      const { a: result, dir } = yield* inTempDir(
        runToRest(
          wf(`id: saving
nodes:
  - { id: note, type: transform, transform: '"hello"' }
  - { id: data, type: transform, transform: '({ n: 1 })' }
  - { id: text-out, type: output, save_to: 'out/{{ run.id }}/note.txt' }
  - { id: json-out, type: output, save_to: 'out/{{ run.id }}/data.json' }
edges:
  - { from: note, to: text-out }
  - { from: data, to: json-out }`)
        )
      )
      checkLog(result.events)
      assert.strictEqual(last(result.events).type, "run:completed")
      assert.strictEqual(readFileSync(join(dir, "out", result.runId, "note.txt"), "utf8"), "hello")
      assert.deepStrictEqual(JSON.parse(readFileSync(join(dir, "out", result.runId, "data.json"), "utf8")), { n: 1 })
    }).pipe(Effect.provide(engineLayer())))
})

describe("gate types", () => {
  it.live("a review gate records the reviewer and comment and passes the decision on", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const { runId, events } = yield* runToRest(
        wf(`id: reviewed
nodes:
  - { id: draft, type: transform, transform: '"v1"' }
  - { id: check, type: human_gate, gate_type: review, assignee: lead }
  - { id: out, type: output }
edges:
  - { from: draft, to: check }
  - { from: check, to: out }`)
      )
      const paused = ofType(events, "human_gate:paused")[0]!
      assert.strictEqual(paused.gateType, "review")
      assert.strictEqual(paused.assignee, "lead")
      assert.strictEqual(paused.message, "Review needed at 'check'")
      const wrong = yield* engine.resume(runId, paused.gateId, { decision: "input_provided", decidedBy: "x", payload: 1 }).pipe(Effect.flip)
      assert.strictEqual(wrong.reason, "invalid_input")
      yield* engine.resume(runId, paused.gateId, { decision: "approved", decidedBy: "lead", comment: "looks good" })
      const all = yield* collectAll(runId)
      checkLog(all)
      const resumed = ofType(all, "human_gate:resumed")[0]!
      assert.deepStrictEqual([resumed.decidedBy, resumed.comment], ["lead", "looks good"])
      const done = last(all)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: { decision: "approved" } })
      else assert.fail(done.type)
    }).pipe(Effect.provide(engineLayer())))

  it.live("two gates can pend at once; run:paused names both, and the run goes on as each is decided", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const { runId, events } = yield* runToRest(
        wf(`id: two-gates
nodes:
  - { id: split, type: parallel, parallel_of: [legal, security] }
  - { id: legal, type: human_gate, gate_type: approval }
  - { id: security, type: human_gate, gate_type: approval }
  - { id: both, type: merge, merge_strategy: concat }
edges:
  - { from: legal, to: both }
  - { from: security, to: both }`)
      )
      const paused = last(events)
      if (paused.type !== "run:paused") return assert.fail(paused.type)
      assert.strictEqual(paused.pendingGateCount, 2)
      const ambiguous = yield* engine.resume(runId, undefined, { decision: "approved", decidedBy: "x" }).pipe(Effect.flip)
      assert.strictEqual(ambiguous.reason, "conflict")
      for (const gateId of paused.gateIds) yield* engine.resume(runId, gateId, { decision: "approved", decidedBy: "x" })
      const all = yield* collectAll(runId)
      checkLog(all)
      assert.strictEqual(last(all).type, "run:completed")
    }).pipe(Effect.provide(engineLayer())))
})

/**
 * Schedule triggers on the local engine (the monolith's semantics: in-process queue and stores),
 * driven by the `TestClock`: a 6-field cron with seconds fires once per fire time, with the
 * trigger and the fire time on `run:started` and a run id derived from both; two schedulers on
 * the same stores (replicas) still start one run per fire; at start, `run_once` fires the newest
 * missed fire once and `skip` fires none, and both go on firing after.
 */
import { assert, describe, it } from "@effect/vitest"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, Option, TestClock } from "effect"
import { layerLocal, QuickJsSandbox } from "@relavium/core"
import { Cassette, Pricing } from "@relavium/llm"
import { DaemonRouter, layerTriggersMemory, type NewTrigger, RunQueue, RunStore, Triggers, UpdateHub, WorkflowStore } from "@relavium/ports"
import { TriggerScheduler } from "../src/index.js"

const workflow = `schema_version: '1.0'
workflow:
  id: scheduled
  inputs:
    - { name: note, type: string, required: true }
  nodes:
    - { id: start, type: input }
    - { id: result, type: output }
  edges:
    - { from: start, to: result }
`

const engine = layerLocal({ executionMode: "local" }).pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      RunStore.layerMemory,
      UpdateHub.layerMemory,
      RunQueue.layerMemory(),
      WorkflowStore.layerMemory,
      QuickJsSandbox.layerQuickJs,
      Cassette.layerCassette({ schema_version: "1.0", provider: "openai", calls: [] }),
      Pricing.layerStatic,
      DaemonRouter.layerInProcess([])
    )
  ),
  Layer.provideMerge(NodeContext.layer)
)

const services = Layer.merge(engine, layerTriggersMemory)

const T0 = Date.parse("2026-03-01T10:00:00.000Z")

const schedule = (workflowId: string, overrides: Partial<NewTrigger> = {}): NewTrigger => ({
  workflowId,
  kind: "schedule",
  name: "every ten seconds",
  cron: "*/10 * * * * *",
  timezone: "UTC",
  inputs: { note: "tick" },
  createdBy: "local",
  ...overrides
})

/** The schedule runs of a trigger: their fire times (from `run:started`), oldest first. */
const firesOf = (triggerId: string) =>
  Effect.gen(function* () {
    const store = yield* RunStore
    const fires: Array<{ runId: string; deliveryId: string | undefined }> = []
    for (const run of yield* store.list({ limit: 500 })) {
      const started = (yield* store.events(run.runId)).find((e) => e.type === "run:started")
      if (started?.type === "run:started" && started.trigger?.triggerId === triggerId) {
        fires.push({ runId: run.runId, deliveryId: started.trigger.deliveryId })
      }
    }
    return fires.sort((a, b) => ((a.deliveryId ?? "") < (b.deliveryId ?? "") ? -1 : 1))
  })

/** Moves the clock a second at a time, letting the scheduler fibers run after each step. */
const advance = (seconds: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < seconds; i++) {
      yield* TestClock.adjust("1 second")
      for (let j = 0; j < 20; j++) yield* Effect.yieldNow()
    }
  })

const iso = (ms: number) => new Date(ms).toISOString()

describe("schedule triggers on the local engine", () => {
  it.scoped("fire once per fire time, with the trigger and a run id derived from it, even with two schedulers", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(T0)
      const stored = yield* Effect.flatMap(WorkflowStore, (w) => w.put({ name: "scheduled", source: workflow, file: "s.yaml" }))
      const { trigger } = yield* Effect.flatMap(Triggers, (t) => t.create(schedule(stored.workflowId)))
      yield* Effect.forkScoped(TriggerScheduler.run())
      yield* Effect.forkScoped(TriggerScheduler.run())
      yield* advance(35)
      const fires = yield* firesOf(trigger.id)
      assert.deepStrictEqual(fires.map((f) => f.deliveryId), [iso(T0 + 10_000), iso(T0 + 20_000), iso(T0 + 30_000)])
      for (const f of fires) assert.strictEqual(f.runId, TriggerScheduler.fireRunId(trigger.id, f.deliveryId!))
      const summary = Option.getOrThrow(yield* Effect.flatMap(RunStore, (s) => s.get(fires[0]!.runId)))
      assert.strictEqual(summary.workflowId, stored.workflowId)
      // A deleted schedule stops firing.
      yield* Effect.flatMap(Triggers, (t) => t.remove(trigger.id))
      yield* advance(20)
      assert.strictEqual((yield* firesOf(trigger.id)).length, 3)
    }).pipe(Effect.provide(services)))

  it.scoped("at start, run_once fires the newest missed fire once and skip fires none; both fire on after", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(T0)
      const stored = yield* Effect.flatMap(WorkflowStore, (w) => w.put({ name: "scheduled", source: workflow, file: "s.yaml" }))
      const triggers = yield* Triggers
      const once = (yield* triggers.create(schedule(stored.workflowId, { missed: "run_once" }))).trigger
      const skip = (yield* triggers.create(schedule(stored.workflowId))).trigger
      assert.strictEqual(skip.missed, "skip")
      // Nothing runs for 65 seconds (fires at :10 … :60 are missed), then a scheduler starts.
      yield* TestClock.setTime(T0 + 65_000)
      yield* Effect.forkScoped(TriggerScheduler.run())
      yield* advance(1)
      assert.deepStrictEqual((yield* firesOf(once.id)).map((f) => f.deliveryId), [iso(T0 + 60_000)])
      assert.deepStrictEqual(yield* firesOf(skip.id), [])
      yield* advance(5)
      assert.deepStrictEqual((yield* firesOf(once.id)).map((f) => f.deliveryId), [iso(T0 + 60_000), iso(T0 + 70_000)])
      assert.deepStrictEqual((yield* firesOf(skip.id)).map((f) => f.deliveryId), [iso(T0 + 70_000)])
    }).pipe(Effect.provide(services)))

  it.scoped("honours the schedule's time zone", () =>
    Effect.gen(function* () {
      // 09:00 in Tokyo is 00:00 UTC.
      yield* TestClock.setTime(Date.parse("2026-03-01T23:59:58.000Z"))
      const stored = yield* Effect.flatMap(WorkflowStore, (w) => w.put({ name: "scheduled", source: workflow, file: "s.yaml" }))
      const { trigger } = yield* Effect.flatMap(Triggers, (t) =>
        t.create(schedule(stored.workflowId, { cron: "0 0 9 * * *", timezone: "Asia/Tokyo" }))
      )
      yield* Effect.forkScoped(TriggerScheduler.run())
      yield* advance(4)
      assert.deepStrictEqual((yield* firesOf(trigger.id)).map((f) => f.deliveryId), ["2026-03-02T00:00:00.000Z"])
    }).pipe(Effect.provide(services)))
})

/**
 * Worker jobs survive a store that fails for a moment. One api side and one
 * worker, composed as `relavium server` composes them, on Postgres, BullMQ and
 * NATS; the worker's run store fails some appends: before writing (nothing
 * stored) and after writing (stored, but the reply lost, as when a
 * connection drops mid-commit). Every run must still complete with its
 * outputs and a gap-free log, every node completed once, and the agent node
 * whose checkpoint commit "failed" after landing must not run again.
 */
import { afterAll } from "vitest"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { WorkflowEngine } from "@relavium/core"
import { RunStore, StoreError, WorkflowStore } from "@relavium/ports"
import type { RunEvent as RE } from "@relavium/domain"
import * as Cloud from "../../../apps/cli/src/runtime/Cloud.js"
import { answer, checkLog, compile, flatPricing, ofType, scriptedModel } from "../../core/test/harness.js"
import { createDatabase, deleteRedisKeys, dropDatabase, natsUrl, redisUrl } from "../../../test/support/cloud.js"

const filePrefix = `relavium-retry-${crypto.randomUUID()}`
afterAll(() => deleteRedisKeys(filePrefix))

const workflow = `schema_version: '1.0'
workflow:
  id: flaky-store
  agents:
    - { id: writer, provider: openai, model: gpt-4o-mini, system_prompt: Answer briefly. }
  nodes:
    - { id: a, type: transform, transform: '1' }
    - { id: b, type: agent, agent_ref: writer, prompt_template: Say hello }
    - { id: c, type: transform, transform: 'run.outputs["a"] + 1' }
    - { id: d, type: transform, transform: 'run.outputs["c"] + 1' }
    - { id: out, type: output }
  edges:
    - { from: a, to: b }
    - { from: b, to: c }
    - { from: c, to: d }
    - { from: d, to: out }
`

type Fault = "before" | "after"

/** Which appends fail, per run: the first append holding `type` of `nodeId`, `times` times. */
const plan: ReadonlyArray<{ readonly type: RE.RunEventType; readonly nodeId: string; readonly fault: Fault; readonly times: number }> = [
  // A node's completion and the orchestrator step it makes possible are one append.
  // a's completion with the step that starts b: written, then the reply lost.
  { type: "node:started", nodeId: "b", fault: "after", times: 1 },
  // The agent's checkpoint (with c's start): written, then the reply lost. b must not call the model again.
  { type: "node:completed", nodeId: "b", fault: "after", times: 1 },
  // c's completion with the step that starts d, refused twice before it is written.
  { type: "node:completed", nodeId: "c", fault: "before", times: 2 },
  // d's checkpoint, refused before it is written.
  { type: "node:completed", nodeId: "d", fault: "before", times: 1 }
]

/** A run store over the real one whose appends fail as `plan` says; counts what it did. */
const flaky = (fired: Map<string, number>) =>
  Layer.effect(
    RunStore,
    Effect.map(RunStore, (inner) =>
      RunStore.of({
        ...inner,
        append: (runId, drafts, options) =>
          Effect.suspend(() => {
            for (const step of plan) {
              if (!drafts.some((d) => d.type === step.type && (d as { nodeId?: string }).nodeId === step.nodeId)) continue
              const key = `${runId}/${step.type}/${step.nodeId}/${step.fault}`
              const count = fired.get(key) ?? 0
              if (count >= step.times) continue
              fired.set(key, count + 1)
              const failure = new StoreError({ message: `connection terminated unexpectedly (injected, ${step.fault} writing)` })
              return step.fault === "before" ? Effect.fail(failure) : Effect.zipRight(inner.append(runId, drafts, options), Effect.fail(failure))
            }
            return inner.append(runId, drafts, options)
          })
      })
    )
  )

describe("worker jobs when the store fails for a moment", () => {
  it.live(
    "are retried: every run completes, each node completes once, and a landed checkpoint is not run again",
    () =>
      Effect.gen(function* () {
        const database = yield* Effect.acquireRelease(
          Effect.promise(() => createDatabase("retry")),
          ({ name }) => Effect.promise(() => dropDatabase(name))
        )
        const id = crypto.randomUUID().replaceAll("-", "")
        const d: Cloud.Deployment = {
          databaseUrl: database.url,
          redisUrl,
          natsUrl,
          queuePrefix: `${filePrefix}:${id}`,
          subjectPrefix: `relavium-test.retry.${id}`,
          queue: { lockDuration: "2 seconds", stalledInterval: "1 second", closeTimeout: "200 millis" }
        }
        const runs = 6
        const fired = new Map<string, number>()
        const model = scriptedModel(Array.from({ length: runs }, () => answer("hello there")))
        const api = yield* Layer.build(Cloud.apiEngine(d))
        const store = Cloud.store(d, "worker")
        yield* Layer.build(
          Cloud.workerOn(
            Layer.mergeAll(flaky(fired).pipe(Layer.provideMerge(store)), Cloud.queue(d), Cloud.hub(d, "worker")),
            Layer.mergeAll(model.layer, flatPricing, Cloud.noTools)
          )
        )
        yield* Effect.gen(function* () {
          const stored = yield* Effect.flatMap(WorkflowStore, (w) =>
            w.put({ name: compile(workflow).spec.id, source: workflow, file: "flaky.relavium.yaml" })
          )
          const engine = yield* WorkflowEngine
          const runStore = yield* RunStore
          const logs = yield* Effect.forEach(
            Array.from({ length: runs }),
            () =>
              Effect.flatMap(engine.start(stored.workflowId, {}), (handle) =>
                Effect.map(Stream.runCollect(engine.events(handle.runId)), (events) => ({ runId: handle.runId, events: [...events] }))
              ),
            { concurrency: "unbounded" }
          ).pipe(
            // A dropped job leaves its run hanging: say so rather than wait for the test's timeout.
            Effect.timeout("20 seconds"),
            Effect.catchTag("TimeoutException", () => Effect.dieMessage("runs did not finish: a failed job was dropped, not retried"))
          )
          for (const { events, runId } of logs) {
            checkLog(events)
            const done = events[events.length - 1]!
            assert.strictEqual(done.type, "run:completed", `run ${runId} ended with ${done.type}`)
            if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: 3 })
            const completed = ofType(events, "node:completed").map((e) => e.nodeId).sort()
            assert.deepStrictEqual(completed, ["a", "b", "c", "d", "out"], `run ${runId}`)
            // What the follower saw is what the store holds.
            assert.deepStrictEqual(yield* runStore.events(runId), events)
            // Every injected failure fired, in every run.
            for (const step of plan) assert.strictEqual(fired.get(`${runId}/${step.type}/${step.nodeId}/${step.fault}`), step.times)
          }
          // One model call per run: the agent whose checkpoint landed was not run again.
          assert.strictEqual(model.requests.length, runs)
        }).pipe(Effect.provide(api))
      }).pipe(Effect.scoped),
    60_000
  )
})

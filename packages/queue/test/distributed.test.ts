/**
 * A deployment is only a choice of layers: the same engine runs as an api side
 * (`layerEngine`, enqueue only) and separate workers (`layerWorker`, each with
 * its own BullMQ consumers, NATS connection and Postgres pool) that meet only
 * through Postgres, Redis and NATS on loopback, composed as `relavium server`
 * composes them (apps/cli/src/runtime/), in this one process. Every run must complete with a
 * gap-free log and no node completed twice, also when a worker goes away
 * mid-flight and the other takes its jobs over.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { afterAll } from "vitest"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Redacted, Scope, Stream } from "effect"
import { Redis } from "ioredis"
import type { RunEvent as RE } from "@relavium/domain"
import { WorkflowEngine } from "@relavium/core"
import { RunStore, WorkflowStore } from "@relavium/ports"
import * as Cloud from "../../../apps/cli/src/runtime/Cloud.js"
import { checkLog, compile, flatPricing, ofType, scriptedModel } from "../../core/test/harness.js"

const pgServer = "postgres://postgres@127.0.0.1:5432"
const redisUrl = "redis://127.0.0.1:6379"
const natsUrl = "nats://127.0.0.1:4222"
const filePrefix = `relavium-dist-${crypto.randomUUID()}`

const onAdmin = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(`${pgServer}/test`), connectTimeout: Duration.seconds(5) }), f)).pipe(
    Effect.provide(Reactivity.layer)
  )

/**
 * A database of its own for one test, dropped with the test's scope: migrated by the operator role
 * (`postgres`, as `relavium db migrate` does), and used by every process as the application role
 * `relavium_app` (its URL is what this returns), under row-level security.
 */
const freshDatabase = Effect.acquireRelease(
  Effect.gen(function* () {
    const name = `relavium_dist_${crypto.randomUUID().replaceAll("-", "")}`
    yield* onAdmin((sql) => sql.unsafe(`CREATE DATABASE ${name}`))
    yield* Cloud.migrate({ databaseUrl: `${pgServer}/${name}` })
    return name
  }),
  (name) => onAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(Effect.orDie)
).pipe(
  Effect.map((name) => `postgres://relavium_app@127.0.0.1:5432/${name}`),
  Effect.orDie
)

afterAll(async () => {
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  let cursor = "0"
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${filePrefix}*`, "COUNT", 1000)
    cursor = next
    if (keys.length > 0) await client.del(...keys)
  } while (cursor !== "0")
  client.disconnect()
})

interface Deployment {
  readonly database: string
  readonly prefix: string
  readonly subjectPrefix: string
  readonly hub?: "nats" | "redis"
}

/** What every process of the deployment connects to (the composition `relavium server` uses), tuned for tests. */
const cloud = (d: Deployment): Cloud.Deployment => ({
  databaseUrl: d.database,
  redisUrl,
  natsUrl,
  queuePrefix: d.prefix,
  subjectPrefix: d.subjectPrefix,
  hub: d.hub,
  maxConnections: 8,
  queue: {
    concurrency: { orchestrator: 8, node: 32, system: 2 },
    lockDuration: "1 second",
    stalledInterval: "500 millis",
    closeTimeout: "200 millis"
  }
})

const apiProcess = (d: Deployment) => Cloud.apiEngine(cloud(d))

const workerProcess = (d: Deployment) =>
  Cloud.workerOn(Cloud.infrastructure(cloud(d), "worker"), Layer.mergeAll(scriptedModel([]).layer, flatPricing, Cloud.noTools))

/** Builds a worker "process" in a scope of its own, closed to make it go away. */
const startWorker = (d: Deployment) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    yield* Layer.buildWithScope(workerProcess(d), scope)
    return scope
  })

const wf = (body: string) => `schema_version: '1.0'\nworkflow:\n${body.replace(/^/gm, "  ")}\n`

const busy = (value: string) => `'(() => { let x = 0; for (let i = 0; i < 200000; i++) x += i % 7; return ${value} })()'`

const workflows = {
  linear: wf(`id: linear
inputs:
  - { name: n, type: number, default: 2 }
nodes:
  - { id: start, type: input }
  - { id: double, type: transform, transform: 'inputs.n * 2' }
  - { id: plus-one, type: transform, transform: 'run.outputs["double"] + 1' }
  - { id: out, type: output }
edges:
  - { from: start, to: double }
  - { from: double, to: plus-one }
  - { from: plus-one, to: out }`),
  parallel: wf(`id: fan-out
nodes:
  - { id: start, type: input }
  - { id: split, type: parallel, parallel_of: [a, b, c, d] }
  - { id: a, type: transform, transform: '"a"' }
  - { id: b, type: transform, transform: '"b"' }
  - { id: c, type: transform, transform: '"c"' }
  - { id: d, type: transform, transform: '"d"' }
  - { id: gather, type: merge, merge_strategy: concat }
  - { id: out, type: output }
edges:
  - { from: start, to: split }
  - { from: a, to: gather }
  - { from: b, to: gather }
  - { from: c, to: gather }
  - { from: d, to: gather }
  - { from: gather, to: out }`),
  gated: wf(`id: gated
nodes:
  - { id: plan, type: transform, transform: '"plan"' }
  - { id: approve, type: human_gate, gate_type: approval }
  - { id: ship, type: transform, transform: 'run.outputs["approve"]' }
  - { id: out, type: output }
edges:
  - { from: plan, to: approve }
  - { from: approve, to: ship }
  - { from: ship, to: out }`),
  slow: wf(`id: slow-chain
nodes:
  - { id: start, type: input }
  - { id: split, type: parallel, parallel_of: [left, right] }
  - { id: left, type: transform, transform: ${busy('"L"')} }
  - { id: right, type: transform, transform: ${busy('"R"')} }
  - { id: both, type: merge, merge_strategy: concat }
  - { id: step-1, type: transform, transform: ${busy('run.outputs["both"].join("") + "1"')} }
  - { id: step-2, type: transform, transform: ${busy('run.outputs["step-1"] + "2"')} }
  - { id: step-3, type: transform, transform: ${busy('run.outputs["step-2"] + "3"')} }
  - { id: out, type: output }
edges:
  - { from: start, to: split }
  - { from: left, to: both }
  - { from: right, to: both }
  - { from: both, to: step-1 }
  - { from: step-1, to: step-2 }
  - { from: step-2, to: step-3 }
  - { from: step-3, to: out }`)
}

type Kind = keyof typeof workflows

const expectedOutputs: Record<Kind, unknown> = {
  linear: { out: 5 },
  parallel: { out: ["a", "b", "c", "d"] },
  gated: { out: { decision: "approved" } },
  slow: { out: "LR123" }
}

const store = (kind: Kind) =>
  Effect.flatMap(WorkflowStore, (workflows_) =>
    workflows_.put({ name: compile(workflows[kind]).spec.id, source: workflows[kind], file: `${kind}.relavium.yaml` })
  ).pipe(Effect.map((stored) => stored.workflowId))

/** Starts one run of `kind` through the api side, approves its gate if it has one, and follows it to the end. */
const runToEnd = (workflowId: string, kind: Kind) =>
  Effect.gen(function* () {
    const engine = yield* WorkflowEngine
    const handle = yield* engine.start(workflowId, {})
    if (kind === "gated") {
      const upToPause = yield* engine.events(handle.runId).pipe(
        Stream.takeUntil((e) => e.type === "run:paused"),
        Stream.runCollect
      )
      const paused = ofType([...upToPause], "human_gate:paused")[0]!
      yield* engine.resume(handle.runId, paused.gateId, { decision: "approved", decidedBy: "tester" })
    }
    const events = [...(yield* Stream.runCollect(engine.events(handle.runId)))]
    return { runId: handle.runId, kind, events }
  })

/** Every run completed with its outputs, a gap-free log (streamed and stored alike), and no node completed twice. */
const checkRuns = (runs: ReadonlyArray<{ runId: string; kind: Kind; events: ReadonlyArray<RE.RunEvent> }>) =>
  Effect.gen(function* () {
    const runStore = yield* RunStore
    for (const { events, kind, runId } of runs) {
      checkLog(events)
      const done = events[events.length - 1]!
      assert.strictEqual(done.type, "run:completed", `run ${runId} (${kind}) ended with ${done.type}`)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, expectedOutputs[kind])
      const completed = ofType(events, "node:completed").map((e) => e.nodeId)
      assert.strictEqual(new Set(completed).size, completed.length, `a node of run ${runId} completed twice: ${completed}`)
      assert.deepStrictEqual(yield* runStore.events(runId), events)
    }
  })

const deployment = Effect.map(freshDatabase, (database): Deployment => {
  const id = crypto.randomUUID().replaceAll("-", "")
  return { database, prefix: `${filePrefix}:${id}`, subjectPrefix: `relavium-test.${id}` }
})

describe("distributed deployment: api + workers over Postgres, Redis and NATS", () => {
  const batch = (workers: number, hub: "nats" | "redis" = "nats") =>
    Effect.gen(function* () {
      const d = { ...(yield* deployment), hub }
      // The api first (it only verifies the schema, as relavium_app), then the workers.
      const api = yield* Layer.build(apiProcess(d))
      yield* Effect.forEach(Array.from({ length: workers }), () => startWorker(d).pipe(Effect.flatMap((scope) => Effect.addFinalizer(() => Scope.close(scope, Exit.void)))), { discard: true })
      return yield* Effect.gen(function* () {
        const ids = {
          linear: yield* store("linear"),
          parallel: yield* store("parallel"),
          gated: yield* store("gated")
        }
        const kinds: Array<Exclude<Kind, "slow">> = []
        for (let i = 0; i < 30; i++) kinds.push((["linear", "parallel", "gated"] as const)[i % 3]!)
        const started = Date.now()
        const runs = yield* Effect.forEach(kinds, (kind) => runToEnd(ids[kind], kind), { concurrency: "unbounded" })
        const elapsed = (Date.now() - started) / 1000
        yield* checkRuns(runs)
        const steps = runs.reduce((n, r) => n + ofType(r.events, "node:completed").length, 0)
        console.log(`distributed, ${workers} worker(s), ${hub} hub: ${runs.length} runs, ${steps} node steps in ${elapsed.toFixed(2)} s = ${(steps / elapsed).toFixed(0)} steps/s`)
      }).pipe(Effect.provide(api))
    }).pipe(Effect.scoped)

  // One worker first: it also pays this process's warm-up (module JIT, QuickJS), which would
  // otherwise count against the two-worker figure.
  it.live("runs 30 workflows concurrently on one api and one worker", () => batch(1), 60_000)

  it.live("runs 30 workflows (linear, fan-out + merge, gates approved) concurrently on one api and two workers", () => batch(2), 60_000)

  // The same, with live run events on Redis Streams (RELAVIUM_HUB=redis) instead of NATS.
  it.live("runs 30 workflows concurrently on one api and one worker, live events on Redis Streams", () => batch(1, "redis"), 60_000)

  it.live("a worker that goes away mid-flight leaves its work to the other worker", () =>
    Effect.gen(function* () {
      const d = yield* deployment
      const api = yield* Layer.build(apiProcess(d))
      const doomed = yield* startWorker(d)
      const survivor = yield* startWorker(d)
      yield* Effect.addFinalizer(() => Scope.close(survivor, Exit.void))
      yield* Effect.gen(function* () {
        const workflowId = yield* store("slow")
        const engine = yield* WorkflowEngine
        const runStore = yield* RunStore
        const handles = yield* Effect.forEach(Array.from({ length: 12 }), () => engine.start(workflowId, {}), { concurrency: "unbounded" })
        // Wait until the runs are under way, then take one worker away.
        const completedSoFar = Effect.map(
          Effect.forEach(handles, (h) => runStore.events(h.runId)),
          (logs) => logs.reduce((n, log) => n + ofType(log, "node:completed").length, 0)
        )
        const deadline = Date.now() + 20_000
        while ((yield* completedSoFar) < 20 && Date.now() < deadline) yield* Effect.sleep("5 millis")
        yield* Scope.close(doomed, Exit.void)
        const runs = yield* Effect.forEach(
          handles,
          (h) => Effect.map(Stream.runCollect(engine.events(h.runId)), (events) => ({ runId: h.runId, kind: "slow" as const, events: [...events] })),
          { concurrency: "unbounded" }
        )
        yield* checkRuns(runs)
      }).pipe(Effect.provide(api))
    }).pipe(Effect.scoped), 60_000)
})

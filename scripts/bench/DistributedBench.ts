/**
 * Benchmark 4: distributed throughput on BullMQ. Bundled apart (distributed.mjs) by run.mjs.
 *
 * As `relavium server api|worker` compose it (apps/cli/src/runtime/, shared with
 * packages/queue/test/distributed.test.ts): an api side (`layerEngine`, enqueue only) and 1 or
 * 2 workers (`layerWorker`), each with its own Postgres pool (on a fresh database), BullMQ
 * connection (under a unique Redis prefix) and NATS connection, all in this process and
 * meeting only through Postgres, Redis and NATS on loopback. A batch is R concurrent runs
 * of a chain of K no-op transforms started through the api side and followed to their
 * terminal events; steps/s = node:completed events / the batch's wall time. Each RunQueue is
 * wrapped to stamp when an ExecuteNode job is first offered and when a worker's handler starts
 * it: the dispatch latency. The database is dropped and the Redis keys deleted afterwards.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Exit, Layer, Redacted, Scope, Stream } from "effect"
import { Redis } from "ioredis"
import { WorkflowEngine } from "@relavium/core"
import { RunQueue, WorkflowStore } from "@relavium/ports"
import * as Cloud from "../../apps/cli/src/runtime/Cloud.js"
import { noModel, noPricing } from "./EngineBench.js"
import { type BenchConfig, type Measurement, measured, type Outcome, settle } from "./Harness.js"

const pgServer = () => process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432"
const redisUrl = () => process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379"
const natsUrl = () => process.env.BENCH_NATS_URL ?? "nats://127.0.0.1:4222"

const onPgAdmin = <A>(f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(
    Effect.flatMap(PgClient.make({ url: Redacted.make(`${pgServer()}/postgres`), connectTimeout: Duration.seconds(3) }), f)
  ).pipe(Effect.provide(Reactivity.layer))

/** ExecuteNode job id → performance.now() of its first offer (BullMQ dedupes re-offers). */
const offered = new Map<string, number>()
let dispatch: Array<number> = []

const timedQueue = (inner: Layer.Layer<RunQueue, unknown>) =>
  Layer.effect(
    RunQueue,
    Effect.map(RunQueue, (queue) =>
      RunQueue.of({
        offer: (jobs, options) =>
          Effect.suspend(() => {
            const t = performance.now()
            for (const job of jobs) {
              if (job._tag !== "ExecuteNode") continue
              const id = `${job.runId}:${job.nodeId}:${job.attempt}`
              if (!offered.has(id)) offered.set(id, t + (options?.delayMs ?? 0))
            }
            return queue.offer(jobs, options)
          }),
        consume: (handler) =>
          queue.consume((job) =>
            Effect.suspend(() => {
              if (job._tag === "ExecuteNode") {
                const id = `${job.runId}:${job.nodeId}:${job.attempt}`
                const t = offered.get(id)
                if (t !== undefined) {
                  dispatch.push(performance.now() - t)
                  offered.delete(id)
                }
              }
              return handler(job)
            })
          )
      })
    )
  ).pipe(Layer.provide(inner))

interface Deployment {
  readonly database: string
  readonly prefix: string
  readonly subjectPrefix: string
}

/** The deployment as `relavium server` composes it (apps/cli/src/runtime/), every "process" with its own connections. */
const cloud = (d: Deployment): Cloud.Deployment => ({
  databaseUrl: d.database,
  redisUrl: redisUrl(),
  natsUrl: natsUrl(),
  queuePrefix: d.prefix,
  subjectPrefix: d.subjectPrefix,
  maxConnections: 8,
  queue: { closeTimeout: "1 second" }
})

/** Postgres, NATS, and BullMQ wrapped to time dispatch. */
const services = (d: Deployment, role: Cloud.Role) =>
  Layer.mergeAll(Cloud.store(cloud(d), role), timedQueue(Cloud.queue(cloud(d))), Cloud.hub(cloud(d), role))

const apiProcess = (d: Deployment) => Cloud.apiEngineOn(services(d, "api"))

const workerProcess = (d: Deployment) => Cloud.workerOn(services(d, "worker"), Layer.mergeAll(noModel, noPricing, Cloud.noTools))

const chainYaml = (k: number): string => {
  const lines = [`schema_version: '1.0'\nworkflow:\n  id: bench-dist-chain-${k}\n  nodes:\n`]
  for (let i = 0; i < k; i++) lines.push(`    - { id: n${i}, type: transform, transform: '1' }\n`)
  lines.push("  edges:\n")
  for (let i = 1; i < k; i++) lines.push(`    - { from: n${i - 1}, to: n${i} }\n`)
  return lines.join("")
}

/** R runs of the chain at once; resolves with steps/s of the batch and this process's CPU time per step. */
const batch = (workflowId: string, runs: number) =>
  Effect.gen(function* () {
    const engine = yield* WorkflowEngine
    const started = performance.now()
    const cpu = process.cpuUsage()
    const counts = yield* Effect.forEach(
      Array.from({ length: runs }),
      () =>
        Effect.gen(function* () {
          const handle = yield* engine.start(workflowId, {})
          const events = [...(yield* Stream.runCollect(engine.events(handle.runId)))]
          const last = events[events.length - 1]
          if (last?.type !== "run:completed") return yield* Effect.dieMessage(`run ${handle.runId} ended with ${last?.type}`)
          return events.filter((e) => e.type === "node:completed").length
        }),
      { concurrency: "unbounded" }
    )
    const steps = counts.reduce((a, b) => a + b, 0)
    const used = process.cpuUsage(cpu)
    return { rate: steps / ((performance.now() - started) / 1000), cpuMsPerStep: (used.user + used.system) / 1000 / steps }
  })

const positive = (name: string, raw: string): number => {
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: ${JSON.stringify(raw)} is not a positive integer`)
  return n
}

/** A positive integer from the environment, else `fallback`. */
const envCount = (name: string, fallback: number): number => {
  const raw = process.env[name]?.trim()
  return raw === undefined || raw === "" ? fallback : positive(name, raw)
}

const deleteRedisKeys = async (prefix: string) => {
  const client = new Redis(redisUrl(), { maxRetriesPerRequest: 1, lazyConnect: true })
  try {
    await client.connect()
    let cursor = "0"
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) await client.del(...keys)
    } while (cursor !== "0")
  } finally {
    client.disconnect()
  }
}

const measureWorkers = async (workers: number, config: BenchConfig, runPrefix: string) => {
  const id = crypto.randomUUID().replaceAll("-", "")
  const name = `relavium_bench_dist_${id}`
  await Effect.runPromise(onPgAdmin((sql) => sql.unsafe(`CREATE DATABASE ${name}`)))
  const d: Deployment = { database: `${pgServer()}/${name}`, prefix: `${runPrefix}:${id}`, subjectPrefix: `relavium-bench.${id}` }
  const chain = envCount("BENCH_DIST_CHAIN", config.quick ? 5 : 50)
  const runs = envCount("BENCH_DIST_RUNS", config.quick ? 4 : 40)
  const repetitions = Math.max(1, Math.round((config.quick ? 1 : 3) * (config.quick ? 1 : config.repeat)))
  try {
    return await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          // The api first: it migrates the fresh database before any worker opens it.
          const api = yield* Layer.build(apiProcess(d))
          for (let i = 0; i < workers; i++) {
            const scope = yield* Scope.make()
            yield* Layer.buildWithScope(workerProcess(d), scope)
            yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
          }
          return yield* Effect.gen(function* () {
            const workflowId = (yield* Effect.flatMap(WorkflowStore, (w) => w.put({ name: `bench-dist-chain-${chain}`, source: chainYaml(chain), file: "chain.relavium.yaml" }))).workflowId
            // Warm-up: JIT, connections, QuickJS, BullMQ scripts loaded.
            yield* batch(workflowId, Math.max(2, runs / 4))
            const rates: Array<number> = []
            const cpuMs: Array<number> = []
            dispatch = []
            offered.clear()
            for (let i = 0; i < repetitions; i++) {
              settle()
              const measured = yield* batch(workflowId, runs)
              rates.push(measured.rate)
              cpuMs.push(measured.cpuMsPerStep)
            }
            return { rates, cpuMs, dispatch: dispatch.map((ms) => ms), chain, runs, repetitions }
          }).pipe(Effect.provide(api))
        })
      )
    )
  } finally {
    offered.clear()
    await Effect.runPromise(onPgAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(Effect.ignore))
  }
}

export const distributedThroughput = async (config: BenchConfig): Promise<Outcome> => {
  const runPrefix = `relavium-bench-${crypto.randomUUID()}`
  const out: Array<Measurement> = []
  const notes: Array<string> = []
  try {
    const counts = (process.env.BENCH_DIST_WORKERS ?? "1,2").split(",").map((s) => positive("BENCH_DIST_WORKERS", s.trim()))
    for (const workers of counts) {
      const r = await measureWorkers(workers, config, runPrefix)
      const what = `${r.runs} concurrent runs × ${r.chain}-node no-op chain`
      out.push({
        id: `distributed.bullmq.${workers}w.steps-per-second`,
        label: `BullMQ, ${workers} worker${workers > 1 ? "s" : ""}: no-op steps/s`,
        unit: "steps/s",
        samples: r.rates,
        sampleIs: `node:completed events / wall time of one batch (${what}), api + workers on Postgres, BullMQ, NATS`,
        warmups: 1
      })
      out.push({
        id: `distributed.bullmq.${workers}w.cpu-per-step`,
        label: `BullMQ, ${workers} worker${workers > 1 ? "s" : ""}: bench process CPU per step`,
        unit: "ms",
        samples: r.cpuMs,
        sampleIs: `user + system CPU time of the bench process (api + workers) over one batch / its node:completed events; Postgres, Redis and NATS not included`,
        warmups: 1
      })
      out.push({
        id: `distributed.bullmq.${workers}w.dispatch`,
        label: `BullMQ, ${workers} worker${workers > 1 ? "s" : ""}: dispatch offer → handler`,
        unit: "ms",
        samples: r.dispatch,
        sampleIs: "RunQueue.offer of an ExecuteNode job → a worker's handler starts it",
        warmups: 1
      })
    }
  } finally {
    await deleteRedisKeys(runPrefix).catch((e: unknown) => notes.push(`could not delete the Redis keys under ${runPrefix}: ${String(e)}`))
  }
  return measured(out, notes)
}

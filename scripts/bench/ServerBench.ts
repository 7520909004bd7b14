/**
 * Benchmark 3: event fan-out from the engine to an SSE client over HTTPS, with the memory hub,
 * the NATS hub (NATS on 127.0.0.1:4222) and the Redis Streams hub (Redis on 127.0.0.1:6379, keys
 * under a prefix of their own, deleted afterwards). Bundled apart (server.mjs) by run.mjs.
 *
 * The monolith's layers are composed in this process, as `relavium monolith` composes them
 * (local engine on SQLite in a temporary directory, `Server.layer` on `Monolith.layerHttps`
 * with a bearer token), with the `UpdateHub` swapped: `UpdateHub.layerMemory` or
 * `NatsUpdateHub.layerNats` or `RedisStreamsUpdateHub.layerRedisStreams`. The RunStore is wrapped to stamp the monotonic time each
 * `append` commits; the SSE client (node:https, same process, so the same clock) stamps the
 * time each event's bytes arrive. The workflow is an approval gate followed by a chain of
 * no-op transforms: the client opens `GET /runs/:id/events` while the run waits at the gate,
 * approves it, and every event committed after the stream opened is a latency sample
 * (commit → SSE receipt). Events/s is the run's live events over the time from the approval
 * request to the terminal event's receipt. Client and server share one event loop, as a client on a
 * loaded 2-core machine would share the CPU.
 */
import { NodeContext } from "@effect/platform-node"
import { Context, Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { Redis } from "ioredis"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { layerLocal, QuickJsSandbox } from "@relavium/core"
import { DaemonRouter, KeyStore, layerTenancyMemory, layerTriggersMemory, RunQueue, RunStore, UpdateHub, WorkflowStore } from "@relavium/ports"
import { NatsUpdateHub, RedisStreamsUpdateHub } from "@relavium/hub"
import { Auth, Monolith, Server } from "@relavium/server"
import { Database, Store } from "@relavium/store"
import { noModel, noPricing } from "./EngineBench.js"
import { type ApiClient, apiClient } from "./HttpsClient.js"
import { type BenchConfig, type Measurement, measured, type Outcome, settle } from "./Harness.js"
import { notificationStores } from "../../test/support/notify.js"

const natsUrl = () => process.env.BENCH_NATS_URL ?? "nats://127.0.0.1:4222"
const redisUrl = () => process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379"

/** Deletes the keys the Redis hub made under `prefix` (the runs' streams, its wake-up stream). */
const deleteRedisKeys = async (prefix: string) => {
  const redis = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
  redis.on("error", () => {})
  try {
    await redis.connect()
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000)
      if (keys.length > 0) await redis.del(...keys)
      cursor = next
    } while (cursor !== "0")
    await redis.quit()
  } catch {
    redis.disconnect()
  }
}

/** `${runId}:${sequenceNumber}` → performance.now() when its append returned. */
const commits = new Map<string, number>()

/** The stores of `inner`, with RunStore.append stamping commit times. */
const timedStores = (inner: Layer.Layer<RunStore | WorkflowStore, unknown>) =>
  Layer.effectContext(
    Effect.gen(function* () {
      const runs = yield* RunStore
      const workflows = yield* WorkflowStore
      const append: RunStore["Type"]["append"] = (runId, drafts, options) =>
        Effect.tap(runs.append(runId, drafts, options), (events) =>
          Effect.sync(() => {
            const t = performance.now()
            for (const e of events) commits.set(`${runId}:${e.sequenceNumber}`, t)
          })
        )
      return Context.make(RunStore, RunStore.of({ ...runs, append })).pipe(Context.add(WorkflowStore, workflows))
    })
  ).pipe(Layer.provide(inner))

const gatedChainYaml = (n: number): string => {
  const lines = ["schema_version: '1.0'\nworkflow:\n  id: bench-sse-chain\n  nodes:\n", "    - { id: gate, type: human_gate, gate_type: approval }\n"]
  for (let i = 0; i < n; i++) lines.push(`    - { id: n${i}, type: transform, transform: '1' }\n`)
  lines.push("  edges:\n    - { from: gate, to: n0 }\n")
  for (let i = 1; i < n; i++) lines.push(`    - { from: n${i - 1}, to: n${i} }\n`)
  return lines.join("")
}

const monolithInProcess = (dataDir: string, hub: Layer.Layer<UpdateHub, unknown>, tls: Monolith.TlsMaterial, token: string) => {
  const engine = layerLocal({ executionMode: "local" }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        hub,
        RunQueue.layerMemory(),
        QuickJsSandbox.layerQuickJs,
        noModel,
        noPricing,
        DaemonRouter.layerInProcess(),
        KeyStore.layerMemory()
      )
    ),
    Layer.provideMerge(timedStores(Store.layerSqlite({ filename: join(dataDir, "relavium.db") }))),
    Layer.provideMerge(NodeContext.layer)
  )
  return Server.layer({}).pipe(
    Layer.provide(Auth.layerSingleUser(Redacted.make(token))),
    Layer.provide(layerTenancyMemory),
    Layer.provide(layerTriggersMemory),
    Layer.provide(notificationStores().pipe(Layer.provide(Database.layerSqlite({ filename: join(dataDir, "relavium.db") })))),
    Layer.provideMerge(Monolith.layerHttps({ host: "127.0.0.1", port: 0, tls })),
    Layer.provideMerge(engine)
  )
}

/** G approval gates in a row, one no-op transform after each: the client approves each gate as it sees it pause. */
const gateStepsYaml = (g: number): string => {
  const lines = ["schema_version: '1.0'\nworkflow:\n  id: bench-sse-gates\n  nodes:\n"]
  for (let i = 0; i < g; i++) lines.push(`    - { id: g${i}, type: human_gate, gate_type: approval }\n    - { id: t${i}, type: transform, transform: '1' }\n`)
  lines.push("  edges:\n")
  for (let i = 0; i < g; i++) {
    lines.push(`    - { from: g${i}, to: t${i} }\n`)
    if (i + 1 < g) lines.push(`    - { from: t${i}, to: g${i + 1} }\n`)
  }
  return lines.join("")
}

interface RunResult {
  readonly latency: ReadonlyArray<number>
  readonly eventsPerSecond: number
  readonly perRead: number
}

/** Starts a run of `workflowId`, follows it over SSE, approves every gate as it pauses; latency of the events committed after the stream opened. */
const followRun = async (client: ApiClient, workflowId: string): Promise<RunResult> => {
  const started = await client.call("POST", "/runs", { workflowId })
  if (started.status !== 201) throw new Error(`POST /runs answered ${started.status}: ${JSON.stringify(started.json)}`)
  const runId = started.json.runId as string
  let firstApproval: number | undefined
  const approvals: Array<Promise<void>> = []
  const follow = client.follow(runId, (e) => {
    if (e.type !== "human_gate:paused") return
    const gateId = (JSON.parse(e.data) as { gateId: string }).gateId
    firstApproval ??= performance.now()
    approvals.push(
      client.call("POST", `/runs/${runId}/gates/${encodeURIComponent(gateId)}/approve`, {}).then((r) => {
        if (r.status !== 200) throw new Error(`approve answered ${r.status}: ${JSON.stringify(r.json)}`)
      })
    )
  })
  const opened = await follow.opened
  const events = await follow.done
  await Promise.all(approvals)
  if (events.at(-1)?.type !== "run:completed") throw new Error(`run ${runId} ended with ${events.at(-1)?.type}`)
  const live = events.flatMap((e) => {
    const committed = commits.get(`${runId}:${e.id}`)
    return committed !== undefined && committed > opened ? [{ ...e, committed }] : []
  })
  for (const e of events) commits.delete(`${runId}:${e.id}`)
  return {
    latency: live.map((e) => (e.receivedAt - e.committed) * 1000),
    eventsPerSecond: live.length / ((events[events.length - 1]!.receivedAt - (firstApproval ?? opened)) / 1000),
    perRead: live.length / new Set(live.map((e) => e.receivedAt)).size
  }
}

interface HubResult {
  readonly saturated: Array<number>
  readonly paced: Array<number>
  readonly rates: Array<number>
  readonly perRead: Array<number>
}

const measureHub = async (hubName: string, hub: Layer.Layer<UpdateHub, unknown>, config: BenchConfig): Promise<HubResult> => {
  const dataDir = mkdtempSync(join(tmpdir(), `relavium-bench-sse-${hubName}-`))
  const token = crypto.randomUUID()
  const setup = ManagedRuntime.make(Layer.empty)
  const tls = await setup.runPromise(Monolith.ensureCertificate(dataDir, "127.0.0.1"))
  await setup.dispose()
  const runtime = ManagedRuntime.make(monolithInProcess(dataDir, hub, tls, token))
  try {
    const url = await runtime.runPromise(Monolith.serverUrl)
    const client = apiClient(url, token, tls.cert)
    try {
      const upload = async (yaml: string) => {
        const uploaded = await client.call("POST", "/workflows", { yaml, file: "sse.relavium.yaml" })
        if (uploaded.status !== 201) throw new Error(`POST /workflows answered ${uploaded.status}: ${JSON.stringify(uploaded.json)}`)
        return uploaded.json.workflowId as string
      }
      const chain = await upload(gatedChainYaml(config.quick ? 10 : 200))
      const gates = await upload(gateStepsYaml(config.quick ? 3 : 30))
      const warmups = config.quick ? 1 : 3
      const runs = Math.max(1, Math.round((config.quick ? 2 : 10) * (config.quick ? 1 : config.repeat)))
      const result: HubResult = { saturated: [], paced: [], rates: [], perRead: [] }
      for (let i = 0; i < warmups + runs; i++) {
        settle()
        const saturated = await followRun(client, chain)
        const paced = await followRun(client, gates)
        if (i < warmups) continue
        result.saturated.push(...saturated.latency)
        result.rates.push(saturated.eventsPerSecond)
        result.perRead.push(saturated.perRead)
        result.paced.push(...paced.latency)
      }
      return result
    } finally {
      client.close()
    }
  } finally {
    await runtime.dispose()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

export const sseFanout = async (config: BenchConfig): Promise<Outcome> => {
  const out: Array<Measurement> = []
  const notes: Array<string> = []
  const redisPrefix = `relavium-bench:${crypto.randomUUID()}`
  const hubs: ReadonlyArray<readonly [string, string, Layer.Layer<UpdateHub, unknown>]> = [
    ["memory", "memory hub", UpdateHub.layerMemory],
    ["nats", "NATS hub", NatsUpdateHub.layerNats({ servers: natsUrl(), subjectPrefix: `relavium-bench.${crypto.randomUUID().replaceAll("-", "")}` })],
    ["redis", "Redis Streams hub", RedisStreamsUpdateHub.layerRedisStreams({ url: redisUrl(), keyPrefix: redisPrefix })]
  ]
  const only = (process.env.BENCH_HUBS ?? "").split(",").filter((h) => h !== "")
  for (const [id, name, hub] of hubs) {
    if (only.length > 0 && !only.includes(id)) continue
    let result: HubResult
    try {
      result = await measureHub(id, hub, config)
    } catch (error) {
      const message = String((error as Error)?.message ?? error)
      if (id === "nats" && /cannot reach NATS/.test(message)) {
        notes.push(`NATS hub not measured: cannot reach ${natsUrl()} (bash scripts/services.sh starts it)`)
        continue
      }
      if (id === "redis" && /cannot reach Redis/.test(message)) {
        notes.push(`Redis Streams hub not measured: cannot reach ${RedisStreamsUpdateHub.redactUrl(redisUrl())} (bash scripts/services.sh starts it)`)
        continue
      }
      throw error
    } finally {
      if (id === "redis") await deleteRedisKeys(redisPrefix)
    }
    const warmups = config.quick ? 1 : 3
    out.push({
      id: `hub.${id}.sse-latency.paced`,
      label: `SSE fan-out, ${name}: commit → client, paced`,
      unit: "µs",
      samples: result.paced,
      sampleIs: "RunStore.append returned → the event's bytes reached the SSE client over HTTPS; a few events per gate approval (same process, same clock)",
      warmups
    })
    out.push({
      id: `hub.${id}.sse-latency.saturated`,
      label: `SSE fan-out, ${name}: commit → client, flat-out run`,
      unit: "µs",
      samples: result.saturated,
      sampleIs: "as paced, for every event of a no-op chain running flat out (so a backlog in the delivery shows)",
      warmups
    })
    out.push({
      id: `hub.${id}.events-per-second`,
      label: `SSE fan-out, ${name}: events/s of one run`,
      unit: "events/s",
      samples: result.rates,
      sampleIs: "one run's live events / time from the approval request to the terminal event at the client (gate, then a no-op chain, SQLite)",
      warmups
    })
    const perRead = result.perRead.reduce((a, b) => a + b, 0) / Math.max(1, result.perRead.length)
    notes.push(`${name}: ${perRead.toFixed(1)} events per network read at the client in the flat-out run`)
  }
  return measured(out, notes)
}

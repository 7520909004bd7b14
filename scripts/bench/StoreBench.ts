/**
 * Benchmarks on the durable stores (packages/store), bundled apart from the rest by run.mjs and
 * self-contained (only plain figures cross to the harness):
 *   (1) the per-node overhead of the chain with the SQLite-durable RunStore and WorkflowStore;
 *   (2) the commit cost of one RunStore.append of a node:started + node:completed pair, which is
 *       what a node's checkpoint is, on SQLite (a temporary file) and on Postgres (a fresh
 *       database on BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432, dropped afterwards).
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { RunEvent as RE } from "@relavium/domain"
import { RunStore } from "@relavium/ports"
import { Store } from "@relavium/store"
import { chainCases, runCase } from "./EngineBench.js"
import { type BenchConfig, type Measurement, measured, type Outcome, settle } from "./Harness.js"

const tempDir = () => mkdtempSync(join(tmpdir(), "relavium-bench-"))

export const sqliteChain = async (config: BenchConfig): Promise<Outcome> => {
  const out: Array<Measurement> = []
  // 10,000 durable nodes take a while; BENCH_SQLITE_CHAIN_SIZES overrides the sizes.
  const sizes = process.env.BENCH_SQLITE_CHAIN_SIZES?.split(",").map(Number) ?? config.chainSizes
  for (const c of chainCases({ ...config, chainSizes: sizes }, "engine.sqlite", "sqlite")) {
    const dir = tempDir()
    try {
      out.push(...(await runCase(Store.layerSqlite({ filename: join(dir, "bench.db") }), c, { intervals: true })))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return measured(out)
}

const nodePair = (runId: string, i: number): ReadonlyArray<RE.RunEventDraft> => {
  const timestamp = new Date().toISOString()
  return [
    { type: "node:started", runId, timestamp, nodeId: `n${i}`, nodeType: "transform", attemptNumber: 1 },
    {
      type: "node:completed",
      runId,
      timestamp,
      nodeId: `n${i}`,
      output: 1,
      tokensUsed: { input: 0, output: 0 },
      durationMs: 0,
      cumulativeCostMicrocents: 0,
      attemptNumber: 1
    }
  ]
}

/** Appends `warmups + runs` node pairs to one run and times each append. */
const appendCost = (label: string, id: string, layer: Layer.Layer<RunStore, unknown>, config: BenchConfig) =>
  Effect.gen(function* () {
    const store = yield* RunStore
    const runId = crypto.randomUUID()
    yield* store.create({ runId, workflowId: "bench", workflowName: "bench", createdAt: new Date().toISOString() })
    const warmups = config.quick ? 5 : 100
    const runs = config.quick ? 20 : Math.max(10, Math.round(1000 * config.repeat))
    const samples: Array<number> = []
    for (let i = 0; i < warmups + runs; i++) {
      const drafts = nodePair(runId, i)
      const started = performance.now()
      yield* store.append(runId, drafts)
      if (i >= warmups) samples.push((performance.now() - started) * 1000)
    }
    return {
      id,
      label,
      unit: "µs",
      samples,
      sampleIs: "one RunStore.append of a node:started + node:completed pair (one transaction)",
      warmups
    } satisfies Measurement
  }).pipe(Effect.provide(layer))

const pgServer = () => process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432"

const onPgAdmin = <A>(f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(
    Effect.flatMap(PgClient.make({ url: Redacted.make(`${pgServer()}/postgres`), connectTimeout: Duration.seconds(3) }), f)
  ).pipe(Effect.provide(Reactivity.layer))

export const commitCost = async (config: BenchConfig): Promise<Outcome> => {
  const out: Array<Measurement> = []
  const dir = tempDir()
  try {
    settle()
    const sqlite = ManagedRuntime.make(Layer.empty)
    out.push(await sqlite.runPromise(appendCost("SQLite commit (node pair)", "store.sqlite.commit", Store.layerSqlite({ filename: join(dir, "commit.db") }), config)))
    await sqlite.dispose()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const name = `relavium_bench_${crypto.randomUUID().replaceAll("-", "")}`
  const created = await Effect.runPromise(onPgAdmin((sql) => sql.unsafe(`CREATE DATABASE ${name}`)).pipe(Effect.either))
  if (created._tag === "Left") {
    return measured(out, [`Postgres commit not measured: cannot reach ${pgServer()} (bash scripts/services.sh starts it)`])
  }
  try {
    settle()
    const pg = ManagedRuntime.make(Layer.empty)
    out.push(await pg.runPromise(appendCost("Postgres commit (node pair)", "store.pg.commit", Store.layerPg({ url: `${pgServer()}/${name}` }), config)))
    await pg.dispose()
  } finally {
    await Effect.runPromise(onPgAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(Effect.ignore))
  }
  return measured(out)
}

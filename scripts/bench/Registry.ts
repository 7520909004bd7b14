/**
 * The registry of benchmarks, numbered as in issue 6. A benchmark whose mode is
 * not built yet stays here and reports itself skipped, with what it waits for.
 *
 * Where later work plugs in:
 *   (1) durable: the SQLite-durable chain reuses EngineBench.chainCases with
 *       SQLite stores instead of `memoryStores` (StoreBench.ts).
 *   (2) commit cost on SQLite and Postgres: StoreBench.ts.
 *   (3) SSE fan-out latency, memory hub and NATS hub: add with the daemon's HTTP/SSE mode.
 *   (4) distributed throughput on BullMQ, 1 and 2 workers: add with the BullMQ RunQueue.
 *   (6) monolith memory idle and after 1,000 runs: add with the monolith.
 */
import { cliColdStart } from "./CliBench.js"
import { chainCases, fanoutCase, memoryStores, runCase } from "./EngineBench.js"
import { type Benchmark, type Measurement, measured, skipped } from "./Harness.js"
import { loadStoreBench } from "./StoreBenchLoader.js"

const notYet = (number: number, id: string, title: string, waitsFor: string): Benchmark => ({
  id,
  number,
  title,
  run: async () => skipped(`waits for ${waitsFor}`)
})

export const benchmarks: ReadonlyArray<Benchmark> = [
  {
    id: "engine.memory.chain",
    number: 1,
    title: "engine overhead per no-op node, sequential chain, local mode, memory stores",
    run: async (config) => {
      const out: Array<Measurement> = []
      for (const c of chainCases(config, "engine.memory", "memory")) out.push(...(await runCase(memoryStores, c, { intervals: true })))
      return measured(out)
    }
  },
  {
    id: "engine.memory.fanout",
    number: 1,
    title: "engine overhead per no-op node, one parallel node fanning out to N members and a merge, memory stores",
    run: async (config) => measured(await runCase(memoryStores, fanoutCase(config, "engine.memory", "memory"), { intervals: false }))
  },
  {
    id: "engine.sqlite.chain",
    number: 1,
    title: "engine overhead per no-op node, sequential chain, local mode, SQLite-durable stores",
    run: async (config) => {
      const store = await loadStoreBench(config)
      return store._tag === "Missing" ? skipped(store.reason) : store.bench.sqliteChain(config)
    }
  },
  {
    id: "store.commit",
    number: 2,
    title: "checkpoint + event commit cost: one RunStore.append of a node:started + node:completed pair",
    run: async (config) => {
      const store = await loadStoreBench(config)
      return store._tag === "Missing" ? skipped(store.reason) : store.bench.commitCost(config)
    }
  },
  notYet(3, "hub.fanout", "event fan-out latency engine → SSE client over HTTP, memory and NATS hubs; events/s for one run", "the daemon's HTTP/SSE mode and the NATS hub"),
  notYet(4, "distributed.throughput", "no-op steps/s and p99 dispatch latency, 1 and 2 workers on BullMQ", "the BullMQ RunQueue and workers"),
  { id: "cli.cold-start", number: 5, title: "CLI cold start: `relavium run` of a 3-node workflow", run: cliColdStart },
  notYet(6, "monolith.memory", "resident memory of the monolith idle and after 1,000 runs", "the monolith (relavium serve)")
]

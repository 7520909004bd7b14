/**
 * The registry of benchmarks, numbered as in issue 6. Benchmarks on packages beyond the engine
 * run from their own bundles (StoreBenchLoader.ts) and report themselves skipped, with what
 * they wait for, when their package is missing or does not build:
 *   (1) durable chain and (2) commit cost: StoreBench.ts (store.mjs);
 *   (3) SSE fan-out, memory, NATS and Redis Streams hubs: ServerBench.ts (server.mjs);
 *   (4) distributed throughput on BullMQ: DistributedBench.ts (distributed.mjs);
 *   (5) CLI cold start and (6) monolith memory start the built CLI as a child process;
 *   (7) chat turn overhead on SQLite: ChatBench.ts (chat.mjs);
 *   (8) loading a workflow file (YAML → compiled plan): ParseBench.ts;
 *   (9) side by side with another CLI (BENCH_VERSUS): SideBySide.ts;
 *   (10) tracing off vs on, on the durable chain: TracingBench.ts (tracing.mjs).
 */
// (11) the inference gateway's added latency: GatewayBench.ts (gateway.mjs).
import { loadGatewayBench } from "./StoreBenchLoader.js"
import { cliColdStart } from "./CliBench.js"
import { chainCases, expressionChainCase, fanoutCase, memoryStores, runCase } from "./EngineBench.js"
import { type Benchmark, type Measurement, measured, skipped } from "./Harness.js"
import { monolithMemory } from "./MemoryBench.js"
import { workflowParse } from "./ParseBench.js"
import { sideBySide } from "./SideBySide.js"
import { loadChatBench, loadDistributedBench, loadServerBench, loadStoreBench, loadTracingBench } from "./StoreBenchLoader.js"

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
    id: "engine.memory.expressions",
    number: 1,
    title: "expression transforms evaluated in the QuickJS worker pool (off the main thread), per node, memory stores",
    run: async (config) => measured(await runCase(memoryStores, expressionChainCase(config), { intervals: false }))
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
  {
    id: "hub.fanout",
    number: 3,
    title: "event fan-out latency engine → SSE client over HTTPS, memory, NATS and Redis Streams hubs; events/s for one run",
    run: async (config) => {
      const server = await loadServerBench(config)
      return server._tag === "Missing" ? skipped(server.reason) : server.bench.sseFanout(config)
    }
  },
  {
    id: "distributed.throughput",
    number: 4,
    title: "no-op steps/s and dispatch latency (offer → handler start), 1 and 2 workers on BullMQ",
    run: async (config) => {
      const distributed = await loadDistributedBench(config)
      return distributed._tag === "Missing" ? skipped(distributed.reason) : distributed.bench.distributedThroughput(config)
    }
  },
  { id: "cli.cold-start", number: 5, title: "CLI cold start: `relavium run` of a 3-node workflow", run: cliColdStart },
  { id: "monolith.memory", number: 6, title: "resident memory (VmRSS) of `relavium monolith` idle and after 1,000 runs", run: monolithMemory },
  {
    id: "chat.turn",
    number: 7,
    title: "chat turn overhead: one turn of N streamed chunks, stored and published, SQLite-durable",
    run: async (config) => {
      const chat = await loadChatBench(config)
      return chat._tag === "Missing" ? skipped(chat.reason) : chat.bench.chatTurn(config)
    }
  },
  {
    id: "workflow.parse",
    number: 8,
    title: "loading a workflow: YAML text → decoded, compiled plan, a 10,000-node chain and a 1,000-way fan-out",
    run: workflowParse
  },
  {
    id: "tracing.sqlite.chain",
    number: 10,
    title: "tracing off vs on (OpenTelemetry SDK exporting OTLP/HTTP to a local receiver), per node of a SQLite-durable chain",
    run: async (config) => {
      const tracing = await loadTracingBench(config)
      return tracing._tag === "Missing" ? skipped(tracing.reason) : tracing.bench.tracingOverhead(config)
    }
  },
  {
    id: "versus",
    number: 9,
    title: "side by side with another CLI (BENCH_VERSUS): the same workflows and cold starts, interleaved",
    run: (config) => sideBySide(config)
  },
  {
    id: "gateway.latency",
    number: 11,
    title: "inference gateway added latency: requests through the gateway vs straight to a fake upstream, loopback",
    run: async (config) => {
      const gateway = await loadGatewayBench(config)
      return gateway._tag === "Missing" ? skipped(gateway.reason) : gateway.bench.gatewayLatency(config)
    }
  }
]

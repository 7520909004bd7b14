/**
 * Benchmark 1: the engine's own overhead per node, with no model in the way.
 * Each node is a `transform: '1'`, so what is measured is the engine: the
 * orchestrator step, the event commits, the queue hops, the live fan-out and
 * one sandbox call per node.
 *
 * The engine layers are passed in, so the same benchmark runs on memory stores
 * now and on durable stores (SQLite) when they exist (see Registry.ts).
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime, Option, Stream } from "effect"
import { layerLocal, QuickJsSandbox, WorkflowEngine } from "@relavium/core"
import { DaemonRouter, KeyStore, LlmProvider, ModelPricing, RunQueue, RunStore, UpdateHub, WorkflowStore } from "@relavium/ports"
import { Llm, RunEvent as RE } from "@relavium/domain"
import { type BenchConfig, type Measurement, settle } from "./Harness.js"

export const noModel = Layer.succeed(
  LlmProvider,
  LlmProvider.of({
    stream: (request) =>
      Stream.fail(new Llm.LlmError({ kind: "auth", retryable: false, provider: request.provider, message: "no model in benchmarks" }))
  })
)

export const noPricing = Layer.succeed(ModelPricing, ModelPricing.of({ priceOf: () => Effect.succeed(Option.none()) }))

/** The stores a benchmark runs the local engine on. */
export type StoreLayer = Layer.Layer<RunStore | WorkflowStore, unknown>

export const memoryStores: StoreLayer = Layer.mergeAll(RunStore.layerMemory, WorkflowStore.layerMemory)

/** The local mode as `relavium run` composes it, with the given stores. */
export const localEngine = (stores: StoreLayer) =>
  layerLocal({ executionMode: "local" }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        stores,
        UpdateHub.layerMemory,
        RunQueue.layerMemory(),
        QuickJsSandbox.layerQuickJs,
        noModel,
        noPricing,
        DaemonRouter.layerInProcess(),
        KeyStore.layerMemory()
      )
    ),
    Layer.provideMerge(NodeContext.layer)
  )

const header = (id: string, extra = "") => `schema_version: '1.0'\nworkflow:\n  id: ${id}\n${extra}  nodes:\n`

/** N no-op transforms in a row. */
export const chainYaml = (n: number): string => {
  const lines = [header(`bench-chain-${n}`)]
  for (let i = 0; i < n; i++) lines.push(`    - { id: n${i}, type: transform, transform: '1' }\n`)
  lines.push("  edges:\n")
  for (let i = 1; i < n; i++) lines.push(`    - { from: n${i - 1}, to: n${i} }\n`)
  return lines.join("")
}

/**
 * N transforms in a row whose expressions are real code (`run.outputs["n0"] + 1`), so each is
 * evaluated by the QuickJS worker pool off the main thread, not by the main-thread fast path.
 */
export const expressionChainYaml = (n: number): string => {
  const lines = [header(`bench-expression-chain-${n}`)]
  lines.push(`    - { id: n0, type: transform, transform: '1' }\n`)
  for (let i = 1; i < n; i++) lines.push(`    - { id: n${i}, type: transform, transform: 'run.outputs["n${i - 1}"] + 1' }\n`)
  lines.push("  edges:\n")
  for (let i = 1; i < n; i++) lines.push(`    - { from: n${i - 1}, to: n${i} }\n`)
  return lines.join("")
}

export const expressionChainCase = (config: BenchConfig): Case => {
  const n = config.quick ? 20 : 300
  return {
    id: `engine.memory.expressions.${n}`,
    label: `memory chain of ${n} expression transforms (worker pool)`,
    yaml: expressionChainYaml(n),
    nodes: n,
    warmups: config.quick ? 1 : 3,
    runs: config.quick ? 2 : Math.max(1, Math.round(5 * config.repeat))
  }
}

/** A parallel node with N no-op transform members, gathered by a concat merge. */
export const fanoutYaml = (n: number): string => {
  const members = Array.from({ length: n }, (_, i) => `m${i}`)
  const lines = [header(`bench-fanout-${n}`)]
  lines.push(`    - { id: fan, type: parallel, parallel_of: [${members.join(", ")}] }\n`)
  for (const m of members) lines.push(`    - { id: ${m}, type: transform, transform: '1' }\n`)
  lines.push("    - { id: gather, type: merge, merge_strategy: concat }\n")
  lines.push("  edges:\n")
  for (const m of members) lines.push(`    - { from: ${m}, to: gather }\n`)
  return lines.join("")
}

interface RunTiming {
  readonly wallMs: number
  /** Time between consecutive node:completed events as the subscriber saw them. */
  readonly intervalsMs: ReadonlyArray<number>
  readonly events: number
}

/** Starts a run of a stored workflow and follows it to its terminal event, which must be run:completed. */
const timedRun = (workflowId: string) =>
  Effect.gen(function* () {
    const engine = yield* WorkflowEngine
    const started = performance.now()
    const handle = yield* engine.start(workflowId, {})
    const completions: Array<number> = []
    let last: RE.RunEvent | undefined
    let events = 0
    yield* handle.events.pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          events += 1
          last = event
          if (event.type === "node:completed") completions.push(performance.now())
        })
      )
    )
    const wallMs = performance.now() - started
    const terminal = last as RE.RunEvent | undefined
    if (terminal?.type !== "run:completed") {
      return yield* Effect.dieMessage(`benchmark run ended with ${terminal?.type ?? "no event"}: ${JSON.stringify(terminal)}`)
    }
    const intervalsMs = completions.slice(1).map((t, i) => t - completions[i]!)
    return { wallMs, intervalsMs, events } satisfies RunTiming
  })

export interface Case {
  readonly id: string
  readonly label: string
  readonly yaml: string
  /** Nodes the per-node figure divides by. */
  readonly nodes: number
  readonly warmups: number
  readonly runs: number
}

/**
 * Runs one case in a fresh engine: stores the workflow, warms up (the first run
 * also compiles the plan, which is cached per workflow), then measures.
 */
export const runCase = async (
  stores: StoreLayer,
  c: Case,
  options: {
    readonly intervals: boolean
    /** What records the engine's spans (TracingBench.ts: the tracer disabled, or the OpenTelemetry SDK); Effect's default without. */
    readonly telemetry?: Layer.Layer<never> | undefined
  }
): Promise<ReadonlyArray<Measurement>> => {
  const runtime = ManagedRuntime.make(options.telemetry === undefined ? localEngine(stores) : localEngine(stores).pipe(Layer.provide(options.telemetry)))
  try {
    const workflowId = await runtime.runPromise(
      Effect.flatMap(WorkflowStore, (workflows) => workflows.put({ name: c.id, source: c.yaml, file: `${c.id}.relavium.yaml` })).pipe(
        Effect.map((stored) => stored.workflowId)
      )
    )
    for (let i = 0; i < c.warmups; i++) await runtime.runPromise(timedRun(workflowId))
    const perNode: Array<number> = []
    const wall: Array<number> = []
    const intervals: Array<number> = []
    for (let i = 0; i < c.runs; i++) {
      settle()
      const timing = await runtime.runPromise(timedRun(workflowId))
      wall.push(timing.wallMs)
      perNode.push((timing.wallMs * 1000) / c.nodes)
      for (const ms of timing.intervalsMs) intervals.push(ms * 1000)
    }
    const out: Array<Measurement> = [
      { id: `${c.id}.per-node`, label: `${c.label}: per node`, unit: "µs", samples: perNode, sampleIs: "one run's wall time / nodes", warmups: c.warmups },
      { id: `${c.id}.run`, label: `${c.label}: whole run`, unit: "ms", samples: wall, sampleIs: "one run's wall time, start to terminal event", warmups: c.warmups }
    ]
    if (options.intervals && intervals.length > 0) {
      out.push({
        id: `${c.id}.step`,
        label: `${c.label}: node-to-node step`,
        unit: "µs",
        samples: intervals,
        sampleIs: "time between consecutive node:completed events seen by a subscriber",
        warmups: c.warmups
      })
    }
    return out
  } finally {
    await runtime.dispose()
  }
}

/**
 * Enough warm-up runs for about 3,000 node executions (at least one run), so the figures are the
 * engine's steady state, not V8 and the wasm sandbox still compiling; the cold start is benchmark 5.
 */
const warmupRuns = (nodes: number): number => Math.min(300, Math.max(1, Math.ceil(3000 / nodes)))

/** Warm-ups and measured runs per chain size: more of the short runs, so each size takes seconds, not minutes. */
export const chainRepetitions = (n: number, config: BenchConfig): { readonly warmups: number; readonly runs: number } => {
  if (config.quick) return { warmups: 1, runs: 2 }
  const runs = n <= 10 ? 50 : n <= 100 ? 20 : n <= 1000 ? 7 : 3
  return { warmups: warmupRuns(n), runs: Math.max(1, Math.round(runs * config.repeat)) }
}

export const chainCases = (config: BenchConfig, prefix: string, label: string): ReadonlyArray<Case> =>
  config.chainSizes.map((n) => ({
    id: `${prefix}.chain.${n}`,
    label: `${label} chain of ${n.toLocaleString("en-US")}`,
    yaml: chainYaml(n),
    nodes: n,
    ...chainRepetitions(n, config)
  }))

export const fanoutCase = (config: BenchConfig, prefix: string, label: string): Case => ({
  id: `${prefix}.fanout.${config.fanout}`,
  label: `${label} fan-out of ${config.fanout.toLocaleString("en-US")}`,
  yaml: fanoutYaml(config.fanout),
  // The parallel node, its members and the merge.
  nodes: config.fanout + 2,
  warmups: config.quick ? 1 : warmupRuns(config.fanout + 2),
  runs: config.quick ? 2 : Math.max(1, Math.round(7 * config.repeat))
})

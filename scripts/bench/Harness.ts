/**
 * The benchmark harness: what a benchmark is, how its samples become figures
 * (median, p99, min, max), the machine they were taken on, and the table and
 * JSON they are reported as. Benchmarks never assert; they only measure.
 */
import { cpus, totalmem } from "node:os"

/** One measured figure: a name, its unit and the raw samples behind it. */
export interface Measurement {
  /** Stable id of the figure, e.g. `engine.chain.1000.per-node`. */
  readonly id: string
  readonly label: string
  /** Time per sample (µs, ms), a rate (higher is better) or resident memory. */
  readonly unit: "µs" | "ms" | "steps/s" | "events/s" | "MiB"
  readonly samples: ReadonlyArray<number>
  /** What one sample is, e.g. "one run's wall time / nodes". */
  readonly sampleIs: string
  readonly warmups: number
}

export interface Figures {
  readonly count: number
  readonly median: number
  readonly p99: number
  readonly min: number
  readonly max: number
  readonly mean: number
}

export interface BenchConfig {
  /** BENCH_QUICK=1: the smallest sizes and fewest repetitions, to prove the harness works. */
  readonly quick: boolean
  /** BENCH_CHAIN_SIZES=10,100,…: node counts of the sequential-chain benchmark. */
  readonly chainSizes: ReadonlyArray<number>
  /** BENCH_FANOUT=1000: members of the parallel node in the fan-out benchmark. */
  readonly fanout: number
  /** BENCH_CLI_RUNS=15: measured cold starts of the CLI. */
  readonly cliRuns: number
  /** BENCH_REPEAT=1: multiplies every benchmark's measured repetitions. */
  readonly repeat: number
  /** BENCH_ONLY=engine,cli: run only benchmarks whose id starts with one of these. */
  readonly only: ReadonlyArray<string>
  /** Repository root (for the CLI binary and fixtures). */
  readonly root: string
}

/** A table a benchmark prints below the main one (e.g. the side-by-side ratios), with the same rows as JSON. */
export interface Section {
  readonly title: string
  readonly header: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
  readonly json: unknown
}

export type Outcome =
  | {
    readonly _tag: "Measured"
    readonly measurements: ReadonlyArray<Measurement>
    readonly notes: ReadonlyArray<string>
    readonly sections?: ReadonlyArray<Section>
  }
  | { readonly _tag: "Skipped"; readonly reason: string }

/**
 * A registered benchmark. Benchmarks for modes that are not built yet stay in
 * the registry and report why they were skipped, so the table shows the gap.
 */
export interface Benchmark {
  readonly id: string
  /** The benchmark number (1–6) this belongs to. */
  readonly number: number
  readonly title: string
  readonly run: (config: BenchConfig) => Promise<Outcome>
}

export const measured = (
  measurements: ReadonlyArray<Measurement>,
  notes: ReadonlyArray<string> = [],
  sections: ReadonlyArray<Section> = []
): Outcome => ({ _tag: "Measured", measurements, notes, sections })
export const skipped = (reason: string): Outcome => ({ _tag: "Skipped", reason })

const envNumber = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === "") return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`)
  return value
}

const envList = (name: string): ReadonlyArray<string> | undefined => {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === "") return undefined
  return raw.split(",").map((s) => s.trim()).filter((s) => s !== "")
}

export const configFromEnv = (root: string): BenchConfig => {
  const quick = process.env.BENCH_QUICK === "1" || process.env.BENCH_QUICK === "true"
  const chainSizes = (envList("BENCH_CHAIN_SIZES") ?? (quick ? ["10", "100"] : ["10", "100", "1000", "10000"])).map((s) => {
    const n = Number(s)
    if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_CHAIN_SIZES: ${JSON.stringify(s)} is not a node count`)
    return n
  })
  return {
    quick,
    chainSizes,
    fanout: envNumber("BENCH_FANOUT", quick ? 50 : 1000),
    cliRuns: envNumber("BENCH_CLI_RUNS", quick ? 2 : 15),
    repeat: envNumber("BENCH_REPEAT", 1),
    only: envList("BENCH_ONLY") ?? [],
    root
  }
}

/** Nearest-rank percentile of sorted samples. */
const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!

export const figures = (samples: ReadonlyArray<number>): Figures => {
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return {
    count: sorted.length,
    median: sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2,
    p99: percentile(sorted, 99),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length
  }
}

export interface Machine {
  readonly cores: number
  readonly cpuModel: string
  readonly node: string
  readonly platform: string
  readonly arch: string
  readonly memoryGiB: number
}

export const machine = (): Machine => {
  const list = cpus()
  return {
    cores: list.length,
    cpuModel: list[0]?.model.trim() ?? "unknown",
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10
  }
}

/** Times `task` in milliseconds with the monotonic clock. */
export const timeMs = async (task: () => Promise<unknown>): Promise<number> => {
  const started = performance.now()
  await task()
  return performance.now() - started
}

/** Collects garbage between samples when node runs with --expose-gc, so one sample's garbage is not billed to the next. */
export const settle = (): void => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc !== undefined) gc()
}

export const format = (value: number): string =>
  value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)

export interface Row {
  readonly benchmark: Benchmark
  readonly outcome: Outcome
}

export const table = (rows: ReadonlyArray<Row>): string => {
  const header = ["figure", "unit", "n", "median", "p99", "min", "max"]
  const lines: Array<ReadonlyArray<string>> = [header]
  const notes: Array<string> = []
  for (const { benchmark, outcome } of rows) {
    if (outcome._tag === "Skipped") {
      notes.push(`  skipped (${benchmark.number}) ${benchmark.id}: ${outcome.reason}`)
      continue
    }
    for (const note of outcome.notes) notes.push(`  note (${benchmark.number}) ${benchmark.id}: ${note}`)
    for (const m of outcome.measurements) {
      const f = figures(m.samples)
      lines.push([m.label, m.unit, String(f.count), format(f.median), format(f.p99), format(f.min), format(f.max)])
    }
  }
  const sections = rows.flatMap(({ outcome }) => (outcome._tag === "Measured" ? (outcome.sections ?? []) : []))
  const extra = sections.flatMap((section) => ["", section.title, "", ...aligned([section.header, ...section.rows])])
  return [...aligned(lines), ...extra, ...(notes.length > 0 ? ["", ...notes] : [])].join("\n")
}

/** Header, a rule, then the rows: the first column left-aligned, the others right-aligned. */
const aligned = (lines: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => {
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? "").length)))
  const render = (l: ReadonlyArray<string>) =>
    l.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")
  return [render(lines[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...lines.slice(1).map(render)]
}

/** The JSON written under bench/results: the same figures as the table, plus the raw samples. */
export const report = (config: BenchConfig, rows: ReadonlyArray<Row>, startedAt: Date, elapsedMs: number) => ({
  startedAt: startedAt.toISOString(),
  elapsedMs: Math.round(elapsedMs),
  machine: machine(),
  config: { quick: config.quick, chainSizes: config.chainSizes, fanout: config.fanout, cliRuns: config.cliRuns, repeat: config.repeat, only: config.only },
  benchmarks: rows.map(({ benchmark, outcome }) => ({
    id: benchmark.id,
    number: benchmark.number,
    title: benchmark.title,
    ...(outcome._tag === "Skipped"
      ? { skipped: outcome.reason }
      : {
          notes: outcome.notes,
          ...(outcome.sections !== undefined && outcome.sections.length > 0
            ? { sections: outcome.sections.map((section) => ({ title: section.title, rows: section.json })) }
            : {}),
          figures: outcome.measurements.map((m) => ({
            id: m.id,
            label: m.label,
            unit: m.unit,
            sampleIs: m.sampleIs,
            warmups: m.warmups,
            ...figures(m.samples),
            samples: m.samples.map((s) => Math.round(s * 1000) / 1000)
          }))
        })
  }))
})

/**
 * `pnpm bench`: runs every registered benchmark (warm-up, then several measured
 * repetitions), prints median / p99 / min / max with the machine they ran on,
 * and writes the same figures as JSON under bench/results/.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { configFromEnv, machine, type Outcome, report, type Row, skipped, table } from "./Harness.js"
import { benchmarks } from "./Registry.js"

const main = async () => {
  const root = process.env.BENCH_ROOT ?? process.cwd()
  const config = configFromEnv(root)
  const m = machine()
  const startedAt = new Date()
  const t0 = performance.now()
  process.stdout.write(
    `relavium bench — ${m.cores} cores · ${m.cpuModel} · Node ${m.node} · ${m.platform}/${m.arch} · ${m.memoryGiB} GiB` +
      `${config.quick ? " · QUICK (smoke run, figures not meaningful)" : ""}\n\n`
  )
  const rows: Array<Row> = []
  const failures: Array<string> = []
  for (const benchmark of benchmarks) {
    if (config.only.length > 0 && !config.only.some((prefix) => benchmark.id.startsWith(prefix))) continue
    const started = performance.now()
    process.stdout.write(`(${benchmark.number}) ${benchmark.id}: ${benchmark.title} … `)
    // A benchmark that throws is reported (and fails the run at the end) without stopping the others.
    const outcome: Outcome = await benchmark.run(config).catch((error: unknown) => {
      failures.push(benchmark.id)
      return skipped(`FAILED: ${error instanceof Error ? error.message : String(error)}`)
    })
    process.stdout.write(outcome._tag === "Skipped" ? `${failures.includes(benchmark.id) ? "FAILED" : "skipped"}\n` : `${((performance.now() - started) / 1000).toFixed(1)} s\n`)
    rows.push({ benchmark, outcome })
  }
  const elapsedMs = performance.now() - t0
  process.stdout.write(`\n${table(rows)}\n\n`)
  const outDir = process.env.BENCH_OUT ?? join(root, "bench/results")
  mkdirSync(outDir, { recursive: true })
  const json = `${JSON.stringify(report(config, rows, startedAt, elapsedMs), null, 2)}\n`
  const file = join(outDir, `${startedAt.toISOString().replace(/[:.]/g, "-")}${config.quick ? "-quick" : ""}.json`)
  writeFileSync(file, json)
  writeFileSync(join(outDir, config.quick ? "latest-quick.json" : "latest.json"), json)
  process.stdout.write(`figures written to ${file} (${(elapsedMs / 1000).toFixed(1)} s in all)\n`)
  if (failures.length > 0) {
    process.stderr.write(`bench: ${failures.join(", ")} failed (see the notes above)\n`)
    process.exitCode = 1
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exitCode = 1
})

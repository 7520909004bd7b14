/**
 * `pnpm bench` in quick mode, on the smallest sizes: proves the harness, every registered
 * benchmark and the JSON report work. Figures are never asserted; performance is measured by
 * `pnpm bench`, not by tests.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../", import.meta.url))

interface Report {
  readonly machine: { readonly cores: number; readonly cpuModel: string; readonly node: string }
  readonly benchmarks: ReadonlyArray<{
    readonly id: string
    readonly skipped?: string
    readonly figures?: ReadonlyArray<{ readonly id: string; readonly count: number; readonly median: number; readonly p99: number }>
  }>
}

describe("pnpm bench", () => {
  it("runs every benchmark in quick mode and writes the figures as JSON", { timeout: 240_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), "relavium-bench-test-"))
    const result = spawnSync(process.execPath, [join(root, "scripts/bench/run.mjs")], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, BENCH_QUICK: "1", BENCH_CHAIN_SIZES: "10", BENCH_SQLITE_CHAIN_SIZES: "10", BENCH_FANOUT: "10", BENCH_OUT: out },
      timeout: 230_000
    })
    assert.strictEqual(result.status, 0, `${result.stdout}\n${result.stderr}`)
    assert.include(result.stdout, "median")
    const report = JSON.parse(readFileSync(join(out, "latest-quick.json"), "utf8")) as Report
    assert.isAbove(report.machine.cores, 0)
    const byId = new Map(report.benchmarks.map((b) => [b.id, b]))
    for (const id of ["engine.memory.chain", "engine.memory.fanout", "cli.cold-start"]) {
      const figures = byId.get(id)?.figures ?? []
      assert.isAbove(figures.length, 0, `${id} has figures`)
      for (const f of figures) assert.isTrue(f.count > 0 && Number.isFinite(f.median), `${f.id} has samples`)
    }
    // Benchmarks for modes not built yet are listed, with what they wait for.
    assert.isString(byId.get("distributed.throughput")?.skipped)
  })
})

/**
 * `pnpm bench` in quick mode, on the smallest sizes: proves the harness, every registered
 * benchmark and the JSON report work (Postgres, Redis and NATS on loopback: bash scripts/services.sh). Figures are never asserted; performance is measured by
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
    readonly figures?: ReadonlyArray<{ readonly id: string; readonly unit: string; readonly count: number; readonly median: number; readonly p99: number }>
  }>
}

describe("pnpm bench", () => {
  it("runs every benchmark in quick mode and writes the figures as JSON", { timeout: 240_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), "relavium-bench-test-"))
    const result = spawnSync(process.execPath, [join(root, "scripts/bench/run.mjs")], {
      cwd: root,
      encoding: "utf8",
      // The suite's global setup has built the CLI; other files run it while this one does.
      env: { ...process.env, BENCH_CLI_BUILT: "1", BENCH_QUICK: "1", BENCH_CHAIN_SIZES: "10", BENCH_SQLITE_CHAIN_SIZES: "10", BENCH_FANOUT: "10", BENCH_OUT: out },
      timeout: 230_000
    })
    assert.strictEqual(result.status, 0, `${result.stdout}\n${result.stderr}`)
    assert.include(result.stdout, "median")
    const report = JSON.parse(readFileSync(join(out, "latest-quick.json"), "utf8")) as Report
    assert.isAbove(report.machine.cores, 0)
    const byId = new Map(report.benchmarks.map((b) => [b.id, b]))
    for (const id of ["engine.memory.chain", "engine.memory.fanout", "cli.cold-start", "hub.fanout", "distributed.throughput", "monolith.memory", "chat.turn"]) {
      const figures = byId.get(id)?.figures ?? []
      assert.isAbove(figures.length, 0, `${id} has figures (${byId.get(id)?.skipped ?? "not skipped"})`)
      for (const f of figures) assert.isTrue(f.count > 0 && Number.isFinite(f.median) && f.median > 0, `${f.id} has samples`)
    }
    const ids = (id: string) => (byId.get(id)?.figures ?? []).map((f) => f.id)
    // (3) both hubs (services.sh runs NATS), paced and flat-out latency and events/s.
    for (const hub of ["memory", "nats"]) {
      for (const figure of ["sse-latency.paced", "sse-latency.saturated", "events-per-second"]) assert.include(ids("hub.fanout"), `hub.${hub}.${figure}`)
    }
    // (4) steps/s and dispatch latency with 1 and 2 workers.
    for (const workers of ["1w", "2w"]) {
      for (const figure of ["steps-per-second", "dispatch"]) assert.include(ids("distributed.throughput"), `distributed.bullmq.${workers}.${figure}`)
    }
    // (7) a whole chat turn and its cost per streamed chunk.
    assert.includeMembers(ids("chat.turn"), ["chat.sqlite.turn.50", "chat.sqlite.turn.50.per-chunk"])
    // (6) RSS idle, at each checkpoint and idle afterwards, in MiB, so growth shows.
    const rss = byId.get("monolith.memory")?.figures ?? []
    assert.isAtLeast(rss.length, 3)
    assert.strictEqual(rss[0]!.id, "monolith.rss.idle")
    for (const f of rss) assert.strictEqual(f.unit, "MiB")
  })
})

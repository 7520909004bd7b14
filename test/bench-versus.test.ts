/**
 * `pnpm bench`'s side-by-side mode (BENCH_VERSUS), in quick mode against this repository's own CLI
 * as the "other" CLI: the table and the JSON report have a row per case with both medians and
 * their ratio. Figures are never asserted; performance is measured by `pnpm bench`, not by tests.
 */
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { configFromEnv } from "../scripts/bench/Harness.js"
import { invocation, parseCommandLine, sideBySide } from "../scripts/bench/SideBySide.js"

const root = fileURLToPath(new URL("../", import.meta.url))

interface Report {
  readonly benchmarks: ReadonlyArray<{
    readonly id: string
    readonly skipped?: string
    readonly figures?: ReadonlyArray<{ readonly id: string; readonly unit: string; readonly count: number }>
    readonly sections?: ReadonlyArray<{
      readonly title: string
      readonly rows: ReadonlyArray<{ readonly case: string; readonly n: number; readonly oursMedian: number; readonly theirsMedian: number; readonly ratio: number }>
    }>
  }>
}

describe("pnpm bench, side by side", () => {
  it("runs the same workflows and cold starts on both CLIs and prints medians and ratios", { timeout: 600_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), "relavium-bench-versus-test-"))
    // Asynchronously, so the test worker keeps answering the test runner for the minutes this takes.
    const result = await promisify(execFile)(process.execPath, [join(root, "scripts/bench/run.mjs")], {
      cwd: root,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
      env: {
        ...process.env,
        BENCH_QUICK: "1",
        BENCH_ONLY: "versus",
        BENCH_FANOUT: "10",
        BENCH_VERSUS: JSON.stringify([process.execPath, join(root, "apps/cli/bin/relavium.mjs")]),
        BENCH_OUT: out
      },
      timeout: 590_000
    })
    const cases = ["version", "run.3-nodes", "run.chain.10", "run.fanout.10"]
    const report = JSON.parse(readFileSync(join(out, "latest-quick.json"), "utf8")) as Report
    const versus = report.benchmarks.find((b) => b.id === "versus")
    assert.isDefined(versus?.figures, versus?.skipped)
    const ids = (versus?.figures ?? []).map((f) => f.id)
    for (const c of cases) assert.includeMembers(ids, [`versus.${c}.ours`, `versus.${c}.theirs`])
    for (const f of versus?.figures ?? []) assert.isTrue(f.unit === "ms" && f.count === 2, `${f.id}: 2 samples in ms`)
    const rows = versus?.sections?.[0]?.rows ?? []
    assert.deepStrictEqual(rows.map((r) => r.case), cases)
    for (const r of rows) {
      assert.isTrue(r.oursMedian > 0 && r.theirsMedian > 0, `${r.case} has both medians`)
      assert.closeTo(r.ratio, r.oursMedian / r.theirsMedian, 1e-9)
    }
    // The printed table: a header and one line per case, each ending with its ratio.
    const table = result.stdout.slice(result.stdout.indexOf("side by side (wall ms"))
    assert.match(table, /case\s+n\s+ours\s+theirs\s+ratio/)
    for (const label of ["--version", "run, 3 nodes (cold start)", "run, chain of 10", "run, fan-out of 10"]) {
      assert.match(table, new RegExp(`${label.replace(/[-,()]/g, "\\$&")}\\s+2\\s+[\\d.]+\\s+[\\d.]+\\s+[\\d.]+×`))
    }
  })

  it("is skipped with a note when BENCH_VERSUS is not set", async () => {
    const outcome = await sideBySide(configFromEnv(root), {})
    assert.strictEqual(outcome._tag, "Skipped")
    assert.include(outcome._tag === "Skipped" ? outcome.reason : "", "BENCH_VERSUS")
  })

  it("reads BENCH_VERSUS as words or a JSON array, and fills in {data} and {args}", () => {
    assert.deepStrictEqual(parseCommandLine("  node /opt/other/cli.js  "), Either.right(["node", "/opt/other/cli.js"]))
    assert.deepStrictEqual(parseCommandLine(`["node", "/opt/my tools/cli.js"]`), Either.right(["node", "/opt/my tools/cli.js"]))
    for (const bad of ["", "   ", `["node", 1]`, "[]", `["node",`]) assert.isTrue(Either.isLeft(parseCommandLine(bad)), JSON.stringify(bad))
    assert.deepStrictEqual(invocation(["other"], ["run", "w.yaml"], "/tmp/d"), ["other", "run", "w.yaml"])
    assert.deepStrictEqual(
      invocation(["other", "{args}", "--data-dir", "{data}"], ["--version"], "/tmp/d"),
      ["other", "--version", "--data-dir", "/tmp/d"]
    )
    assert.deepStrictEqual(invocation(["other", "--state={data}/s", "{args}"], ["run", "w.yaml"], "/tmp/d"), ["other", "--state=/tmp/d/s", "run", "w.yaml"])
  })
})

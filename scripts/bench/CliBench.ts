/**
 * Benchmark 5: the CLI's cold start. Each sample is a fresh `node` process
 * running the bundled `relavium run FILE --json` on a three-node workflow:
 * wall time to exit, and time until the first event reaches stdout. Bare
 * `node -e 0` is measured alongside as the floor no CLI can beat.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BenchConfig, type Measurement, measured, type Outcome, skipped } from "./Harness.js"

interface ProcessTiming {
  readonly wallMs: number
  readonly firstOutputMs: number | undefined
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

const timeProcess = (args: ReadonlyArray<string>, cwd: string, dataDir: string): Promise<ProcessTiming> =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    let firstOutputMs: number | undefined
    let stdout = ""
    let stderr = ""
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, NO_COLOR: "1", RELAVIUM_DATA_DIR: dataDir }, stdio: ["ignore", "pipe", "pipe"] })
    child.stdout.on("data", (chunk: Buffer) => {
      firstOutputMs ??= performance.now() - started
      stdout += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    child.on("error", reject)
    child.on("close", (status) => resolve({ wallMs: performance.now() - started, firstOutputMs, status, stdout, stderr }))
  })

export const cliColdStart = async (config: BenchConfig): Promise<Outcome> => {
  const bin = join(config.root, "apps/cli/bin/relavium.mjs")
  if (!existsSync(join(config.root, "apps/cli/dist/relavium.mjs"))) return skipped("the CLI is not built (pnpm build)")
  const workflow = join(config.root, "scripts/bench/fixtures/three-nodes.relavium.yaml")
  const runs = Math.max(1, Math.round(config.cliRuns * (config.quick ? 1 : config.repeat)))
  const warmups = config.quick ? 1 : 3
  // Runs are stored in the data directory: a fresh one, never the user's.
  const dataDir = mkdtempSync(join(tmpdir(), "relavium-bench-cli-"))
  const wall: Array<number> = []
  const firstEvent: Array<number> = []
  const bare: Array<number> = []
  for (let i = 0; i < warmups + runs; i++) {
    const run = await timeProcess([bin, "run", workflow, "--json"], config.root, dataDir)
    if (run.status !== 0) throw new Error(`relavium run exited ${run.status}: ${run.stderr || run.stdout}`)
    const first = run.stdout.split("\n")[0] ?? ""
    if (!first.includes('"run:started"')) throw new Error(`the first line of relavium run --json is not run:started: ${first}`)
    const node = await timeProcess(["-e", "0"], config.root, dataDir)
    if (i < warmups) continue
    wall.push(run.wallMs)
    if (run.firstOutputMs !== undefined) firstEvent.push(run.firstOutputMs)
    bare.push(node.wallMs)
  }
  rmSync(dataDir, { recursive: true, force: true })
  const measurements: Array<Measurement> = [
    { id: "cli.run.3-nodes.wall", label: "relavium run (3 nodes): wall", unit: "ms", samples: wall, sampleIs: "spawn to exit of `relavium run FILE --json`", warmups },
    {
      id: "cli.run.3-nodes.first-event",
      label: "relavium run (3 nodes): first event",
      unit: "ms",
      samples: firstEvent,
      sampleIs: "spawn to the first byte on stdout (run:started)",
      warmups
    },
    { id: "cli.node-bare", label: "bare node -e 0 (floor)", unit: "ms", samples: bare, sampleIs: "spawn to exit of `node -e 0`", warmups }
  ]
  return measured(measurements)
}

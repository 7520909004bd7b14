/**
 * Benchmark 6: resident memory of `relavium monolith` (a child process, the shipped CLI bundle,
 * SQLite in a fresh data directory). VmRSS from /proc/PID/status when idle, then after every
 * slice of 1,000 runs of the three-node fixture started through its API (8 at a time, each
 * followed over SSE to its terminal event), and once more idle afterwards. A leak shows as
 * RSS that keeps growing from checkpoint to checkpoint; a flat line after warm-up is healthy.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { apiClient } from "./HttpsClient.js"
import { type BenchConfig, type Measurement, measured, type Outcome, skipped } from "./Harness.js"

const rssMiB = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)
  if (kb === null) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(kb[1]) / 1024
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Starts `relavium monolith --port 0` on `dataDir`; resolves with its URL once it listens. */
export const startMonolithProcess = async (root: string, dataDir: string) => {
  const child = spawn(process.execPath, [join(root, "apps/cli/bin/relavium.mjs"), "monolith", "--port", "0", "--data-dir", dataDir], {
    cwd: dataDir,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")))
  child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`monolith did not start within 30 s:\n${output}`)), 30_000)
    child.stdout.on("data", () => {
      const match = /listening on (https:\/\/\S+)/.exec(output)
      if (match) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`monolith exited with ${code} before listening:\n${output}`))
    })
  })
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
      child.once("exit", () => {
        clearTimeout(timer)
        resolve()
      })
      child.kill("SIGTERM")
    })
  const client = apiClient(url, readFileSync(join(dataDir, "monolith.token"), "utf8").trim(), readFileSync(join(dataDir, "monolith-cert.pem"), "utf8"))
  return { pid: child.pid!, url, client, stop, output: () => output }
}

export const monolithMemory = async (config: BenchConfig): Promise<Outcome> => {
  if (!existsSync(join(config.root, "apps/cli/dist/relavium.mjs"))) return skipped("the CLI is not built (pnpm build)")
  if (!existsSync("/proc/self/status")) return skipped("needs /proc (Linux) to read VmRSS")
  const total = Math.max(2, Math.round((config.quick ? 40 : 1000) * (config.quick ? 1 : config.repeat)))
  const checkpoints = config.quick ? [total / 2, total].map(Math.round) : [100, 250, 500, 750, 1000].map((n) => Math.round((n * total) / 1000))
  const concurrency = 8
  const dataDir = mkdtempSync(join(tmpdir(), "relavium-bench-monolith-"))
  const m = await startMonolithProcess(config.root, dataDir)
  try {
    const yaml = readFileSync(join(config.root, "scripts/bench/fixtures/three-nodes.relavium.yaml"), "utf8")
    const uploaded = await m.client.call("POST", "/workflows", { yaml, file: "three-nodes.relavium.yaml" })
    if (uploaded.status !== 201) throw new Error(`POST /workflows answered ${uploaded.status}: ${JSON.stringify(uploaded.json)}`)
    const workflowId = uploaded.json.workflowId as string
    await sleep(config.quick ? 200 : 2_000)
    const out: Array<Measurement> = []
    const point = (id: string, label: string, sampleIs: string) =>
      out.push({ id: `monolith.rss.${id}`, label, unit: "MiB", samples: [rssMiB(m.pid)], sampleIs, warmups: 0 })
    point("idle", "monolith RSS: idle (started, one workflow stored)", "VmRSS of the monolith process after start-up and one POST /workflows")
    let started = 0
    let finished = 0
    const wall = performance.now()
    const oneRun = async () => {
      const run = await m.client.call("POST", "/runs", { workflowId })
      if (run.status !== 201) throw new Error(`POST /runs answered ${run.status}: ${JSON.stringify(run.json)}`)
      const events = await m.client.follow(run.json.runId as string).done
      const last = events.at(-1)?.type
      if (last !== "run:completed") throw new Error(`run ${run.json.runId} ended with ${last}`)
    }
    for (const target of checkpoints) {
      const worker = async () => {
        while (started < target) {
          started += 1
          await oneRun()
          finished += 1
        }
      }
      await Promise.all(Array.from({ length: concurrency }, worker))
      point(`after-${target}`, `monolith RSS: after ${target.toLocaleString("en-US")} runs`, `VmRSS right after the ${target}th run completed (3-node runs, ${concurrency} at a time over the API + SSE)`)
    }
    const runsPerSecond = finished / ((performance.now() - wall) / 1000)
    await sleep(config.quick ? 500 : 5_000)
    point("idle-after", `monolith RSS: idle ${config.quick ? "0.5" : "5"} s after the last run`, "VmRSS after the runs, with no traffic")
    return measured(out, [`${finished} runs at ${runsPerSecond.toFixed(0)} runs/s through the API (the monolith's RSS is read, no GC is forced)`])
  } finally {
    m.client.close()
    await m.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

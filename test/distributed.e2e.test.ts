/**
 * The distributed mode end to end, every part a separate OS process of the
 * bundled `relavium`: 2 `server api` replicas, 2 `server worker` replicas, 1
 * `server gateway` and 1 remote `daemon start --gateway`, against the real
 * Postgres, Redis and NATS on loopback (a fresh database, BullMQ prefix and
 * NATS subject prefix of their own).
 *
 * - One workflow gives the same events in `relavium run`, the monolith and
 *   this deployment.
 * - Many workflows at once through both APIs (linear, fan-out, gates approved
 *   through the other replica, agents whose tool calls run in the remote
 *   daemon's workspace), one worker SIGKILLed mid-flight: every run completes,
 *   logs are gap-free with one terminal event, no node completes twice, and an
 *   SSE client on api A sees whole streams of runs started through api B.
 * - Without a gateway, agents get `tool_unavailable`; bad tokens and an
 *   unreachable NATS are refused with one line.
 * - No secret of the deployment (the provider keys set through the API, the
 *   master key in each encoding the processes were given, the bearer token)
 *   is in Postgres at rest, Redis, any HTTP response or SSE stream, the
 *   stored events, exported YAML or any process's output (test/support/leaks.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, unlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { collect, startMonolith } from "../packages/server/test/support/monolith.js"
import {
  type ApiProcess,
  type CloudProcess,
  createDeployment,
  type Deployment,
  natsUrl,
  redisUrl,
  root,
  runRelavium,
  type SseEvent,
  spawnRelavium,
  startApi,
  startWorker,
  testToken,
  waitFor
} from "./support/cloud.js"
import {
  fixtures,
  followWithEventSource,
  type GatewayProcess,
  queryDatabase,
  startGateway,
  startRemoteDaemon,
  type StoredEvent,
  storedEvents,
  takenOverJobs,
  writerCassette
} from "./support/distributed.js"
import { describeFindings, type FetchRecorder, LeakScanner, masterKeySecret, recordFetch, textSecret } from "./support/leaks.js"

// ---------------------------------------------------------------------------
// Workflows
// ---------------------------------------------------------------------------

const wf = (body: string) => `schema_version: '1.0'\nworkflow:\n${body.replace(/^/gm, "  ")}\n`

/** A transform that spins ~30 ms first, so work is in flight on the workers when one is killed. */
const busy = (value: string) => `'(() => { let x = 0; for (let i = 0; i < 300000; i++) x += i % 7; return ${value} })()'`

const LINEAR_STEPS = 6
const workflows = {
  linear: wf(`id: e2e-linear
inputs:
  - { name: n, type: number, default: 0 }
nodes:
  - { id: start, type: input }
${Array.from({ length: LINEAR_STEPS }, (_, i) => `  - { id: s${i + 1}, type: transform, transform: ${busy(i === 0 ? "inputs.n + 1" : `run.outputs["s${i}"] + 1`)} }`).join("\n")}
  - { id: out, type: output }
edges:
  - { from: start, to: s1 }
${Array.from({ length: LINEAR_STEPS - 1 }, (_, i) => `  - { from: s${i + 1}, to: s${i + 2} }`).join("\n")}
  - { from: s${LINEAR_STEPS}, to: out }`),
  parallel: wf(`id: e2e-fan-out
nodes:
  - { id: start, type: input }
  - { id: split, type: parallel, parallel_of: [a, b, c, d] }
  - { id: a, type: transform, transform: ${busy('"a"')} }
  - { id: b, type: transform, transform: ${busy('"b"')} }
  - { id: c, type: transform, transform: ${busy('"c"')} }
  - { id: d, type: transform, transform: ${busy('"d"')} }
  - { id: gather, type: merge, merge_strategy: concat }
  - { id: joined, type: transform, transform: ${busy('run.outputs["gather"].join("")')} }
  - { id: out, type: output }
edges:
  - { from: start, to: split }
  - { from: a, to: gather }
  - { from: b, to: gather }
  - { from: c, to: gather }
  - { from: d, to: gather }
  - { from: gather, to: joined }
  - { from: joined, to: out }`),
  gated: wf(`id: e2e-gated
nodes:
  - { id: plan, type: transform, transform: ${busy('"plan"')} }
  - { id: approve, type: human_gate, gate_type: approval, message_template: 'ship it?' }
  - { id: ship, type: transform, transform: ${busy('run.outputs["approve"]')} }
  - { id: out, type: output }
edges:
  - { from: plan, to: approve }
  - { from: approve, to: ship }
  - { from: ship, to: out }`),
  agent: readFileSync(join(fixtures, "remote-writer.relavium.yaml"), "utf8")
}
type Kind = keyof typeof workflows

const nodeCount: Record<Kind, number> = { linear: LINEAR_STEPS + 2, parallel: 9, gated: 4, agent: 2 }

const upload = async (api: ApiProcess, yaml: string) => {
  const response = await api.api("POST", "/workflows", { yaml, file: "e2e.relavium.yaml" })
  expect(response.status, response.text).toBe(201)
  return response.json.workflowId as string
}

const startRun = async (api: ApiProcess, workflowId: string, inputs?: Record<string, unknown>) => {
  const response = await api.api("POST", "/runs", inputs === undefined ? { workflowId } : { workflowId, inputs })
  // On a failure, what the replica printed last says why.
  expect(response.status, `${response.text}\n${api.output().slice(-3000)}`).toBe(201)
  return response.json.runId as string
}

const terminalStatuses = new Set(["completed", "failed", "cancelled"])

/** Polls the run's status on `api` (every half second: many runs poll at once) until it has ended; its status. */
const ended = (api: ApiProcess, runId: string, timeoutMs = 150_000) =>
  waitFor(
    async () => {
      const summary = await api.api("GET", `/runs/${runId}`)
      if (!terminalStatuses.has(summary.json?.status)) await new Promise((r) => setTimeout(r, 500))
      return terminalStatuses.has(summary.json?.status) ? (summary.json.status as string) : undefined
    },
    `run ${runId} to end`,
    timeoutMs
  )

/** Approves the run's gate through `api` once it is pending. */
const approveWhenPaused = async (api: ApiProcess, runId: string) => {
  const gateId = await waitFor(
    async () => {
      const gates = await api.api("GET", `/gates?runId=${runId}`)
      if (gates.json?.[0] === undefined) await new Promise((r) => setTimeout(r, 500))
      return gates.json?.[0]?.gateId as string | undefined
    },
    `the gate of ${runId}`,
    150_000
  )
  const decided = await api.api("POST", `/runs/${runId}/gates/${encodeURIComponent(gateId)}/approve`, { comment: "ship it" })
  expect(decided.status, decided.text).toBe(200)
}

/** A stored log: sequence numbers 0..n-1, one terminal event, last; each node completed at most once. */
const checkLog = (runId: string, log: ReadonlyArray<StoredEvent>) => {
  expect(log.map((e) => e.seq), `gap in the log of ${runId}`).toEqual(log.map((_, i) => i))
  expect(log.every((e) => e.payload.sequenceNumber === e.seq && e.payload.runId === runId)).toBe(true)
  const terminals = log.filter((e) => ["run:completed", "run:failed", "run:cancelled"].includes(e.type))
  expect(terminals.map((e) => e.type), `terminal events of ${runId}`).toEqual(["run:completed"])
  expect(log.at(-1)!.type).toBe("run:completed")
  const completed = log.filter((e) => e.type === "node:completed").map((e) => e.payload.nodeId as string)
  expect(completed.length, `a node of ${runId} completed twice: ${completed.join(", ")}`).toBe(new Set(completed).size)
  // Nothing started again once it had completed.
  const done = new Set<string>()
  for (const e of log) {
    if (e.type === "node:started") expect(done.has(e.payload.nodeId), `${e.payload.nodeId} of ${runId} ran again after completing`).toBe(false)
    if (e.type === "node:completed") done.add(e.payload.nodeId)
  }
  return completed
}

// ---------------------------------------------------------------------------
// Comparing runs across modes
// ---------------------------------------------------------------------------

/** Fields that legitimately differ between two runs of one workflow: ids, clocks, and where it ran. */
const VOLATILE = new Set(["runId", "workflowId", "timestamp", "durationMs", "sequenceNumber", "executionMode"])

const normalize = (event: Record<string, unknown>) =>
  JSON.stringify(Object.fromEntries(Object.entries(event).filter(([k]) => !VOLATILE.has(k)).sort(([a], [b]) => a.localeCompare(b))))

/**
 * What must be equal between two runs of a workflow. Parallel branches run concurrently (on
 * several workers in the distributed mode), so how their events interleave is the scheduler's
 * choice, not the workflow's; everything else is fixed: the multiset of events, the run-level
 * events in order, and each node's own events in order. For a workflow without parallel
 * branches the whole list in order is compared as well (`ordered`).
 */
const comparable = (events: ReadonlyArray<Record<string, unknown>>) => {
  const byNode: Record<string, Array<string>> = {}
  const runLevel: Array<string> = []
  for (const event of events) {
    const nodeId = event.nodeId as string | undefined
    if (nodeId === undefined) runLevel.push(normalize(event))
    else (byNode[nodeId] ??= []).push(normalize(event))
  }
  return { runLevel, byNode, all: events.map(normalize).sort(), ordered: events.map(normalize) }
}

// ---------------------------------------------------------------------------
// Timings
// ---------------------------------------------------------------------------

const timings: Array<string> = []
const timed = async <A>(what: string, f: () => Promise<A>): Promise<A> => {
  const started = Date.now()
  try {
    return await f()
  } finally {
    timings.push(`${what}: ${Date.now() - started} ms`)
  }
}
afterAll(() => {
  console.log(`distributed.e2e.test.ts\n  ${timings.join("\n  ")}`)
})

const dirs: Array<string> = []
const freshDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------

describe("distributed: 2 api, 2 workers, a gateway and a remote daemon, as OS processes", () => {
  const AGENT_RUNS = 6
  let d: Deployment
  let apiA: ApiProcess
  let apiB: ApiProcess
  let workers: Array<CloudProcess>
  let gateway: GatewayProcess
  let daemon: CloudProcess
  let workspace: string
  // Tool calls, then the answer, for every agent run a worker may get (parity + load + the last test).
  const cassette = writerCassette(AGENT_RUNS + 4)
  const workerArgs = ["--cassette", cassette, "--job-lock-ms", "4000", "--stalled-check-ms", "1000", "--stale-run-ms", "5000"]
  const ids = {} as Record<Kind, string>

  // The deployment's secrets: one master key, given to each process in another encoding (all three
  // are what RELAVIUM_MASTER_KEY takes), provider keys set through the API, and the bearer token
  // (which the daemon also presents to the gateway).
  const master = randomBytes(32)
  const masterKeys = { base64: master.toString("base64"), base64url: master.toString("base64url"), hex: master.toString("hex") }
  const providerKeys = { anthropic: `sk-ant-api03-${randomBytes(24).toString("base64url")}`, openai: `sk-proj-${randomBytes(24).toString("hex")}` }
  const scanner = new LeakScanner([
    textSecret("anthropic key", providerKeys.anthropic),
    textSecret("openai key", providerKeys.openai),
    masterKeySecret("master key", masterKeys.base64, masterKeys.base64url, masterKeys.hex),
    textSecret("bearer token", testToken)
  ])
  // Every HTTP response the test gets (the API client, the SSE readers), recorded for the scan.
  let recorder: FetchRecorder
  const realFetch = globalThis.fetch
  // The output of the short-lived `relavium` processes (the others are scanned where they are).
  const shortLived: Record<string, string> = {}

  beforeAll(async () => {
    recorder = recordFetch(realFetch)
    globalThis.fetch = recorder.fetch
    await timed("deployment up (2 api, 2 workers, gateway, daemon)", async () => {
      d = await createDeployment("e2e")
      workspace = freshDir("relavium-e2e-daemon-ws-")
      // The deployment's database is migrated by the operator role; every server connects as
      // relavium_app and only checks the schema (the first api still starts alone, as before).
      apiA = await startApi(d, { env: { RELAVIUM_MASTER_KEY: masterKeys.base64 } })
      ;[apiB, gateway, ...workers] = await Promise.all([
        startApi(d, { env: { RELAVIUM_MASTER_KEY: masterKeys.base64url } }),
        startGateway(d),
        startWorker(d, { args: workerArgs, env: { RELAVIUM_MASTER_KEY: masterKeys.hex } }),
        startWorker(d, { args: workerArgs, env: { RELAVIUM_MASTER_KEY: masterKeys.hex } })
      ])
      daemon = await startRemoteDaemon(gateway, workspace)
      for (const kind of Object.keys(workflows) as Array<Kind>) ids[kind] = await upload(apiA, workflows[kind])
      // Keys set through either replica; the other lists them (one master key, three encodings).
      expect((await apiA.api("PUT", "/keys/anthropic", { key: providerKeys.anthropic })).status).toBe(204)
      expect((await apiB.api("PUT", "/keys/openai", { key: providerKeys.openai })).status).toBe(204)
      expect((await apiB.api("GET", "/keys")).json).toEqual({ providers: ["anthropic", "openai"] })
    })
  }, 180_000)

  afterAll(async () => {
    globalThis.fetch = realFetch
    await Promise.all([apiA, apiB, gateway, daemon, ...(workers ?? [])].map((p) => p?.stop("SIGKILL")))
    await d?.dispose()
  })

  it("says what it serves: the gateway its daemon URL and NATS, the workers their daemon", () => {
    expect(gateway.output()).toMatch(/^relavium server gateway: listening on http:\/\/127\.0\.0\.1:\d+ \(pid \d+\)\n/)
    expect(gateway.output()).toContain(`tools daemons: ${gateway.daemonUrl}  (relavium daemon start --gateway ${gateway.daemonUrl} --token T [--name N])`)
    expect(gateway.output()).toContain(`NATS:          ${natsUrl} (subject prefix ${d.subjectPrefix})`)
    expect(gateway.output()).toContain("relavium server gateway: tools daemon 'default' connected; serving its tool calls on NATS")
    for (const w of workers) expect(w.output()).toContain("tools:    the daemon 'default', through a gateway (NATS)")
    expect(daemon.output()).toContain(`relavium daemon: connected to ${gateway.daemonUrl} as 'default', serving ${workspace}`)
    for (const p of [apiA, apiB, gateway, daemon, ...workers]) expect(p.output()).not.toContain(testToken)
  })

  it("the gateway refuses a daemon with a wrong token: it exits 2 with one line, and nothing connects", async () => {
    const wrong = "wrong-token-0123456789abcdef"
    const before = gateway.output()
    const refused = spawnRelavium(["daemon", "start", "--gateway", gateway.daemonUrl, "--workspace", freshDir("relavium-e2e-ws-")], {
      RELAVIUM_TOKEN: wrong
    })
    expect(await refused.exited).toBe(2)
    expect(refused.output().trim().split("\n")).toHaveLength(1)
    expect(refused.output()).toMatch(/^relavium: the gateway at ws:\/\/127\.0\.0\.1:\d+\/rpc\/daemon refused the daemon's token \(401\)/)
    expect(refused.output()).not.toContain(wrong)
    expect(gateway.output()).toBe(before)
    const health = await fetch(`${gateway.url}/health`)
    expect(await health.json()).toEqual({ status: "ok" })
  })

  it("one workflow gives the same events in `relavium run`, the monolith and the distributed deployment", async () => {
    const cases = [
      { name: "linear-chain", file: join(root, "examples/linear-chain.relavium.yaml"), ordered: true },
      { name: "parallel-merge", file: join(root, "examples/parallel-merge.relavium.yaml"), ordered: false },
      { name: "remote-writer (cassette agent, write_file)", file: join(fixtures, "remote-writer.relavium.yaml"), ordered: true }
    ]
    const runCassette = join(fixtures, "remote-writer.cassette.json")
    const monolithDir = freshDir("relavium-e2e-monolith-")
    const monolithWs = freshDir("relavium-e2e-monolith-ws-")
    const monolith = await startMonolith(monolithDir, ["--workspace", monolithWs, "--cassette", runCassette])
    try {
      await timed("parity: 3 workflows × (run, monolith, distributed)", async () => {
        for (const c of cases) {
          const yaml = readFileSync(c.file, "utf8")
          // relavium run: a fresh process each (the cassette starts at its first call), tools in-process.
          const local = await runRelavium(["run", c.file, "--json", "--cassette", runCassette, "--workspace", freshDir("relavium-e2e-run-ws-")], {
            RELAVIUM_DATA_DIR: freshDir("relavium-e2e-run-data-")
          })
          expect(local.status, local.output).toBe(0)
          shortLived[`relavium run ${c.name}`] = local.output
          const fromRun = local.output.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>)

          const uploaded = await monolith.api("POST", "/workflows", { yaml, file: "parity.relavium.yaml" })
          expect(uploaded.status, uploaded.text).toBe(201)
          const monolithRun = await monolith.api("POST", "/runs", { workflowId: uploaded.json.workflowId })
          expect(monolithRun.status, monolithRun.text).toBe(201)
          const fromMonolith = (await collect(monolith.events(monolithRun.json.runId), () => false)).map((e) => e.data as Record<string, unknown>)

          const runId = await startRun(apiB, await upload(apiB, yaml))
          const fromCloud = (await followWithEventSource(apiA.url, runId)).map((e) => e.data as Record<string, unknown>)

          expect(fromRun.at(-1)!.type, c.name).toBe("run:completed")
          expect(fromRun[0]!.executionMode).toBe("local")
          expect(fromCloud[0]!.executionMode).toBe("cloud")
          const [a, b, cl] = [comparable(fromRun), comparable(fromMonolith), comparable(fromCloud)]
          for (const [mode, other] of [["monolith", b], ["distributed", cl]] as const) {
            expect(other.runLevel, `${c.name}: run-level events, run vs ${mode}`).toEqual(a.runLevel)
            expect(other.byNode, `${c.name}: each node's events, run vs ${mode}`).toEqual(a.byNode)
            expect(other.all, `${c.name}: all events, run vs ${mode}`).toEqual(a.all)
            if (c.ordered) expect(other.ordered, `${c.name}: events in order, run vs ${mode}`).toEqual(a.ordered)
          }
        }
      })
      // The agent's tool call ran in the remote daemon's workspace in the distributed mode.
      expect(readFileSync(join(workspace, "hello.txt"), "utf8")).toBe("written by the agent")
      unlinkSync(join(workspace, "hello.txt"))
    } finally {
      await monolith.stop()
    }
  }, 90_000)

  it(`runs ${20 * 3 + AGENT_RUNS} workflows at once through both APIs with one worker SIGKILLed mid-flight; all complete, logs gap-free, no node twice, SSE across replicas`, async () => {
    const apis = [apiA, apiB] as const
    const other = (i: number) => apis[(i + 1) % 2]!
    const kinds: Array<Kind> = Array.from({ length: 20 }, () => ["linear", "parallel", "gated"] as const).flat()
    const expected = (kind: Kind, i: number) =>
      kind === "linear" ? { out: i + LINEAR_STEPS } : kind === "parallel" ? { out: "abcd" } : kind === "gated" ? { out: { decision: "approved" } } : { result: "I wrote hello.txt." }

    const runs: Array<{ readonly kind: Kind; readonly runId: string; readonly via: number; readonly index: number }> = []
    const watched = new Map<string, Promise<Array<SseEvent>>>()
    let kill: { readonly nodesCompleted: number; readonly runsCompleted: number; readonly at: number } | undefined
    const started = Date.now()
    const completedRuns = async () => {
      const [row] = await queryDatabase<{ nodes: string; runs: string }>(
        d.databaseUrl,
        "SELECT count(*) FILTER (WHERE type = 'node:completed') AS nodes, count(*) FILTER (WHERE type = 'run:completed') AS runs FROM run_events"
      )
      return { nodes: Number(row!.nodes), runs: Number(row!.runs) }
    }
    const before = await completedRuns()

    await timed(`${kinds.length + AGENT_RUNS} runs, a worker SIGKILLed`, async () => {
      // Everything at once: the runs (alternating replicas), gate approvals through the other replica.
      const load = Promise.all(
        kinds.map(async (kind, index) => {
          const via = index % 2
          const runId = await startRun(apis[via]!, ids[kind], kind === "linear" ? { n: index } : undefined)
          runs.push({ kind, runId, via, index })
          // An SSE client on api A follows a few runs started through api B from their start.
          if (via === 1 && index < 12) watched.set(runId, followWithEventSource(apiA.url, runId))
          if (kind === "gated") await approveWhenPaused(other(via), runId)
          expect(await ended(other(via), runId), `${kind} run ${runId}`).toBe("completed")
        })
      )
      // Agent runs one after another (a worker replays the cassette's calls in order, so concurrent
      // agent runs on one worker would take each other's answers), beside the load. Each must
      // write hello.txt in the remote daemon's workspace anew.
      const agents = (async () => {
        for (let i = 0; i < AGENT_RUNS; i++) {
          const via = i % 2
          const runId = await startRun(apis[via]!, ids.agent)
          runs.push({ kind: "agent", runId, via, index: i })
          if (via === 1 && i < 2) watched.set(runId, followWithEventSource(apiA.url, runId))
          expect(await ended(other(via), runId), `agent run ${runId}`).toBe("completed")
          expect(readFileSync(join(workspace, "hello.txt"), "utf8"), `agent run ${runId}`).toBe("written by the agent")
          unlinkSync(join(workspace, "hello.txt"))
        }
      })()
      // SIGKILL the first worker once work is well under way (and far from over).
      const killer = (async () => {
        const progress = await waitFor(
          async () => {
            const now = await completedRuns()
            await new Promise((r) => setTimeout(r, 50))
            return now.nodes - before.nodes >= 60 ? { nodes: now.nodes - before.nodes, runs: now.runs - before.runs } : undefined
          },
          "work under way",
          60_000
        )
        const at = Date.now()
        await workers[0]!.stop("SIGKILL")
        kill = { nodesCompleted: progress.nodes, runsCompleted: progress.runs, at }
      })()
      await Promise.all([load, agents, killer])
    })

    const total = kinds.length + AGENT_RUNS
    expect(runs).toHaveLength(total)
    expect(kill).toBeDefined()
    // The kill landed mid-flight: most runs had not completed yet.
    expect(kill!.runsCompleted).toBeLessThan(total / 2)
    expect(workers[0]!.process.signalCode).toBe("SIGKILL")

    // Every run completed (asked of both replicas), with a gap-free stored log.
    const logs = await storedEvents(d.databaseUrl)
    let restartedNodes = 0
    for (const { index, kind, runId, via } of runs) {
      expect((await apis[via]!.api("GET", `/runs/${runId}`)).json.status).toBe("completed")
      const log = logs.get(runId)!
      const completed = checkLog(runId, log)
      expect(new Set(completed).size, `${kind} run ${runId}`).toBe(nodeCount[kind])
      expect(log.at(-1)!.payload.outputs, `${kind} run ${runId}`).toEqual(expected(kind, index))
      const starts = log.filter((e) => e.type === "node:started").length
      restartedNodes += starts - completed.length
      if (kind === "agent") {
        const result = log.find((e) => e.type === "agent:tool_result")!.payload
        expect(result).toMatchObject({ success: true, outputSummary: "wrote 20 bytes to hello.txt" })
      }
    }

    // The kill hit live work: jobs the dead worker held were taken over by the other one.
    const takenOver = await takenOverJobs(d.queuePrefix)
    expect(takenOver.length, "jobs taken over from the killed worker").toBeGreaterThan(0)

    // The SSE client on api A saw the whole stream of each run started through api B.
    expect(watched.size).toBeGreaterThanOrEqual(6)
    for (const [runId, following] of watched) {
      const events = await following
      const log = logs.get(runId)!
      expect(events.map((e) => e.id)).toEqual(log.map((e) => e.seq))
      expect(events.map((e) => e.type)).toEqual(log.map((e) => e.type))
      expect(events.map((e) => e.data)).toEqual(log.map((e) => e.payload))
    }

    const completedAt = runs.map(({ runId }) => Date.parse(logs.get(runId)!.at(-1)!.payload.timestamp as string))
    const afterKill = completedAt.filter((t) => t > kill!.at).sort((a, b) => a - b)
    timings.push(
      `  worker 1 SIGKILLed ${kill!.at - started} ms after the first start; ${afterKill.length} runs completed after it, ` +
        `the last ${Math.max(...completedAt) - kill!.at} ms after it (50th/90th percentile: ${afterKill[Math.floor(afterKill.length / 2)]! - kill!.at}/${afterKill[Math.floor(afterKill.length * 0.9)]! - kill!.at} ms; ` +
        // A kill between a step's commit and the offer of its jobs leaves no job to take over; the
        // workers' sweep offers the jobs of a run silent for --stale-run-ms (5 s here) again; jobs
        // the dead worker held are taken over after --job-lock-ms.
        `${afterKill.filter((t) => t - kill!.at > 6_000).length} of them more than 6 s after it)`
    )
    timings.push(
      `  ${total} runs (${kinds.length} linear/fan-out/gated at once, ${AGENT_RUNS} agent runs in turn) in ${Date.now() - started} ms; ` +
        `worker 1 SIGKILLed after ${kill!.nodesCompleted} node completions, ${kill!.runsCompleted}/${total} runs completed; ` +
        `jobs taken over from it: ${takenOver.length} (${[...new Set(takenOver.map((j) => j.name))].join(", ")}); ` +
        `node attempts started again: ${restartedNodes}; SSE on api A followed ${watched.size} runs of api B`
    )
  }, 200_000)

  it("no secret is in Postgres at rest, Redis, the stored events, exported YAML, any HTTP response or SSE stream", async () => {
    // Exported YAML of every workflow, through both replicas (recorded with the other responses too).
    for (const [kind, workflowId] of Object.entries(ids)) {
      for (const api of [apiA, apiB]) {
        const exported = await api.api("GET", `/workflows/${workflowId}/export`)
        expect(exported.status, exported.text).toBe(200)
        expect(exported.text).toContain("schema_version")
        expect(describeFindings(scanner.text("yaml", `${kind} workflow export via ${api.url}`, exported.text))).toBe("no leaks")
      }
    }
    const store = await scanner.postgres(d.databaseUrl)
    expect(describeFindings(store.findings)).toBe("no leaks")
    // The scan read what the runs left: events, runs, workflows, and the key rows (but for their ciphertext).
    expect(store.rowsByTable.run_events).toBeGreaterThan(500)
    expect(store.rowsByTable.provider_keys).toBe(2)
    expect(store.skipped).toEqual(expect.arrayContaining(["provider_keys.ciphertext", "provider_keys.nonce"]))

    const logs = await storedEvents(d.databaseUrl)
    const events = [...logs].flatMap(([runId, log]) => scanner.value("events", `run ${runId}`, log))
    expect(describeFindings(events)).toBe("no leaks")

    const redis = await scanner.redis(redisUrl, [`${d.queuePrefix}*`])
    expect(describeFindings(redis.findings)).toBe("no leaks")
    expect(redis.jobs, "BullMQ jobs scanned").toBeGreaterThan(100)

    const http = await scanner.http(recorder)
    expect(describeFindings(http)).toBe("no leaks")
    const open = recorder.exchanges.filter((x) => !x.done).map((x) => `${x.method} ${x.url}`)
    if (open.length > 0) console.log(`leak scan: ${open.length} response(s) still open, scanned as far as they came:\n  ${open.join("\n  ")}`)
    const sse = recorder.exchanges.filter((x) => x.sse)
    expect(sse.length, "SSE streams recorded").toBeGreaterThanOrEqual(9)
    expect(sse.some((x) => x.body.includes("event: run:completed"))).toBe(true)
    expect(recorder.exchanges.some((x) => x.url.endsWith("/keys") && x.body.includes("anthropic"))).toBe(true)
  }, 180_000)

  it("with the gateway gone, agents get tool_unavailable (no hang); SIGTERM stops every process with exit 0", async () => {
    expect(await gateway.stop("SIGTERM")).toBe(0)
    expect(gateway.output()).not.toMatch(/error|Error/)
    await waitFor(async () => (/lost the connection to the gateway/.test(daemon.output()) ? true : undefined), "the daemon to notice", 15_000)

    const runId = await startRun(apiA, ids.agent)
    expect(await ended(apiB, runId, 60_000)).toBe("failed")
    const log = (await storedEvents(d.databaseUrl)).get(runId)!
    const failures = log.filter((e) => e.type === "node:failed")
    expect(failures.length).toBeGreaterThan(0)
    expect(failures.at(-1)!.payload.error).toMatchObject({ code: "tool_unavailable" })
    expect(JSON.stringify(failures.at(-1)!.payload.error)).toContain("no tools daemon named 'default' is connected")
    expect(log.at(-1)!.type).toBe("run:failed")

    const codes = await Promise.all([apiA, apiB, workers[1]!, daemon].map((p) => p.stop("SIGTERM")))
    expect(codes).toEqual([0, 0, 0, 0])
    // Everything every process printed, the SIGKILLed worker's too: no secret in it.
    const outputs = { "api A": apiA.output(), "api B": apiB.output(), "worker 1": workers[0]!.output(), "worker 2": workers[1]!.output(), gateway: gateway.output(), daemon: daemon.output(), ...shortLived }
    expect(describeFindings(scanner.logs(outputs))).toBe("no leaks")
    expect(Object.values(outputs).join("\n")).toMatch(/keys: +AES-256-GCM encrypted in Postgres \(master key [0-9a-f]{16}\)/)
  }, 90_000)
})

describe("relavium server gateway refuses to start without what it needs", () => {
  it("an unreachable NATS is named, with its URL (password masked), on one line; exit 1", async () => {
    const result = await runRelavium(["server", "gateway", "--port", "0", "--nats-url", "nats://relavium:s3cret@127.0.0.1:1"], {
      RELAVIUM_TOKEN: testToken
    })
    expect(result.status, result.output).toBe(1)
    expect(result.output.trim().split("\n")).toHaveLength(1)
    expect(result.output).toMatch(/^relavium server gateway: cannot reach NATS at nats:\/\/\*\*\*@127\.0\.0\.1:1: /)
    expect(result.output).not.toContain("s3cret")
  })

  it("missing settings are named (exit 2)", async () => {
    const [none, shortToken] = await Promise.all([
      runRelavium(["server", "gateway"]),
      runRelavium(["server", "gateway", "--nats-url", natsUrl], { RELAVIUM_TOKEN: "short" })
    ])
    expect(none.status).toBe(2)
    expect(none.output).toBe(
      "relavium server gateway: missing --token (or RELAVIUM_TOKEN): the bearer token daemons must present; --nats-url (or RELAVIUM_NATS_URL): workers reach the gateway through NATS\n"
    )
    expect(shortToken.status).toBe(2)
    expect(shortToken.output).toBe("relavium server gateway: --token (or RELAVIUM_TOKEN) must be at least 16 characters\n")
  })
})

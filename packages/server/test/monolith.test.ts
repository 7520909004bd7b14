/**
 * End to end over real HTTPS on loopback against `relavium monolith` child
 * processes: the API, run events over SSE with the stock `eventsource`
 * client, gates, reconnection with Last-Event-ID, a SIGKILL and restart,
 * authentication, bad input, the one-monolith-per-directory lock, and no
 * secret (provider keys, the token) in the SQLite store, any response, SSE
 * stream or the monolith's output (test/support/leaks.ts).
 */
import { randomBytes } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { spawn } from "node:child_process"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { monolithBinary } from "./support/buildMonolith.js"
import { chainWorkflow, collect, exited, type Monolith, type SseEvent, startMonolith } from "./support/monolith.js"
import { describeFindings, type FetchRecorder, LeakScanner, recordFetch, textSecret } from "../../../test/support/leaks.js"

const root = join(__dirname, "../../..")
const approvalGate = readFileSync(join(root, "examples/approval-gate.relavium.yaml"), "utf8")
const parallelMerge = readFileSync(join(root, "examples/parallel-merge.relavium.yaml"), "utf8")

const upload = async (m: Monolith, yaml: string, file = "test.relavium.yaml") => {
  const response = await m.api("POST", "/workflows", { yaml, file })
  expect(response.status, response.text).toBe(201)
  return response.json.workflowId as string
}

const startRun = async (m: Monolith, workflowId: string, inputs?: Record<string, unknown>) => {
  const response = await m.api("POST", "/runs", { workflowId, ...(inputs ? { inputs } : {}) })
  expect(response.status, response.text).toBe(201)
  return response.json.runId as string
}

/** The run's stored event log, read back over SSE once the run has ended. */
const storedLog = async (m: Monolith, runId: string) => collect(m.events(runId), () => false)

const approvePendingGates = async (m: Monolith, runId: string) => {
  const gates = await m.api("GET", `/gates?runId=${runId}`)
  for (const gate of gates.json as Array<{ gateId: string }>) {
    const decided = await m.api("POST", `/runs/${runId}/gates/${encodeURIComponent(gate.gateId)}/approve`, { comment: "ok" })
    expect(decided.status, decided.text).toBe(200)
  }
  return (gates.json as Array<unknown>).length
}

const waitFor = async <A>(probe: () => Promise<A | undefined>, what: string, timeoutMs = 10_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const dirs: Array<string> = []
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "relavium-monolith-"))
  dirs.push(dir)
  return dir
}

beforeAll(async () => {
  await monolithBinary()
}, 60_000)

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

const writeOnlyKey = "sk-test-0123456789-never-shown"

describe("relavium monolith", () => {
  let m: Monolith
  let dataDir: string
  // Every response the client gets (API and SSE), for the leak scan.
  let recorder: FetchRecorder

  beforeAll(async () => {
    dataDir = freshDir()
    m = await startMonolith(dataDir, [], {
      wrapFetch: (base) => {
        recorder = recordFetch(base as unknown as typeof fetch)
        return recorder.fetch as unknown as typeof base
      }
    })
  }, 30_000)

  afterAll(async () => {
    await m?.stop()
  })

  it("creates its token (0600) and certificate in the data directory and serves health without a token", async () => {
    expect(statSync(join(dataDir, "monolith.token")).mode & 0o777).toBe(0o600)
    expect(statSync(join(dataDir, "monolith-key.pem")).mode & 0o777).toBe(0o600)
    expect(m.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const health = await m.api("GET", "/health", undefined, { token: null })
    expect(health).toMatchObject({ status: 200, json: { status: "ok" } })
    expect((await m.api("GET", "/openapi.json", undefined, { token: null })).status).toBe(401)
    const openapi = await m.api("GET", "/openapi.json")
    expect(openapi.status).toBe(200)
    expect(Object.keys(openapi.json.paths)).toContain("/runs/{runId}/events")
  })

  it("starts a run, streams its events over SSE, takes a gate decision and completes", async () => {
    const workflowId = await upload(m, approvalGate, "approval-gate.relavium.yaml")
    const runId = await startRun(m, workflowId, { version: "2.0.1" })
    const source = m.events(runId)
    const seen: Array<SseEvent> = []
    const done = collect(source, (received) => {
      seen.length = 0
      seen.push(...received)
      return false
    })
    const gate = await waitFor(async () => seen.find((e) => e.type === "human_gate:paused"), "the gate to pause")
    const summary = await m.api("GET", `/runs/${runId}`)
    expect(summary.json).toMatchObject({ status: "waiting", workflowName: "approval-gate", inputs: { version: "2.0.1" } })
    const decided = await m.api("POST", `/runs/${runId}/gates/${encodeURIComponent(String(gate.data.gateId))}/approve`)
    expect(decided).toMatchObject({ status: 200, json: { decision: "approved" } })
    const events = await done
    expect(events.at(-1)!.type).toBe("run:completed")
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i))
    for (const e of events) expect(e.data.sequenceNumber).toBe(e.id)
    expect(events.at(-1)!.data.outputs).toEqual({ result: { released: "2.0.1", approved: "approved" } })
    const after = await m.api("GET", `/runs/${runId}`)
    expect(after.json).toMatchObject({ status: "completed", pendingGates: [] })
    // Deciding again changes nothing; a finished stream answers 204 (EventSource stops reconnecting).
    const list = await m.api("GET", "/runs?status=completed&limit=1")
    expect(list.json.runs).toHaveLength(1)
  })

  it("gives exactly the stored log when the SSE connection is dropped at many points and resumed with Last-Event-ID", async () => {
    const workflowId = await upload(m, chainWorkflow("reconnect-chain", 40, 10))
    const runId = await startRun(m, workflowId)
    const received: Array<SseEvent> = []
    let stopApproving = false
    const approver = (async () => {
      while (!stopApproving) {
        await approvePendingGates(m, runId)
        await new Promise((r) => setTimeout(r, 30))
      }
    })()
    let connections = 0
    let take = 1
    while (received.at(-1)?.type !== "run:completed") {
      const lastEventId = received.at(-1)?.id
      const limit = take
      const chunk = await collect(m.events(runId, lastEventId === undefined ? {} : { lastEventId }), (got) => got.length >= limit)
      received.push(...chunk)
      connections += 1
      take = (take % 4) + 1
    }
    stopApproving = true
    await approver
    expect(connections).toBeGreaterThan(20)
    const stored = await storedLog(m, runId)
    expect(received.map((e) => e.data)).toEqual(stored.map((e) => e.data))
    expect(received.map((e) => e.id)).toEqual(stored.map((_, i) => i))
    // After the terminal event there is nothing more: 204, and `?after=` is honoured too.
    const ended = await m.api("GET", `/runs/${runId}/events?after=${stored.at(-1)!.id}`)
    expect(ended.status).toBe(204)
  })

  it("runs the parallel example and lists, versions and exports workflows", async () => {
    const workflowId = await upload(m, parallelMerge, "parallel-merge.relavium.yaml")
    const runId = await startRun(m, workflowId)
    const events = await collect(m.events(runId), () => false)
    expect(events.at(-1)!.type).toBe("run:completed")
    const secretWorkflow = approvalGate.replace(
      "    - { name: version,",
      "    - { name: deploy_token, type: secret, default: hunter2-secret-value }\n    - { name: version,"
    )
    const v2 = await upload(m, secretWorkflow, "approval-gate.relavium.yaml")
    const versions = await m.api("GET", `/workflows/${v2}/versions`)
    expect(versions.json.map((w: { version: number }) => w.version)).toEqual([1, 2])
    const exported = await m.api("GET", `/workflows/${v2}/export`)
    expect(exported.status).toBe(200)
    expect(exported.text).toContain("deploy_token")
    expect(exported.text).not.toContain("hunter2-secret-value")
    const validation = await m.api("POST", "/workflows/validate", { yaml: "schema_version: '1.0'\nworkflow: { id: x }\n" })
    expect(validation.json.valid).toBe(false)
    expect(validation.json.issues[0]).toMatchObject({ line: expect.any(Number), column: expect.any(Number) })
  })

  it("keeps keys write-only and lists models", async () => {
    const secret = writeOnlyKey
    expect((await m.api("PUT", "/keys/openrouter", { key: secret })).status).toBe(204)
    const listed = await m.api("GET", "/keys")
    expect(listed.json.providers).toContain("openrouter")
    expect(listed.text).not.toContain(secret)
    expect((await m.api("DELETE", "/keys/openrouter")).status).toBe(204)
    expect((await m.api("DELETE", "/keys/openrouter")).status).toBe(404)
    expect((await m.api("PUT", "/keys/Not A Name", { key: "x" })).status).toBe(400)
    expect(m.output()).not.toContain(secret)
    const models = await m.api("GET", "/models")
    expect(models.status).toBe(200)
    expect(models.json.length).toBeGreaterThan(0)
  })

  it("no provider key or token is in the SQLite store, any response, SSE stream, export or the monolith's output", async () => {
    const anthropicKey = `sk-ant-api03-${randomBytes(24).toString("base64url")}`
    expect((await m.api("PUT", "/keys/anthropic", { key: anthropicKey })).status).toBe(204)
    // A run after the keys are set, so its events and rows are there to scan.
    const workflowId = await upload(m, parallelMerge, "parallel-merge.relavium.yaml")
    const events = await collect(m.events(await startRun(m, workflowId)), () => false)
    expect(events.at(-1)!.type).toBe("run:completed")
    const exported = await m.api("GET", `/workflows/${workflowId}/export`)
    expect(exported.status).toBe(200)

    const scanner = new LeakScanner([
      textSecret("anthropic key", anthropicKey),
      textSecret("deleted openrouter key", writeOnlyKey),
      textSecret("monolith token", m.token)
    ])
    const store = scanner.sqlite(join(dataDir, "relavium.db"))
    expect(describeFindings(store.findings)).toBe("no leaks")
    expect(store.rowsByTable.run_events).toBeGreaterThanOrEqual(events.length)
    expect(describeFindings(scanner.text("yaml", "parallel-merge export", exported.text))).toBe("no leaks")
    expect(describeFindings(scanner.value("events", "SSE events", events))).toBe("no leaks")
    expect(describeFindings(await scanner.http(recorder))).toBe("no leaks")
    // The recorder saw this run's stream to its end.
    expect(recorder.exchanges.some((x) => x.sse && x.body.includes("event: run:completed"))).toBe(true)
    expect(describeFindings(scanner.logs({ monolith: m.output() }))).toBe("no leaks")
  })

  it("refuses missing or wrong tokens with 401", async () => {
    for (const path of ["/runs", "/workflows", "/keys", "/ready", "/gates", "/runs/x/events"]) {
      expect((await m.api("GET", path, undefined, { token: null })).status, path).toBe(401)
      expect((await m.api("GET", path, undefined, { token: `${m.token}x` })).status, path).toBe(401)
    }
    expect((await m.api("GET", "/ready")).status).toBe(200)
  })

  it("answers bad input with located 400s, unknown things with 404, oversized bodies with 413", async () => {
    const notString = await m.api("POST", "/workflows", { yaml: 5 })
    expect(notString.status).toBe(400)
    expect(notString.json.issues[0].path).toEqual(["yaml"])
    const invalidYaml = await m.api("POST", "/workflows", { yaml: "schema_version: '1.0'\nworkflow:\n  id: x\n  nodez: []\n" })
    expect(invalidYaml.status).toBe(400)
    expect(invalidYaml.json.message).toMatch(/:4:3 workflow\.nodez: unknown key/)
    expect(invalidYaml.json.issues).toContainEqual(expect.objectContaining({ path: "workflow.nodez", line: 4, column: 3 }))
    const notJson = await m.api("POST", "/runs", undefined, { raw: "{not json" })
    expect(notJson.status).toBe(400)
    expect(notJson.json.message).toMatch(/JSON/)
    const badInputs = await m.api("POST", "/runs", { workflowId: await upload(m, approvalGate), inputs: { version: "x" } })
    expect(badInputs.status).toBe(400)
    expect(badInputs.json.message).toMatch(/version/)
    const badLimit = await m.api("GET", "/runs?limit=0")
    expect(badLimit.status).toBe(400)
    expect(badLimit.json.issues[0].path).toEqual(["limit"])
    const badLastEventId = await m.api("GET", "/runs/x/events?after=abc")
    expect(badLastEventId.status).toBe(400)
    expect((await m.api("GET", "/no/such/route")).status).toBe(404)
    expect((await m.api("GET", "/runs/no-such-run")).status).toBe(404)
    expect((await m.api("GET", "/runs/no-such-run/events")).status).toBe(404)
    expect((await m.api("POST", "/runs/no-such-run/cancel")).status).toBe(404)
    expect((await m.api("POST", "/runs", { workflowId: "no-such-workflow" })).status).toBe(404)
    const before = await m.api("GET", "/workflows")
    const huge = await m.api("POST", "/workflows", { yaml: "x".repeat(5 * 1024 * 1024) })
    expect(huge.status).toBe(413)
    const afterHuge = await m.api("GET", "/workflows")
    expect(afterHuge.json).toEqual(before.json)
  })

  it("refuses a second monolith on the same data directory", async () => {
    const binary = await monolithBinary()
    const second = spawn(process.execPath, [binary, "monolith", "--data-dir", dataDir, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    second.stderr!.on("data", (c) => (stderr += c))
    const code = await exited(second)
    expect(code).not.toBe(0)
    expect(stderr).toContain(dataDir)
    expect(stderr).toContain(`pid ${m.process.pid}`)
    expect((await m.api("GET", "/health")).status).toBe(200)
  })
})

describe("relavium monolith restarts", () => {
  it("continues a run after SIGKILL mid-run and takes over the stale lock", async () => {
    const dataDir = freshDir()
    const first = await startMonolith(dataDir)
    const workflowId = await upload(first, chainWorkflow("crash-chain", 150))
    const runId = await startRun(first, workflowId)
    const before = await collect(first.events(runId), (got) => got.length >= 25)
    first.process.kill("SIGKILL")
    await exited(first.process)
    await first.stop()
    expect(before.at(-1)!.type).not.toBe("run:completed")
    expect(existsSync(join(dataDir, "monolith.lock"))).toBe(true)

    const second = await startMonolith(dataDir)
    try {
      const rest = await collect(second.events(runId, { lastEventId: before.at(-1)!.id }), () => false)
      expect(rest.at(-1)!.type).toBe("run:completed")
      const all = [...before, ...rest]
      expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i))
      const summary = await second.api("GET", `/runs/${runId}`)
      expect(summary.json.status).toBe("completed")
      expect(summary.json.outputs).toEqual({ result: { n: 150 } })
      // The certificate and token were reused.
      expect(second.token).toBe(first.token)
    } finally {
      const code = await second.stop("SIGTERM")
      expect(code).toBe(0)
      expect(existsSync(join(dataDir, "monolith.lock"))).toBe(false)
    }
  })
})

/**
 * Forking and retrying a run in the distributed mode: a `server api` process takes `POST /runs/{runId}/fork`
 * (it writes the new run's first events and enqueues its first job) and a `server worker` process
 * executes it, against the real Postgres, Redis and NATS on loopback (a fresh database and
 * prefixes of its own). The new run reuses the recorded outputs of the nodes upstream of the fork
 * (`node:completed` with `reusedFrom`, as stored in Postgres) and runs the rest on the worker.
 */
import { randomBytes } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type ApiProcess, type CloudProcess, createDeployment, type Deployment, type SseEvent, startApi, startWorker } from "./support/cloud.js"
import { storedEvents } from "./support/distributed.js"

const wf = (body: string) => `schema_version: '1.0'\nworkflow:\n${body.replace(/^/gm, "  ")}\n`

const chain = wf(`id: e2e-fork
inputs:
  - { name: k, type: number, default: 1 }
nodes:
  - { id: s1, type: transform, transform: '1' }
  - { id: s2, type: transform, transform: 'run.outputs["s1"] + 1' }
  - { id: s3, type: transform, transform: 'inputs.k >= 0 ? run.outputs["s2"] * inputs.k : undefined.negative' }
  - { id: s4, type: transform, transform: 'run.outputs["s3"] + 1' }
  - { id: s5, type: transform, transform: 'run.outputs["s4"] * 10' }
  - { id: out, type: output }
edges:
  - { from: s1, to: s2 }
  - { from: s2, to: s3 }
  - { from: s3, to: s4 }
  - { from: s4, to: s5 }
  - { from: s5, to: out }`)

const masterKey = randomBytes(32).toString("base64")
let d: Deployment
let api: ApiProcess
let worker: CloudProcess

beforeAll(async () => {
  d = await createDeployment("fork")
  ;[api, worker] = await Promise.all([
    startApi(d, { env: { RELAVIUM_MASTER_KEY: masterKey } }),
    startWorker(d, { env: { RELAVIUM_MASTER_KEY: masterKey } })
  ])
}, 120_000)

afterAll(async () => {
  await Promise.all([api?.stop("SIGKILL"), worker?.stop("SIGKILL")])
  await d?.dispose()
})

const nodeIds = (events: ReadonlyArray<SseEvent>, pick: (e: SseEvent) => boolean) => events.filter(pick).map((e) => e.data.nodeId)

describe("runs fork and retry in the distributed mode (api + worker processes)", () => {
  it("the api forks an ended run from s3 with a new input; the worker runs s3 to the end, s1 and s2 are reused", async () => {
    const uploaded = await api.api("POST", "/workflows", { yaml: chain, file: "fork.relavium.yaml" })
    expect(uploaded.status, uploaded.text).toBe(201)
    const started = await api.api("POST", "/runs", { workflowId: uploaded.json.workflowId, inputs: { k: 2 } })
    expect(started.status, started.text).toBe(201)
    const original = await api.events(started.json.runId)
    expect(original.at(-1)!.data).toMatchObject({ type: "run:completed", outputs: { out: 50 } })

    const forked = await api.api("POST", `/runs/${started.json.runId}/fork`, { from: "s3", inputs: { k: 5 } })
    expect(forked.status, `${forked.text}\n${api.output().slice(-2000)}`).toBe(201)
    const events = await api.events(forked.json.runId)
    expect(events[0]!.data).toMatchObject({
      type: "run:started",
      executionMode: "cloud",
      inputs: { k: 5 },
      forkedFrom: { runId: started.json.runId, nodeId: "s3", kind: "fork" }
    })
    expect(nodeIds(events, (e) => e.type === "node:completed" && e.data.reusedFrom === started.json.runId)).toEqual(["s1", "s2"])
    expect(nodeIds(events, (e) => e.type === "node:started")).toEqual(["s3", "s4", "s5", "out"])
    expect(events.at(-1)!.data).toMatchObject({ type: "run:completed", outputs: { out: 110 } })

    // As stored in Postgres: the same log, gap-free.
    const stored = (await storedEvents(d.databaseUrl)).get(forked.json.runId) ?? []
    expect(stored.map((e) => e.type)).toEqual(events.map((e) => e.type))
    expect(stored.map((e) => e.seq)).toEqual(events.map((_, i) => i))
    expect(stored.filter((e) => e.type === "node:completed").map((e) => (e.payload as { reusedFrom?: string }).reusedFrom)).toEqual([
      started.json.runId,
      started.json.runId,
      undefined,
      undefined,
      undefined,
      undefined
    ])

    // Unknown runs and nodes are refused by the api, and nothing is enqueued for them.
    const runsBefore = (await api.api("GET", "/runs?limit=500")).json.runs.length
    expect((await api.api("POST", "/runs/no-such-run/fork", { from: "s3" })).status).toBe(404)
    const unknownNode = await api.api("POST", `/runs/${started.json.runId}/fork`, { from: "s9" })
    expect(unknownNode.status).toBe(400)
    expect(unknownNode.json.message).toContain("has no node 's9'")
    expect((await api.api("GET", "/runs?limit=500")).json.runs.length).toBe(runsBefore)
  }, 120_000)

  it("the api retries a failed run; the worker runs its failed node again, the nodes before it are reused", async () => {
    const uploaded = await api.api("POST", "/workflows", { yaml: chain, file: "fork.relavium.yaml" })
    const started = await api.api("POST", "/runs", { workflowId: uploaded.json.workflowId, inputs: { k: -1 } })
    expect(started.status, started.text).toBe(201)
    expect((await api.events(started.json.runId)).at(-1)!.data).toMatchObject({ type: "run:failed", error: { nodeId: "s3" } })

    const retried = await api.api("POST", `/runs/${started.json.runId}/retry`)
    expect(retried.status, retried.text).toBe(201)
    const events = await api.events(retried.json.runId)
    expect(events[0]!.data).toMatchObject({ type: "run:started", inputs: { k: -1 }, forkedFrom: { runId: started.json.runId, kind: "retry" } })
    expect(nodeIds(events, (e) => e.type === "node:completed" && e.data.reusedFrom === started.json.runId)).toEqual(["s1", "s2"])
    expect(nodeIds(events, (e) => e.type === "node:started")).toEqual(["s3"])
    expect(events.at(-1)!.data).toMatchObject({ type: "run:failed", error: { nodeId: "s3" } })
  }, 120_000)
})

/**
 * Triggers on a real `relavium monolith` process (HTTPS, SQLite, its local queue): a schedule
 * firing every second starts one run per fire — each with the run id derived from the trigger and
 * its fire time, every second, none twice — and a signed webhook delivery starts a run, with the
 * secret sealed under the key the monolith keeps in its data directory (0600), never in the
 * database file.
 */
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Redacted } from "effect"
import { Agent, fetch as undiciFetch } from "undici"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { TriggerScheduler, WebhookSignature } from "../src/index.js"
import { type Monolith, startMonolith } from "./support/monolith.js"

const workflow = `schema_version: '1.0'
workflow:
  id: monolith-triggered
  inputs:
    - { name: note, type: string, required: true }
  nodes:
    - { id: start, type: input }
    - { id: result, type: output }
  edges:
    - { from: start, to: result }
`

let dataDir: string
let m: Monolith
let workflowId: string

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "relavium-monolith-triggers-"))
  m = await startMonolith(dataDir)
  const uploaded = await m.api("POST", "/workflows", { yaml: workflow })
  expect(uploaded.status, uploaded.text).toBe(201)
  workflowId = uploaded.json.workflowId
}, 60_000)

afterAll(async () => {
  await m?.stop()
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
})

const runIds = async () =>
  ((await m.api("GET", "/runs?limit=500")).json.runs as Array<{ runId: string; workflowId: string }>)
    .filter((r) => r.workflowId === workflowId)
    .map((r) => r.runId)

describe("triggers on relavium monolith", { timeout: 120_000 }, () => {
  it("a seconds schedule starts one run per fire on the local queue, every second", async () => {
    const createdAt = Math.floor(Date.now() / 1000) * 1000
    const created = await m.api("POST", "/triggers", { workflowId, kind: "schedule", name: "tick", cron: "* * * * * *", inputs: { note: "tick" } })
    expect(created.status, created.text).toBe(201)
    const triggerId = created.json.trigger.id as string
    const deadline = Date.now() + 30_000
    while ((await runIds()).length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
    expect((await m.api("DELETE", `/triggers/${triggerId}`)).status).toBe(204)
    const stoppedAt = Date.now() + 2000
    const ids = new Set(await runIds())
    expect(ids.size).toBeGreaterThanOrEqual(4)
    // Which fire time each run belongs to: its id is derived from the trigger and that time.
    const fires: Array<number> = []
    for (let t = createdAt; t <= stoppedAt; t += 1000) {
      if (ids.has(TriggerScheduler.fireRunId(triggerId, new Date(t).toISOString()))) fires.push(t)
    }
    expect(fires.length).toBe(ids.size)
    for (let i = 1; i < fires.length; i++) expect(fires[i]! - fires[i - 1]!).toBe(1000)
    const one = await m.api("GET", `/runs/${[...ids][0]}`)
    expect(one.json.inputs).toEqual({ note: "tick" })
  })

  it("a signed webhook delivery starts a run; the secret is sealed under the data directory's master key", async () => {
    const keyFile = join(dataDir, "monolith-master.key")
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    const created = await m.api("POST", "/triggers", { workflowId, kind: "webhook", name: "hook", inputTemplate: { note: "{{ ctx.body.note }}" } })
    expect(created.status, created.text).toBe(201)
    const secret = created.json.secret as string
    const triggerId = created.json.trigger.id as string
    const id = "msg_monolith_1"
    const timestamp = Math.floor(Date.now() / 1000)
    const body = JSON.stringify({ note: "hooked" })
    const dispatcher = new Agent({ connect: { ca: readFileSync(join(dataDir, "monolith-cert.pem"), "utf8") } })
    const response = await undiciFetch(`${m.url}/hooks/${triggerId}`, {
      method: "POST",
      dispatcher,
      headers: {
        "content-type": "application/json",
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": WebhookSignature.sign(Redacted.make(secret), id, timestamp, body)
      },
      body
    })
    expect(response.status).toBe(202)
    const { runId } = (await response.json()) as { runId: string }
    await dispatcher.close()
    const summary = await m.api("GET", `/runs/${runId}`)
    expect(summary.json.inputs).toEqual({ note: "hooked" })
    const stored = readdirSync(dataDir)
      .filter((f) => f.startsWith("relavium.db"))
      .map((f) => readFileSync(join(dataDir, f)).toString("latin1"))
      .join("")
    expect(stored).toContain(triggerId)
    expect(stored).not.toContain(secret.slice(6))
    expect(m.output()).not.toContain(secret.slice(6))
  })
})

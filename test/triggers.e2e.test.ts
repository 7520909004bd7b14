/**
 * Triggers on the distributed deployment, as OS processes on the real Postgres (as `relavium_app`,
 * under row-level security), Redis and NATS: one api replica and two workers.
 *
 * - A signed webhook delivery to the api starts one run, which the workers complete; the same
 *   delivery again answers the same run; a wrong signature starts nothing.
 * - A schedule firing every second, with both workers running the scheduler: each fire starts
 *   exactly one run (one delivery row per fire time, each naming a run that exists once); one
 *   worker is killed with SIGKILL between fires (half a second after one), and the fire times
 *   recorded from the first to the last have no gap: the other worker went on firing.
 * - The webhook secret is in no process output, no Redis key and no table column.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { randomBytes } from "node:crypto"
import { Redacted } from "effect"
import { WebhookSignature } from "@relavium/server"
import { type ApiProcess, type CloudProcess, createDeployment, type Deployment, dumpRedis, startApi, startWorker, waitFor } from "./support/cloud.js"
import { queryDatabase } from "./support/distributed.js"

const workflow = `schema_version: '1.0'
workflow:
  id: triggered
  inputs:
    - { name: note, type: string, required: true }
  nodes:
    - { id: start, type: input }
    - { id: result, type: output }
  edges:
    - { from: start, to: result }
`

const masterKey = randomBytes(32).toString("base64")

let d: Deployment
let api: ApiProcess
let workers: Array<CloudProcess> = []
let workflowId: string

const deliver = async (triggerId: string, secret: string, id: string, body: string) => {
  const timestamp = Math.floor(Date.now() / 1000)
  const response = await fetch(`${api.url}/hooks/${triggerId}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": WebhookSignature.sign(Redacted.make(secret), id, timestamp, body)
    },
    body
  })
  return { status: response.status, json: (await response.json()) as { runId?: string } }
}

beforeAll(async () => {
  d = await createDeployment("triggers")
  const env = { RELAVIUM_MASTER_KEY: masterKey }
  ;[api, ...workers] = await Promise.all([startApi(d, { env }), startWorker(d, { env }), startWorker(d, { env })])
  const uploaded = await api.api("POST", "/workflows", { yaml: workflow })
  expect(uploaded.status, uploaded.text).toBe(201)
  workflowId = uploaded.json.workflowId
}, 120_000)

afterAll(async () => {
  await Promise.all([api, ...workers].map((p) => p?.stop("SIGKILL")))
  await d?.dispose()
})

const deliveriesOf = (triggerId: string) =>
  queryDatabase<{ delivery_id: string; run_id: string }>(
    d.databaseUrl,
    `SELECT delivery_id, run_id FROM trigger_deliveries WHERE trigger_id = '${triggerId}' ORDER BY delivery_id`
  )

/** Waits for the next recorded fire, then half a second more. */
const betweenFires = async (triggerId: string) => {
  const seen = (await deliveriesOf(triggerId)).length
  await waitFor(async () => ((await deliveriesOf(triggerId)).length > seen ? true : undefined), "the next fire", 10_000)
  await new Promise((resolve) => setTimeout(resolve, 450))
}

describe("triggers on the distributed deployment", { timeout: 300_000 }, () => {
  it("a signed webhook delivery starts one run on the workers; a retry answers the same run; a bad signature none", async () => {
    const created = await api.api("POST", "/triggers", { workflowId, kind: "webhook", name: "hook", inputTemplate: { note: "{{ ctx.body.note }}" } })
    expect(created.status, created.text).toBe(201)
    const { id } = created.json.trigger as { id: string }
    const secret = created.json.secret as string
    const body = JSON.stringify({ note: "from a webhook" })
    const first = await deliver(id, secret, "msg_e2e_1", body)
    expect(first.status).toBe(202)
    const runId = first.json.runId!
    await waitFor(async () => ((await api.api("GET", `/runs/${runId}`)).json?.status === "completed" ? true : undefined), `${runId} completed`, 60_000)
    expect((await api.api("GET", `/runs/${runId}`)).json.outputs).toBeDefined()
    const again = await deliver(id, secret, "msg_e2e_1", body)
    expect(again).toMatchObject({ status: 202, json: { runId } })
    const forged = await deliver(id, `whsec_${randomBytes(32).toString("base64")}`, "msg_e2e_2", body)
    expect(forged.status).toBe(401)
    const runs = await queryDatabase<{ n: string }>(d.databaseUrl, `SELECT count(*)::text AS n FROM trigger_deliveries WHERE trigger_id = '${id}'`)
    expect(runs[0]!.n).toBe("1")
    // The secret is nowhere but in the creation answer.
    const tables = JSON.stringify(await queryDatabase(d.databaseUrl, `SELECT * FROM triggers`))
    expect(tables).not.toContain(secret.slice(6))
    expect(await dumpRedis(d.queuePrefix)).not.toContain(secret.slice(6))
    for (const p of [api, ...workers]) expect(p.output()).not.toContain(secret.slice(6))
  })

  it("two workers fire a seconds schedule once per fire; a worker killed between fires loses none", async () => {
    const created = await api.api("POST", "/triggers", { workflowId, kind: "schedule", name: "every second", cron: "* * * * * *", inputs: { note: "tick" } })
    expect(created.status, created.text).toBe(201)
    const { id } = created.json.trigger as { id: string }
    await waitFor(async () => ((await deliveriesOf(id)).length >= 4 ? true : undefined), "4 fires", 60_000)
    // Between fires: the schedulers fire just after each whole second; half a second after one was recorded, none is under way.
    await betweenFires(id)
    await workers[0]!.stop("SIGKILL")
    const afterKill = (await deliveriesOf(id)).length
    await waitFor(async () => ((await deliveriesOf(id)).length >= afterKill + 4 ? true : undefined), "4 more fires", 60_000)
    await betweenFires(id)
    await workers[1]!.stop("SIGTERM")
    const fires = await deliveriesOf(id)
    const started = await queryDatabase<{ run_id: string; delivery: string }>(
      d.databaseUrl,
      `SELECT run_id, payload->'trigger'->>'deliveryId' AS delivery FROM run_events
        WHERE seq = 0 AND payload->'trigger'->>'triggerId' = '${id}' ORDER BY 2`
    )
    const times = fires.map((f) => Date.parse(f.delivery_id))
    expect(times.length).toBeGreaterThanOrEqual(afterKill + 4)
    // Every second from the first fire to the last, each once.
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!, `after ${fires[i - 1]!.delivery_id}`).toBe(1000)
    // Each fire started exactly one run, the one it recorded.
    expect(started.map((r) => [r.delivery, r.run_id])).toEqual(fires.map((f) => [f.delivery_id, f.run_id]))
    const runs = await queryDatabase<{ n: string }>(
      d.databaseUrl,
      `SELECT count(*)::text AS n FROM runs WHERE run_id IN (${fires.map((f) => `'${f.run_id}'`).join(",")})`
    )
    expect(Number(runs[0]!.n)).toBe(fires.length)
  })
})


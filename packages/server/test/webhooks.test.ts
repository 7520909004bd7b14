/**
 * Webhook triggers over real HTTP on loopback (the whole `MonolithApi`, memory Tenancy and
 * Triggers, the local engine on SQLite): a correctly signed delivery starts exactly one run, with
 * the trigger on `run:started` and its inputs mapped from the body; every other delivery —
 * wrong secret, stale or future timestamp, a body changed after signing, missing headers, a body
 * that does not map to the workflow's inputs, an unknown trigger, an oversized body — is refused
 * and starts nothing; a repeated delivery id returns the first run's id; a rotation accepts both
 * secrets, then only the new one once the old one is dropped; the rate limit answers 429 with
 * Retry-After. The secret is in the creation and rotation answers only.
 */
import { Effect, Redacted } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AuditLog, forOrg, Tenancy } from "@relavium/ports"
import { WebhookSignature } from "../src/index.js"
import { call, startTenantServer, type TenantServer } from "./support/tenantServer.js"

const workflow = `schema_version: '1.0'
workflow:
  id: hook-target
  inputs:
    - { name: title, type: string, required: true }
    - { name: count, type: number, default: 1 }
  nodes:
    - { id: start, type: input }
    - { id: gate, type: human_gate, gate_type: approval, message_template: 'ship {{ inputs.title }}?' }
    - { id: result, type: output }
  edges:
    - { from: start, to: gate }
    - { from: gate, to: result }
`

let server: TenantServer
let dataDir: string
let orgId: string
let owner: string
let workflowId: string

const api = async (method: string, path: string, body?: unknown) => {
  const reply = await call(server, method, path, { authorization: `Bearer ${owner}`, body })
  return reply
}

const runCount = async () => (await api("GET", "/runs?limit=500")).json.runs.length as number

interface Delivery {
  readonly id?: string
  readonly timestamp?: number
  readonly body?: string
  readonly secrets?: ReadonlyArray<string>
  /** Sends this body instead of the signed one. */
  readonly sentBody?: string
  readonly headers?: Record<string, string>
}

const deliver = async (triggerId: string, d: Delivery) => {
  const id = d.id ?? `msg_${crypto.randomUUID()}`
  const timestamp = d.timestamp ?? Math.floor(Date.now() / 1000)
  const body = d.body ?? JSON.stringify({ issue: { title: "hello" }, count: 3 })
  const signature = (d.secrets ?? []).map((s) => WebhookSignature.sign(Redacted.make(s), id, timestamp, body)).join(" ")
  const response = await fetch(`${server.url}/hooks/${triggerId}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signature,
      ...d.headers
    },
    body: d.sentBody ?? body
  })
  const text = await response.text()
  return { status: response.status, text, json: text === "" ? undefined : JSON.parse(text), headers: response.headers, id }
}

const createHook = async (extra: Record<string, unknown> = {}) => {
  const created = await api("POST", "/triggers", {
    workflowId,
    kind: "webhook",
    name: "on issue",
    inputTemplate: { title: "{{ ctx.body.issue.title }}", count: "{{ ctx.body.count }}" },
    ...extra
  })
  expect(created.status, created.text).toBe(201)
  return { id: created.json.trigger.id as string, secret: created.json.secret as string, json: created.json }
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "relavium-webhooks-"))
  server = await startTenantServer({ dataDir })
  const made = await server.run(Effect.flatMap(Tenancy, (t) => t.createOrg("hooks", { email: "owner@hooks.test" })))
  orgId = made.org.id
  owner = Redacted.value(made.token.token)
  const uploaded = await api("POST", "/workflows", { yaml: workflow })
  expect(uploaded.status, uploaded.text).toBe(201)
  workflowId = uploaded.json.workflowId
}, 60_000)

afterAll(async () => {
  await server?.close()
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
})

describe("webhook triggers", () => {
  it("a correctly signed delivery starts exactly one run with the mapped inputs and the trigger; a repeat returns the same run", async () => {
    const hook = await createHook()
    expect(hook.secret).toMatch(/^whsec_/)
    expect(hook.json.trigger.hookPath).toBe(`/hooks/${hook.id}`)
    const before = await runCount()
    const first = await deliver(hook.id, { id: "msg_first", secrets: [hook.secret] })
    expect(first.status, first.text).toBe(202)
    const runId = first.json.runId as string
    expect(await runCount()).toBe(before + 1)
    const summary = await api("GET", `/runs/${runId}`)
    expect(summary.status).toBe(200)
    expect(summary.json.inputs).toEqual({ title: "hello", count: 3 })
    const events = await fetch(`${server.url}/runs/${runId}/events`, { headers: { authorization: `Bearer ${owner}` }, signal: AbortSignal.timeout(2000) })
      .then((r) => r.body!.getReader().read())
      .then((chunk) => new TextDecoder().decode(chunk.value))
      .catch(() => "")
    expect(events).toContain(`"trigger":{"triggerId":"${hook.id}","kind":"webhook","deliveryId":"msg_first"}`)
    // The sender retries the same delivery (same id, a new timestamp and signature): no second run.
    const again = await deliver(hook.id, { id: "msg_first", secrets: [hook.secret] })
    expect(again.status).toBe(202)
    expect(again.json.runId).toBe(runId)
    expect(await runCount()).toBe(before + 1)
    // The secret is in the creation answer only: not in the list, not in the audit trail.
    const listed = await api("GET", "/triggers")
    expect(listed.text).toContain(hook.id)
    expect(listed.text).not.toContain(hook.secret)
    const audit = await server.run(forOrg(orgId)(Effect.flatMap(AuditLog, (log) => log.list({ action: "trigger.create" }))))
    expect(audit.map((e) => e.target)).toContain(hook.id)
    expect(JSON.stringify(audit)).not.toContain(hook.secret)
  })

  it("refuses a wrong secret, a stale or future timestamp, a body changed after signing and missing headers, starting nothing", async () => {
    const hook = await createHook()
    const other = await createHook()
    const before = await runCount()
    const now = Math.floor(Date.now() / 1000)
    const refused = [
      await deliver(hook.id, { secrets: [other.secret] }),
      await deliver(hook.id, { secrets: [hook.secret], timestamp: now - 6 * 60 }),
      await deliver(hook.id, { secrets: [hook.secret], timestamp: now + 6 * 60 }),
      await deliver(hook.id, { secrets: [hook.secret], sentBody: JSON.stringify({ issue: { title: "HELLO" }, count: 3 }) }),
      await deliver(hook.id, { secrets: [hook.secret], sentBody: `${JSON.stringify({ issue: { title: "hello" }, count: 3 })} ` }),
      await deliver(hook.id, { secrets: [] }),
      await deliver(hook.id, { secrets: [hook.secret], headers: { "webhook-timestamp": "yesterday" } })
    ]
    for (const reply of refused) expect(reply.status, reply.text).toBe(401)
    expect(refused[1]!.json.message).toContain("replay")
    expect(refused[3]!.json.message).toContain("no webhook-signature matches")
    // A signature list where one entry is right is accepted (Standard Webhooks: any v1 matches).
    const mixed = await deliver(hook.id, { secrets: [other.secret, hook.secret] })
    expect(mixed.status, mixed.text).toBe(202)
    expect(await runCount()).toBe(before + 1)
    for (const reply of refused) expect(reply.text).not.toContain(hook.secret)
  })

  it("answers a body that does not map to the workflow's inputs with 422 and the located problem, and starts nothing", async () => {
    const hook = await createHook()
    const before = await runCount()
    const missing = await deliver(hook.id, { secrets: [hook.secret], body: JSON.stringify({ issue: {} }) })
    expect(missing.status, missing.text).toBe(422)
    expect(missing.json.issues).toEqual([{ path: "inputs.title", message: expect.stringContaining("missing required string input") }])
    const wrongType = await deliver(hook.id, { secrets: [hook.secret], body: JSON.stringify({ issue: { title: "x" }, count: "many" }) })
    expect(wrongType.status, wrongType.text).toBe(422)
    expect(wrongType.json.issues[0].path).toBe("inputs.count")
    const notJson = await deliver(hook.id, { secrets: [hook.secret], body: "not json" })
    expect(notJson.status).toBe(400)
    const longId = await deliver(hook.id, { secrets: [hook.secret], id: `msg_${"x".repeat(200)}` })
    expect(longId.status).toBe(400)
    expect(longId.json.message).toContain("webhook-id")
    expect(await runCount()).toBe(before)
    // The refused delivery id was not recorded: fixed, it starts its run.
    const fixed = await deliver(hook.id, { id: missing.id, secrets: [hook.secret] })
    expect(fixed.status, fixed.text).toBe(202)
    expect(await runCount()).toBe(before + 1)
  })

  it("answers 404 for an unknown or deleted trigger and 413 for an oversized body", async () => {
    const unknown = await deliver("trg_00000000000000000000000000000000", { secrets: ["whsec_AAAA"] })
    expect(unknown.status).toBe(404)
    expect((await deliver("not-a-trigger", {})).status).toBe(404)
    const hook = await createHook()
    const big = await deliver(hook.id, { secrets: [hook.secret], body: JSON.stringify({ issue: { title: "x".repeat(1_100_000) } }) })
    expect(big.status).toBe(413)
    expect((await api("DELETE", `/triggers/${hook.id}`)).status).toBe(204)
    const gone = await deliver(hook.id, { secrets: [hook.secret] })
    expect(gone.status).toBe(404)
    expect((await api("DELETE", `/triggers/${hook.id}`)).status).toBe(404)
    // A schedule trigger has no hook.
    const schedule = await api("POST", "/triggers", { workflowId, kind: "schedule", name: "s", cron: "0 3 * * *", inputs: { title: "nightly" } })
    expect(schedule.status, schedule.text).toBe(201)
    expect((await deliver(schedule.json.trigger.id, { secrets: ["whsec_AAAA"] })).status).toBe(404)
  })

  it("a rotation accepts both secrets during its window, then only the new one once the old is dropped", async () => {
    const hook = await createHook()
    const rotated = await api("POST", `/triggers/${hook.id}/rotate-secret`, { graceSeconds: 3600 })
    expect(rotated.status, rotated.text).toBe(200)
    const second = rotated.json.secret as string
    expect(second).not.toBe(hook.secret)
    expect((await deliver(hook.id, { secrets: [hook.secret] })).status).toBe(202)
    expect((await deliver(hook.id, { secrets: [second] })).status).toBe(202)
    // Rotating with no grace drops the previous secret at once.
    const third = (await api("POST", `/triggers/${hook.id}/rotate-secret`, { graceSeconds: 0 })).json.secret as string
    expect((await deliver(hook.id, { secrets: [hook.secret] })).status).toBe(401)
    expect((await deliver(hook.id, { secrets: [second] })).status).toBe(401)
    expect((await deliver(hook.id, { secrets: [third] })).status).toBe(202)
    const audit = await server.run(forOrg(orgId)(Effect.flatMap(AuditLog, (log) => log.list({ action: "trigger.rotate_secret" }))))
    expect(audit.filter((e) => e.target === hook.id)).toHaveLength(2)
    expect(JSON.stringify(audit)).not.toContain(second)
  })

  it("holds the per-trigger rate limit with 429 and Retry-After", async () => {
    const hook = await createHook({ rateLimitPerMinute: 2 })
    expect((await deliver(hook.id, { secrets: [hook.secret] })).status).toBe(202)
    expect((await deliver(hook.id, { secrets: [hook.secret] })).status).toBe(202)
    const before = await runCount()
    const limited = await deliver(hook.id, { secrets: [hook.secret] })
    expect(limited.status).toBe(429)
    const retryAfter = Number(limited.headers.get("retry-after"))
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(60)
    expect(await runCount()).toBe(before)
  })

  it("refuses a trigger whose template names an undeclared input or reads beyond the body, and a bad schedule, saying where", async () => {
    const bad = await api("POST", "/triggers", { workflowId, kind: "webhook", name: "x", inputTemplate: { nope: "{{ ctx.body.a }}", title: "{{ inputs.title }}" } })
    expect(bad.status).toBe(400)
    expect(bad.json.issues.map((i: { path: string }) => i.path)).toEqual(["inputTemplate.nope", "inputTemplate.title"])
    const cron = await api("POST", "/triggers", { workflowId, kind: "schedule", name: "x", cron: "61 * * * *", timezone: "Mars/Olympus", inputs: { title: "t" } })
    expect(cron.status).toBe(400)
    expect(cron.json.issues.map((i: { path: string }) => i.path).sort()).toEqual(["cron", "timezone"])
    const inputs = await api("POST", "/triggers", { workflowId, kind: "schedule", name: "x", cron: "0 3 * * *" })
    expect(inputs.status).toBe(400)
    expect(inputs.json.issues[0].path).toBe("inputs.title")
    const workflowMissing = await api("POST", "/triggers", { workflowId: crypto.randomUUID(), kind: "webhook", name: "x" })
    expect(workflowMissing.status).toBe(404)
  })
})

/**
 * Authorisation over real HTTP on loopback: one org with a token per role
 * (memory Tenancy, as the api resolves tokens) calls every route of
 * `routeActions`. A route the role allows is served (never 401/403); one it
 * does not is refused with 403 `Forbidden` and changes nothing (no run, no
 * decision, no key, no workflow, no chat, no audit entry). Any token problem —
 * missing, malformed, unknown, expired, revoked — is the same 401. Changes
 * are in the audit trail of the caller's org, naming the caller and never a
 * secret.
 */
import { Effect, Redacted } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AuditLog, can, type CreatedToken, forOrg, LOCAL_ORG, mintToken, type Role, Tenancy } from "@relavium/ports"
import { Auth, Routes } from "../src/index.js"
import { call, type Reply, startTenantServer, type TenantServer } from "./support/tenantServer.js"

const gateWorkflow = `schema_version: '1.0'
workflow:
  id: authz-gate
  nodes:
    - { id: start, type: input }
    - { id: gate, type: human_gate, gate_type: approval, message_template: 'go on?' }
    - { id: result, type: output }
  edges:
    - { from: start, to: gate }
    - { from: gate, to: result }
`

interface Ids {
  readonly workflowId: string
  readonly runId: string
  readonly gateId: string
  readonly projectDir: string
  readonly projectId: string
  readonly chatId: string
}

interface Request {
  readonly method: string
  readonly path: string
  readonly body?: unknown
}

/** A well-formed request for every route (the compiler insists on one per entry of `routeActions`). */
const requests: Record<Routes.RouteKey, (ids: Ids) => Request> = {
  "health.health": () => ({ method: "GET", path: "/health" }),
  "system.ready": () => ({ method: "GET", path: "/ready" }),
  "system.models": () => ({ method: "GET", path: "/models" }),
  "workflows.upload": () => ({ method: "POST", path: "/workflows", body: { yaml: gateWorkflow } }),
  "workflows.list": () => ({ method: "GET", path: "/workflows" }),
  "workflows.validate": () => ({ method: "POST", path: "/workflows/validate", body: { yaml: gateWorkflow } }),
  "workflows.get": (ids) => ({ method: "GET", path: `/workflows/${ids.workflowId}` }),
  "workflows.versions": (ids) => ({ method: "GET", path: `/workflows/${ids.workflowId}/versions` }),
  "workflows.export": (ids) => ({ method: "GET", path: `/workflows/${ids.workflowId}/export` }),
  "runs.start": (ids) => ({ method: "POST", path: "/runs", body: { workflowId: ids.workflowId } }),
  "runs.list": () => ({ method: "GET", path: "/runs" }),
  "runs.get": (ids) => ({ method: "GET", path: `/runs/${ids.runId}` }),
  "runs.cancel": (ids) => ({ method: "POST", path: `/runs/${ids.runId}/cancel` }),
  "runs.resume": (ids) => ({ method: "POST", path: `/runs/${ids.runId}/resume` }),
  "runs.fork": (ids) => ({ method: "POST", path: `/runs/${ids.runId}/fork`, body: { from: "gate" } }),
  "runs.retry": (ids) => ({ method: "POST", path: `/runs/${ids.runId}/retry`, body: {} }),
  "runs.events": (ids) => ({ method: "GET", path: `/runs/${ids.runId}/events` }),
  "gates.list": () => ({ method: "GET", path: "/gates" }),
  "gates.approve": (ids) => ({ method: "POST", path: `/runs/${ids.runId}/gates/${ids.gateId}/approve`, body: {} }),
  "gates.reject": (ids) => ({ method: "POST", path: `/runs/${ids.runId}/gates/${ids.gateId}/reject`, body: {} }),
  "gates.input": (ids) => ({ method: "POST", path: `/runs/${ids.runId}/gates/${ids.gateId}/input`, body: { value: "yes" } }),
  "keys.list": () => ({ method: "GET", path: "/keys" }),
  "keys.set": () => ({ method: "PUT", path: "/keys/anthropic", body: { key: "sk-ant-authz-test-secret" } }),
  "keys.remove": () => ({ method: "DELETE", path: "/keys/openai" }),
  "org.get": () => ({ method: "GET", path: "/org" }),
  "members.list": () => ({ method: "GET", path: "/members" }),
  "members.add": () => ({ method: "POST", path: "/members", body: { email: "new@acme.test", role: "viewer" } }),
  "members.setRole": () => ({ method: "PATCH", path: `/members/${encodeURIComponent("new@acme.test")}`, body: { role: "member" } }),
  "members.remove": () => ({ method: "DELETE", path: `/members/${encodeURIComponent("new@acme.test")}` }),
  "tokens.list": () => ({ method: "GET", path: "/tokens" }),
  "tokens.create": () => ({ method: "POST", path: "/tokens", body: { name: "made in the test", role: "viewer" } }),
  "tokens.revoke": () => ({ method: "DELETE", path: "/tokens/tok_unknown" }),
  "audit.list": () => ({ method: "GET", path: "/audit" }),
  "triggers.list": () => ({ method: "GET", path: "/triggers" }),
  "triggers.create": (ids) => ({ method: "POST", path: "/triggers", body: { workflowId: ids.workflowId, kind: "schedule", name: "authz", cron: "0 3 * * *" } }),
  "triggers.remove": () => ({ method: "DELETE", path: "/triggers/trg_00000000000000000000000000000000" }),
  "triggers.rotateSecret": () => ({ method: "POST", path: "/triggers/trg_00000000000000000000000000000000/rotate-secret", body: {} }),
  "notifications.channels": () => ({ method: "GET", path: "/notifications/channels" }),
  "notifications.setChannel": () => ({
    method: "PUT",
    path: "/notifications/channels/ops-mail",
    body: { settings: { kind: "email", host: "127.0.0.1", port: 2525, from: "relavium@acme.test", to: ["ops@acme.test"] } }
  }),
  "notifications.removeChannel": () => ({ method: "DELETE", path: "/notifications/channels/no-such-channel" }),
  "notifications.deliveries": (ids) => ({ method: "GET", path: `/notifications/deliveries?runId=${ids.runId}` }),
  "notifications.budget": () => ({ method: "GET", path: "/budget" }),
  "notifications.setBudget": () => ({ method: "PUT", path: "/budget", body: { monthlyLimitCents: 5000 } }),
  "usage.get": () => ({ method: "GET", path: "/usage?groupBy=model" }),
  "usage.csv": () => ({ method: "GET", path: "/usage.csv?groupBy=day" }),
  "gateLinks.show": () => ({ method: "GET", path: "/gate-links/v1.not-a-link.signature" }),
  "gateLinks.decide": () => ({ method: "POST", path: "/gate-links/v1.not-a-link.signature" }),
  "chats.createProject": (ids) => ({ method: "POST", path: "/projects", body: { dir: ids.projectDir } }),
  "chats.listProjects": () => ({ method: "GET", path: "/projects" }),
  "chats.create": (ids) => ({ method: "POST", path: "/chats", body: { projectId: ids.projectId, model: "openai/gpt-4o" } }),
  "chats.list": () => ({ method: "GET", path: "/chats" }),
  "chats.get": (ids) => ({ method: "GET", path: `/chats/${ids.chatId}` }),
  "chats.send": (ids) => ({ method: "POST", path: `/chats/${ids.chatId}/messages`, body: { text: "hello" } }),
  "chats.approve": (ids) => ({ method: "POST", path: `/chats/${ids.chatId}/approvals/call_1`, body: { decision: "allow" } }),
  "chats.resume": (ids) => ({ method: "POST", path: `/chats/${ids.chatId}/resume` }),
  "chats.cancel": (ids) => ({ method: "POST", path: `/chats/${ids.chatId}/cancel` }),
  "chats.export": (ids) => ({ method: "GET", path: `/chats/${ids.chatId}/export` }),
  "chats.events": (ids) => ({ method: "GET", path: `/chats/${ids.chatId}/events` })
}

const roles: ReadonlyArray<Role> = ["viewer", "member", "admin", "owner"]
const routeKeys = Object.keys(Routes.routeActions) as ReadonlyArray<Routes.RouteKey>
const allowed = (role: Role, key: Routes.RouteKey) => {
  const action = Routes.routeActions[key]
  return action === "public" || can(role, action)
}

let server: TenantServer
let dataDir: string
let orgId: string
let otherOrgId: string
const tokens = {} as Record<Role | "expired" | "revoked" | "other", CreatedToken>
const localOwnerToken = mintToken()
let ids: Ids

const bearer = (token: CreatedToken) => `Bearer ${Redacted.value(token.token)}`
const as = (who: CreatedToken, request: Request): Promise<Reply> =>
  call(server, request.method, request.path, { authorization: bearer(who), body: request.body })
const ok = async (who: CreatedToken, request: Request, status: number) => {
  const reply = await as(who, request)
  expect(reply.status, `${request.method} ${request.path}: ${reply.text}`).toBe(status)
  return reply.json
}

const waitFor = async <A>(probe: () => Promise<A | undefined>, what: string): Promise<A> => {
  const deadline = Date.now() + 15_000
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

const waitingGate = (who: CreatedToken, runId: string) =>
  waitFor(async () => {
    const gates = (await as(who, { method: "GET", path: `/gates?runId=${runId}` })).json as Array<{ gateId: string }>
    return gates[0]?.gateId
  }, `a waiting gate in run ${runId}`)

const auditOf = (org: string) => server.run(forOrg(org)(Effect.flatMap(AuditLog, (log) => log.list({ limit: 1000 }))))

/** What an owner sees of everything a request could change, and the org's audit trail. */
const snapshot = async () => {
  const owner = tokens.owner
  const read = async (path: string) => (await ok(owner, { method: "GET", path }, 200)) as unknown
  return {
    workflows: await read("/workflows"),
    runs: await read("/runs?limit=500"),
    gates: await read("/gates"),
    keys: await read("/keys"),
    projects: await read("/projects"),
    chats: await read("/chats"),
    members: await read("/members"),
    triggers: await read("/triggers"),
    // A token's last use changes with every request; which tokens exist and are live does not.
    tokens: ((await read("/tokens")) as Array<{ id: string; revokedAt: string | null }>).map((t) => `${t.id} ${t.revokedAt}`),
    audit: (await auditOf(orgId)).length
  }
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "relavium-authz-"))
  server = await startTenantServer({ dataDir, localOwnerToken })
  const made = await server.run(
    Effect.gen(function* () {
      const tenancy = yield* Tenancy
      const { org, token: owner } = yield* tenancy.createOrg("acme", { email: "owner@acme.test" })
      const other = yield* tenancy.createOrg("other", { email: "owner@other.test" })
      const issued = yield* forOrg(org.id)(
        Effect.gen(function* () {
          const create = (role: Role, name: string, expiresAt?: string) => tenancy.tokens.create({ name, role, createdBy: "owner@acme.test", expiresAt })
          const admin = yield* create("admin", "admin")
          const member = yield* create("member", "member")
          const viewer = yield* create("viewer", "viewer")
          const expired = yield* create("owner", "expired", "2020-01-01T00:00:00.000Z")
          const revoked = yield* create("owner", "revoked")
          yield* tenancy.tokens.revoke(revoked.info.id)
          return { admin, member, viewer, expired, revoked }
        })
      )
      return { orgId: org.id, owner, other, ...issued }
    })
  )
  orgId = made.orgId
  otherOrgId = made.other.org.id
  Object.assign(tokens, { owner: made.owner, admin: made.admin, member: made.member, viewer: made.viewer, expired: made.expired, revoked: made.revoked, other: made.other.token })

  const workflowId = ((await ok(tokens.owner, requests["workflows.upload"]({} as Ids), 201)) as { workflowId: string }).workflowId
  const runId = ((await ok(tokens.owner, { method: "POST", path: "/runs", body: { workflowId } }, 201)) as { runId: string }).runId
  const gateId = await waitingGate(tokens.owner, runId)
  await ok(tokens.owner, { method: "PUT", path: "/keys/openai", body: { key: "sk-openai-authz-test-secret" } }, 204)
  const projectDir = mkdtempSync(join(dataDir, "project-"))
  const projectId = ((await ok(tokens.owner, { method: "POST", path: "/projects", body: { dir: projectDir } }, 201)) as { projectId: string }).projectId
  const chatId = ((await ok(tokens.owner, { method: "POST", path: "/chats", body: { projectId, model: "openai/gpt-4o" } }, 201)) as { chatId: string }).chatId
  ids = { workflowId, runId, gateId, projectDir, projectId, chatId }
}, 60_000)

afterAll(async () => {
  await server?.close()
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
})

describe("authorisation of every route", () => {
  it("names an action for every route, and only /health and the signed gate links are public", () => {
    for (const route of Routes.routes) expect(route.action, `${route.method} ${route.path}`).toBeDefined()
    expect(Routes.routes.filter((route) => route.action === "public").map((route) => route.path)).toEqual(["/health", "/gate-links/:token", "/gate-links/:token"])
  })

  it("refuses each role every route its role lacks with 403 Forbidden, changing nothing", async () => {
    const refusals: Array<string> = []
    for (const role of roles) {
      for (const key of routeKeys) {
        if (allowed(role, key)) continue
        const before = await snapshot()
        const request = requests[key](ids)
        const reply = await as(tokens[role], request)
        expect(reply.status, `${role} ${key}: ${reply.text}`).toBe(403)
        expect(reply.json._tag).toBe("Forbidden")
        expect(await snapshot(), `${role} ${key} changed something`).toEqual(before)
        refusals.push(`${role} ${key}`)
      }
    }
    // The table refuses viewers every change and members the keys; admins and owners nothing that exists yet.
    expect(refusals).toContain("viewer runs.start")
    expect(refusals).toContain("member keys.set")
    expect(refusals.filter((r) => r.startsWith("admin") || r.startsWith("owner"))).toEqual([])
  }, 60_000)

  it("refuses a viewer's run and gate decision and a member's key, which leave no trace", async () => {
    const runsBefore = (await ok(tokens.owner, { method: "GET", path: "/runs?limit=500" }, 200)).runs.length
    expect((await as(tokens.viewer, requests["runs.start"](ids))).status).toBe(403)
    expect((await ok(tokens.owner, { method: "GET", path: "/runs?limit=500" }, 200)).runs.length).toBe(runsBefore)

    expect((await as(tokens.viewer, requests["gates.approve"](ids))).status).toBe(403)
    expect(await waitingGate(tokens.owner, ids.runId)).toBe(ids.gateId)

    expect((await as(tokens.member, requests["keys.set"](ids))).status).toBe(403)
    expect((await ok(tokens.owner, { method: "GET", path: "/keys" }, 200)).providers).toEqual(["openai"])
  })

  it("serves each role every route its role allows (never 401 or 403)", async () => {
    for (const role of roles) {
      for (const key of routeKeys) {
        if (!allowed(role, key)) continue
        const reply = await as(tokens[role], requests[key](ids))
        expect([401, 403], `${role} ${key}: ${reply.status} ${reply.text}`).not.toContain(reply.status)
      }
    }
  }, 120_000)

  it("answers an id it cannot find with 404, never 403", async () => {
    const reply = await as(tokens.viewer, { method: "GET", path: "/runs/run_of_another_org" })
    expect(reply.status).toBe(404)
    const gate = await as(tokens.member, { method: "POST", path: "/runs/run_of_another_org/gates/g/approve", body: {} })
    expect(gate.status).toBe(404)
  })
})

describe("authentication", () => {
  it("answers a missing, malformed, unknown, expired or revoked token with one identical 401", async () => {
    const headers: ReadonlyArray<[string, string | null]> = [
      ["missing", null],
      ["not bearer", `Basic ${Buffer.from("owner:pw").toString("base64")}`],
      ["empty bearer", "Bearer "],
      ["malformed", "Bearer not-a-relavium-token"],
      ["unknown", `Bearer ${Redacted.value(mintToken())}`],
      ["expired", bearer(tokens.expired)],
      ["revoked", bearer(tokens.revoked)]
    ]
    const replies = await Promise.all(headers.map(([, authorization]) => call(server, "GET", "/runs", { authorization })))
    for (const [i, reply] of replies.entries()) {
      expect(reply.status, headers[i]![0]).toBe(401)
      expect(reply.text, headers[i]![0]).toBe(replies[0]!.text)
    }
    expect(replies[0]!.json).toEqual({ _tag: "Unauthorized", message: Auth.UNAUTHORIZED_MESSAGE })
    // A refused token is refused before the body is read: nothing is created.
    const upload = await call(server, "POST", "/workflows", { authorization: bearer(tokens.revoked), body: { yaml: gateWorkflow } })
    expect(upload.status).toBe(401)
    expect(upload.text).toBe(replies[0]!.text)
  })

  it("serves /health without a token", async () => {
    expect((await call(server, "GET", "/health", { authorization: null })).status).toBe(200)
  })
})

describe("the audit trail", () => {
  it("records a run start and a gate decision with the caller as actor, in the caller's org, without the comment", async () => {
    const comment = "approve-comment-that-might-hold-a-secret"
    const runId = (await ok(tokens.member, requests["runs.start"](ids), 201)).runId as string
    const gateId = await waitingGate(tokens.member, runId)
    await ok(tokens.member, { method: "POST", path: `/runs/${runId}/gates/${gateId}/approve`, body: { comment } }, 200)
    const actor = `token:${tokens.member.info.prefix}`

    const entries = await auditOf(orgId)
    const started = entries.find((e) => e.action === "run.start" && e.target === runId)
    expect(started?.actor).toBe(actor)
    expect(started?.detail).toEqual({ workflowId: ids.workflowId })
    const decided = entries.find((e) => e.action === "gate.decide" && e.target === gateId && e.detail.runId === runId)
    expect(decided?.actor).toBe(actor)
    expect(decided?.detail).toEqual({ runId, decision: "approved" })
    expect(JSON.stringify(entries)).not.toContain(comment)
    // The request ran for the caller's org: the entries are in no other org's trail.
    expect((await auditOf(LOCAL_ORG)).some((e) => e.target === runId)).toBe(false)
    expect((await auditOf(otherOrgId)).some((e) => e.target === runId)).toBe(false)
  })

  it("a gate decision names the caller in the run's own log (human_gate:resumed decidedBy)", async () => {
    const runId = (await ok(tokens.member, requests["runs.start"](ids), 201)).runId as string
    const gateId = await waitingGate(tokens.member, runId)
    await ok(tokens.member, { method: "POST", path: `/runs/${runId}/gates/${gateId}/approve`, body: {} }, 200)
    await waitFor(async () => {
      const run = (await as(tokens.member, { method: "GET", path: `/runs/${runId}` })).json as { status?: string }
      return run.status === "completed" ? true : undefined
    }, `run ${runId} to complete`)
    // The finished run's event stream ends after its terminal event.
    const response = await fetch(`${server.url}/runs/${runId}/events`, { headers: { authorization: `Bearer ${Redacted.value(tokens.member.token)}` } })
    const resumed = (await response.text())
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice("data: ".length)) as { type: string; decidedBy?: string })
      .find((event) => event.type === "human_gate:resumed")
    expect(resumed?.decidedBy).toBe(`token:${tokens.member.info.prefix}`)
  })

  it("records a key by its provider only, never its value", async () => {
    const secret = "sk-ant-audit-never-shows-this"
    await ok(tokens.admin, { method: "PUT", path: "/keys/anthropic", body: { key: secret } }, 204)
    const entries = await auditOf(orgId)
    const set = entries.find((e) => e.action === "key.set" && e.target === "anthropic" && e.actor === `token:${tokens.admin.info.prefix}`)
    expect(set).toBeDefined()
    expect(JSON.stringify(entries)).not.toContain(secret)
  })

  it("acts for each token's own org: another org's caller, and the shared token as the owner of org local", async () => {
    // Each org starts a workflow of its own (with the stores scoped by org, another org's id is not found).
    const otherWorkflow = (await ok(tokens.other, requests["workflows.upload"](ids), 201)).workflowId as string
    const otherRun = (await ok(tokens.other, { method: "POST", path: "/runs", body: { workflowId: otherWorkflow } }, 201)).runId as string
    expect((await auditOf(otherOrgId)).find((e) => e.target === otherRun)?.actor).toBe(`token:${tokens.other.info.prefix}`)
    expect((await auditOf(orgId)).some((e) => e.target === otherRun)).toBe(false)

    const asLocal = (path: string, body: unknown) => call(server, "POST", path, { authorization: `Bearer ${Redacted.value(localOwnerToken)}`, body })
    const localWorkflow = await asLocal("/workflows", { yaml: gateWorkflow })
    expect(localWorkflow.status, localWorkflow.text).toBe(201)
    const local = await asLocal("/runs", { workflowId: localWorkflow.json.workflowId })
    expect(local.status, local.text).toBe(201)
    expect((await auditOf(LOCAL_ORG)).find((e) => e.target === local.json.runId)?.actor).toBe("local")
  })
})

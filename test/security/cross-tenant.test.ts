/**
 * The cross-tenant probe: two orgs on one real cloud deployment (`relavium
 * server api` and `worker` as OS processes, on Postgres as `relavium_app`, Redis
 * and NATS), each with a token of every role, workflows, a completed run, a run
 * waiting at a human gate, a provider key, a member, tokens, audit entries and
 * a chat in a project.
 * Then every token of org A, against every route of `routeActions` (iterated,
 * so a new route is probed without editing this file), with each path
 * parameter filled with org B's ids: a role that has the route's action gets
 * 404 (never 200, never 403), one that lacks it 403; no answer names anything
 * of B's; and afterwards B's rows are exactly as before, as B's owner sees them
 * over HTTP and as the operator reads them in Postgres. B's runs are read and
 * followed by B first, so the api replica has them in its run cache (which is
 * keyed by org) when A asks for the same ids.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { randomBytes } from "node:crypto"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { can, forOrg, KeyStore, type Role } from "@relavium/ports"
import { Database, SqlKeyStore } from "@relavium/store"
import { MonolithApi } from "../../packages/server/src/Api.js"
import { routes } from "../../packages/server/src/Routes.js"
import {
  type ApiProcess,
  apiClient,
  type CloudProcess,
  createDeployment,
  type Deployment,
  runRelavium,
  sseClient,
  startApi,
  startWorker,
  waitFor
} from "../support/cloud.js"

const roles: ReadonlyArray<Role> = ["owner", "admin", "member", "viewer"]

const wf = (id: string, body: string) => `schema_version: '1.0'\nworkflow:\n  id: ${id}\n${body.replace(/^/gm, "  ")}\n`
const doneWorkflow = (id: string, output: string) =>
  wf(
    id,
    `nodes:
  - { id: start, type: input }
  - { id: make, type: transform, transform: '"${output}"' }
  - { id: out, type: output }
edges:
  - { from: start, to: make }
  - { from: make, to: out }`
  )
const gatedWorkflow = (id: string) =>
  wf(
    id,
    `nodes:
  - { id: plan, type: transform, transform: '"plan"' }
  - { id: approve, type: human_gate, gate_type: approval, message_template: 'ship it?' }
  - { id: out, type: output }
edges:
  - { from: plan, to: approve }
  - { from: approve, to: out }`
  )

interface Org {
  readonly id: string
  readonly name: string
  readonly ownerEmail: string
  readonly memberEmail: string
  /** Role → bearer token. */
  readonly tokens: Record<Role, string>
  readonly tokenIds: Array<string>
  readonly tokenPrefixes: Array<string>
  readonly provider: string
  readonly keyValue: string
  readonly workflowIds: Array<string>
  readonly workflowNames: Array<string>
  readonly completedRun: string
  readonly gatedRun: string
  readonly gateId: string
  /** A webhook trigger of the done workflow, and its secret. */
  readonly triggerId: string
  readonly triggerSecret: string
  readonly projectId: string
  readonly projectDir: string
  readonly chatId: string
}

let d: Deployment
let api: ApiProcess
let worker: CloudProcess
let A: Org
let B: Org
/** B's rows as the operator read them before the probe. */
let before: Record<string, string>
/** Provider keys are envelope encrypted in Postgres under this master key (api and worker). */
const masterKey = randomBytes(32).toString("base64")

/** The provider key of `orgId`, opened as a worker opens it: as relavium_app, for that org. */
const openKey = (orgId: string, provider: string) =>
  Effect.runPromise(
    Effect.flatMap(KeyStore, (keys) => keys.get(provider)).pipe(
      forOrg(orgId),
      Effect.map(Option.map(Redacted.value)),
      Effect.provide(
        SqlKeyStore.layerPgEncrypted({ masterKey: Redacted.make(masterKey) }).pipe(
          Layer.provide(Database.layerPg({ url: d.appDatabaseUrl, migrate: "verify" }))
        )
      )
    ) as Effect.Effect<Option.Option<string>>
  )

/** Statements on `url` with a plain Postgres client (no org set by anything). */
const withSql = <A>(url: string, f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(url), connectTimeout: Duration.seconds(5) }), f)).pipe(
      Effect.provide(Reactivity.layer)
    ) as Effect.Effect<A>
  )

/** The tables with an `org_id` column. */
const orgTables = (sql: PgClient.PgClient) =>
  Effect.map(
    sql.unsafe<{ table_name: string }>(
      `SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t
         ON t.table_schema = c.table_schema AND t.table_name = c.table_name
       WHERE c.table_schema = 'public' AND c.column_name = 'org_id' AND t.table_type = 'BASE TABLE' ORDER BY 1`
    ),
    (rows) => rows.map((r) => r.table_name)
  )

/** Every row of `orgId` in every org table, and the users of its memberships, as the operator reads them. */
const operatorSnapshot = (orgId: string) =>
  withSql(d.databaseUrl, (sql) =>
    Effect.gen(function* () {
      const out: Record<string, string> = {}
      for (const table of yield* orgTables(sql)) {
        const rows = yield* sql.unsafe(`SELECT * FROM ${table} WHERE org_id = $1`, [orgId])
        out[table] = JSON.stringify(rows.map((r) => JSON.stringify(r)).sort())
      }
      const users = yield* sql.unsafe(
        `SELECT u.* FROM users u JOIN memberships m ON m.user_id = u.user_id WHERE m.org_id = $1 ORDER BY u.user_id`,
        [orgId]
      )
      out.users = JSON.stringify(users)
      return out
    })
  )

const call = (token: string) => apiClient(api.url, token)

const ok = async (token: string, method: string, path: string, body?: unknown) => {
  const response = await call(token)(method, path, body)
  expect(response.status, `${method} ${path}: ${response.text}`).toBeLessThan(300)
  return response.json
}

const runStatus = async (token: string, runId: string) => (await call(token)("GET", `/runs/${runId}`)).json?.status as string | undefined

const pendingGate = (token: string, runId: string) =>
  waitFor(
    async () => {
      const gates = await call(token)("GET", `/gates?runId=${runId}`)
      if (gates.json?.[0] === undefined) await new Promise((r) => setTimeout(r, 200))
      return gates.json?.[0]?.gateId as string | undefined
    },
    `the gate of ${runId}`,
    60_000
  )

const createOrg = async (label: string, name: string, provider: string): Promise<Org> => {
  const ownerEmail = `owner@${label}.test`
  const created = await runRelavium(["org", "create", name, "--owner", ownerEmail, "--database-url", d.databaseUrl, "--json"])
  expect(created.status, created.output).toBe(0)
  const body = JSON.parse(created.output) as { org: { id: string }; token: string; tokenInfo: { id: string; prefix: string } }
  const owner = body.token
  const tokens = { owner } as Record<Role, string>
  const tokenIds = [body.tokenInfo.id]
  const tokenPrefixes = [body.tokenInfo.prefix]
  for (const role of roles.filter((r) => r !== "owner")) {
    const minted = await ok(owner, "POST", "/tokens", { name: `${label}-${role}-token`, role })
    tokens[role] = minted.token
    tokenIds.push(minted.info.id)
    tokenPrefixes.push(minted.info.prefix)
  }
  const memberEmail = `member@${label}.test`
  await ok(owner, "POST", "/members", { email: memberEmail, role: "member" })
  await ok(owner, "PUT", `/notifications/channels/${label}-team`, {
    settings: { kind: "email", host: "127.0.0.1", port: 25, from: `relavium@${label}.test`, to: [`ops@${label}.test`] }
  })
  const keyValue = `sk-${label}-${crypto.randomUUID()}`
  await ok(owner, "PUT", `/keys/${provider}`, { key: keyValue })

  const workflowNames = [`${label}-done`, `${label}-gated`]
  const done = await ok(owner, "POST", "/workflows", { yaml: doneWorkflow(workflowNames[0]!, `${label}-output`), file: "done.relavium.yaml" })
  const gated = await ok(owner, "POST", "/workflows", { yaml: gatedWorkflow(workflowNames[1]!), file: "gated.relavium.yaml" })
  const completedRun = (await ok(owner, "POST", "/runs", { workflowId: done.workflowId })).runId as string
  const gatedRun = (await ok(owner, "POST", "/runs", { workflowId: gated.workflowId })).runId as string
  await waitFor(async () => ((await runStatus(owner, completedRun)) === "completed" ? true : undefined), `${completedRun} completed`, 60_000)
  const gateId = await pendingGate(owner, gatedRun)
  const trigger = await ok(owner, "POST", "/triggers", { workflowId: done.workflowId, kind: "webhook", name: `${label}-hook` })
  // A project and a chat (no message: no turn runs), which the other org's probes name.
  const projectDir = mkdtempSync(join(tmpdir(), `relavium-probe-${label}-`))
  const project = await ok(owner, "POST", "/projects", { dir: projectDir })
  const chat = await ok(owner, "POST", "/chats", { projectId: project.projectId, title: `${label} chat` })
  return {
    id: body.org.id,
    name,
    ownerEmail,
    memberEmail,
    tokens,
    tokenIds,
    tokenPrefixes,
    provider,
    keyValue,
    workflowIds: [done.workflowId, gated.workflowId],
    workflowNames,
    completedRun,
    gatedRun,
    gateId,
    triggerId: trigger.trigger.id,
    triggerSecret: trigger.secret,
    projectId: project.projectId,
    projectDir: project.rootPath,
    chatId: chat.chatId
  }
}

beforeAll(async () => {
  d = await createDeployment("probe")
  const env = { RELAVIUM_MASTER_KEY: masterKey }
  ;[api, worker] = await Promise.all([startApi(d, { env }), startWorker(d, { env })])
  A = await createOrg("alpha", "Alpha Widgets", "anthropic")
  B = await createOrg("beta", "Beta Industries", "openai")
  // B reads and follows its own runs through the one api replica first: the replica's run cache
  // holds B's runs (the gated one is live) when A asks for the same ids.
  expect(await runStatus(B.tokens.owner, B.gatedRun)).toBe("waiting")
  const followed = await sseClient(api.url, B.tokens.owner)(B.completedRun)
  expect(followed.at(-1)?.type).toBe("run:completed")
  const live = await sseClient(api.url, B.tokens.owner)(B.gatedRun, { until: (e) => e.type === "human_gate:paused" })
  expect(live.length).toBeGreaterThan(0)
  before = await operatorSnapshot(B.id)
}, 300_000)

afterAll(async () => {
  await Promise.all([api, worker].map((p) => p?.stop("SIGKILL")))
  await d?.dispose()
})

/** A token shaped as a gate link (`<link id>.<signature>`) that no server signed. */
const linkLike = () => `l${randomBytes(16).toString("base64url")}.${randomBytes(16).toString("base64url")}`

/** B's values for each path parameter a route may have; a route with another parameter fails the probe. */
const bParams = (): Record<string, string> => ({
  runId: B.gatedRun,
  workflowId: B.workflowIds[1]!,
  gateId: B.gateId,
  provider: B.provider,
  email: B.memberEmail,
  tokenId: B.tokenIds[1]!,
  chatId: B.chatId,
  toolCallId: "call_1",
  triggerId: B.triggerId,
  name: "beta-team",
  token: linkLike()
})

/** Values of ids that never existed anywhere, for the same parameters. */
const neverParams = (): Record<string, string> => ({
  runId: crypto.randomUUID(),
  workflowId: crypto.randomUUID(),
  gateId: "no-such-gate",
  provider: "no-such-provider",
  email: "nobody@nowhere.test",
  tokenId: "tok_nosuchtoken",
  chatId: crypto.randomUUID(),
  toolCallId: "call_none",
  triggerId: "trg_00000000000000000000000000000000",
  name: "no-such-channel",
  token: linkLike()
})

/** A body the route accepts, naming B's things where it takes an id. */
const bodies: Record<string, unknown> = {
  "runs.start": () => ({ workflowId: B.workflowIds[0] }),
  "gates.approve": { comment: "probe" },
  "gates.reject": { comment: "probe" },
  "gates.input": { value: "probe" },
  "keys.set": { key: "sk-probe-from-alpha" },
  "members.setRole": { role: "viewer" },
  "runs.fork": { from: "probe" },
  "triggers.rotateSecret": { graceSeconds: 0 },
  "chats.send": { text: "probe" },
  "chats.approve": { decision: "deny" },
  "notifications.setChannel": { settings: { kind: "email", host: "127.0.0.1", port: 25, from: "relavium@alpha.test", to: [] } }
}

/** Everything of B's that must never appear in an answer to A. */
const bSecrets = () => [
  B.id,
  B.name,
  B.ownerEmail,
  B.memberEmail,
  ...B.tokenIds,
  ...B.tokenPrefixes,
  ...Object.values(B.tokens),
  B.keyValue,
  ...B.workflowIds,
  ...B.workflowNames,
  B.completedRun,
  B.gatedRun,
  "beta-output",
  B.triggerId,
  B.triggerSecret,
  "beta-hook",
  B.projectId,
  B.projectDir,
  B.chatId,
  "beta chat"
]

/** One request, the body read for at most a few seconds (an SSE answer never ends by itself). */
const probe = async (token: string | null, method: string, path: string, body?: unknown) => {
  const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` }
  if (body !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(`${api.url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5_000)
  })
  const text = await response.text().catch(() => "")
  return { status: response.status, text }
}

describe("cross-tenant probe: org A's tokens against every route with org B's ids", { timeout: 600_000 }, () => {
  it("every route, every role: 404 for B's ids where the role may act, 403 where not; no answer names B's things", async () => {
    const failures: Array<string> = []
    const secrets = bSecrets()
    const params = bParams()
    // The api serves every route of `routeActions` (the runs' and the chats'); one it did not
    // route would answer 404 for every token, whatever its role.
    const servedKeys = new Set(
      Object.values(MonolithApi.groups).flatMap((group) => Object.values(group.endpoints).map((e) => `${group.identifier}.${e.name}`))
    )
    const served = new Map(routes.map((route) => [route.key, servedKeys.has(route.key)]))
    expect(servedKeys.size).toBeGreaterThan(20)
    for (const role of roles) {
      const token = A.tokens[role]
      for (const route of routes) {
        const names = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]!)
        for (const name of names) expect(params, `a value of B's for :${name} of ${route.key}`).toHaveProperty(name)
        const path = route.path.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(params[name]!))
        const given = bodies[route.key]
        const body = route.method === "GET" || route.method === "DELETE" ? undefined : typeof given === "function" ? given() : (given ?? {})
        const allowed = route.action === "public" || (route.action !== undefined && can(role, route.action))
        const answer = await probe(token, route.method, path, body)
        const what = `${role} ${route.method} ${path} (${route.key}) → ${answer.status} ${answer.text.slice(0, 200)}`
        // What A named itself may be echoed back ("no run with id …"); nothing else of B's.
        const asked = `${path} ${JSON.stringify(body ?? "")}`
        const named = secrets.filter((s) => answer.text.includes(s) && !asked.includes(s) && !asked.includes(encodeURIComponent(s)))
        if (named.length > 0) failures.push(`${what}: names B's ${named.join(", ")}`)
        if (!served.get(route.key)) {
          if (answer.status !== 404) failures.push(`${what}: expected 404 (not served here)`)
        } else if (!allowed) {
          if (answer.status !== 403) failures.push(`${what}: expected 403`)
        } else if (route.key === "keys.set") {
          // Setting a key names a provider, not B's row: A gets a key of its own, removed again.
          if (answer.status !== 204) failures.push(`${what}: expected 204`)
          await ok(A.tokens.owner, "DELETE", `/keys/${B.provider}`)
        } else if (route.key === "notifications.setChannel") {
          // As keys.set: a channel is named, not B's row: A gets a channel of its own, removed again.
          if (answer.status !== 200) failures.push(`${what}: expected 200`)
          await ok(A.tokens.owner, "DELETE", `/notifications/channels/${params.name}`)
        } else if (route.key.startsWith("gateLinks.")) {
          // A gate link no server signed is refused, whoever sends it (the link is the authority).
          if (answer.status !== 400) failures.push(`${what}: expected 400`)
        } else if (names.length > 0 || route.key === "runs.start") {
          if (answer.status !== 404) failures.push(`${what}: expected 404`)
          // And it answers as for ids that never existed (the id itself aside): nothing tells B's apart.
          const never = neverParams()
          const neverPath = route.path.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(never[name]!))
          const neverBody = route.key === "runs.start" ? { workflowId: never.workflowId } : body
          const unknown = await probe(token, route.method, neverPath, neverBody)
          let expected = unknown.text
          for (const name of [...names, "workflowId"]) expected = expected.replaceAll(never[name]!, route.key === "runs.start" ? B.workflowIds[0]! : params[name]!)
          if (unknown.status !== answer.status || expected !== answer.text) {
            failures.push(`${what}: unlike ids that never existed: ${unknown.status} ${unknown.text.slice(0, 200)}`)
          }
        } else if (route.method === "GET") {
          if (answer.status >= 500 || answer.status === 403 || answer.status === 401) failures.push(`${what}: expected an answer`)
        } else if (answer.status < 400 || answer.status >= 500) {
          // Creating routes with an empty body: refused as bad input, never done, never a crash.
          failures.push(`${what}: expected a 4xx`)
        }
      }
      // The gates list filtered by B's run ids answers as for a run that never existed.
      const unknown = crypto.randomUUID()
      const never = await probe(token, "GET", `/gates?runId=${unknown}`)
      for (const runId of [B.gatedRun, B.completedRun]) {
        const answer = await probe(token, "GET", `/gates?runId=${runId}`)
        if (answer.status !== never.status || answer.text !== never.text.replaceAll(unknown, runId)) {
          failures.push(`${role} GET /gates?runId=${runId} → ${answer.status} ${answer.text}, unlike a run that never existed: ${never.status} ${never.text}`)
        }
      }
    }
    expect(failures).toEqual([])
  })

  it("A's lists hold exactly A's runs, workflows, keys, members, tokens and gates", async () => {
    const owner = A.tokens.owner
    const runs = await ok(owner, "GET", "/runs")
    const runIds = (Array.isArray(runs) ? runs : runs.runs).map((r: { runId: string }) => r.runId).sort()
    expect(runIds).toEqual([A.completedRun, A.gatedRun].sort())
    expect(((await ok(owner, "GET", "/workflows")) as Array<{ workflowId: string }>).map((w) => w.workflowId).sort()).toEqual([...A.workflowIds].sort())
    expect(await ok(owner, "GET", "/keys")).toEqual({ providers: [A.provider] })
    expect(((await ok(owner, "GET", "/members")) as Array<{ email: string }>).map((m) => m.email).sort()).toEqual([A.memberEmail, A.ownerEmail].sort())
    expect(((await ok(owner, "GET", "/tokens")) as Array<{ id: string }>).map((t) => t.id).sort()).toEqual([...A.tokenIds].sort())
    expect(((await ok(owner, "GET", "/gates")) as Array<{ runId: string }>).map((g) => g.runId)).toEqual([A.gatedRun])
    expect((await ok(owner, "GET", "/org")).id).toBe(A.id)
    expect(((await ok(owner, "GET", "/triggers")) as Array<{ id: string }>).map((t) => t.id)).toEqual([A.triggerId])
  })

  it("A's SSE follower on B's run ids: 404, with nothing of B's in it", async () => {
    for (const runId of [B.gatedRun, B.completedRun]) {
      const answer = await probe(A.tokens.owner, "GET", `/runs/${runId}/events`)
      expect(answer.status).toBe(404)
      expect(answer.text).not.toContain("human_gate")
    }
  })

  it("afterwards B's rows are exactly as before: as B's owner over HTTP and as the operator in Postgres", async () => {
    expect(await operatorSnapshot(B.id)).toEqual(before)
    const owner = B.tokens.owner
    expect(await runStatus(owner, B.gatedRun)).toBe("waiting")
    expect(await runStatus(owner, B.completedRun)).toBe("completed")
    expect(((await ok(owner, "GET", `/gates?runId=${B.gatedRun}`)) as Array<{ gateId: string }>).map((g) => g.gateId)).toEqual([B.gateId])
    expect(await ok(owner, "GET", "/keys")).toEqual({ providers: [B.provider] })
    // The key still opens, to B's value, for B only.
    expect(await openKey(B.id, B.provider)).toEqual(Option.some(B.keyValue))
    expect(await openKey(A.id, B.provider)).toEqual(Option.none())
    expect(await openKey(A.id, A.provider)).toEqual(Option.some(A.keyValue))
    const members = (await ok(owner, "GET", "/members")) as Array<{ email: string; role: string }>
    expect(members.map((m) => `${m.email}:${m.role}`).sort()).toEqual([`${B.memberEmail}:member`, `${B.ownerEmail}:owner`])
    const tokens = (await ok(owner, "GET", "/tokens")) as Array<{ id: string; revokedAt: string | null }>
    expect(tokens.map((t) => `${t.id}:${t.revokedAt ?? "live"}`).sort()).toEqual(B.tokenIds.map((id) => `${id}:live`).sort())
    // B's own tokens of every role still work; its audit trail has only B's own actions.
    for (const role of roles) expect((await call(B.tokens[role])("GET", "/runs")).status).toBe(200)
    const audit = (await ok(owner, "GET", "/audit")) as { entries: Array<{ actor: string }> }
    expect(audit.entries.length).toBeGreaterThan(0)
    for (const entry of audit.entries) expect(A.tokenPrefixes.some((p) => entry.actor.includes(p))).toBe(false)
    // B can still decide its own gate, and the run then completes: the gate was open and the run live.
    await ok(owner, "POST", `/runs/${B.gatedRun}/gates/${encodeURIComponent(B.gateId)}/approve`, { comment: "mine" })
    await waitFor(async () => ((await runStatus(owner, B.gatedRun)) === "completed" ? true : undefined), "B's gated run to complete", 60_000)
  })

  it("as relavium_app with no org set, every org table shows 0 rows (the operator sees them)", async () => {
    const counts = (url: string) =>
      withSql(url, (sql) =>
        Effect.gen(function* () {
          const out: Record<string, number> = {}
          for (const table of yield* orgTables(sql)) {
            const [row] = yield* sql.unsafe<{ n: string | number }>(`SELECT count(*) AS n FROM ${table}`)
            out[table] = Number(row!.n)
          }
          return out
        })
      )
    const app = await counts(d.appDatabaseUrl)
    const operator = await counts(d.databaseUrl)
    expect(Object.keys(app).length).toBeGreaterThan(5)
    expect(Object.keys(app)).toEqual(Object.keys(operator))
    for (const n of Object.values(app)) expect(n).toBe(0)
    for (const table of ["runs", "orgs", "memberships", "api_tokens", "audit_log"]) expect(operator[table], table).toBeGreaterThan(0)
  })
})

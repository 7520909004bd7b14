/**
 * The distributed deployment with two orgs side by side, as OS processes on
 * the real Postgres (as `relavium_app`), Redis and NATS: 2 api replicas and 2
 * workers. Orgs A and B (made with `relavium org create`) start runs of the same
 * workflow (one name in each org) through different replicas with their own
 * tokens. Each org's `GET /runs`, on either replica, shows only its runs; each
 * org's SSE follower, on the other replica, gets its own run's events to the
 * end, and the other org's token on that run's events is 404; the workers ran
 * both orgs' jobs, each job naming its org; the store and Redis hold neither
 * org's token nor provider key (the leak scanner).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { randomBytes } from "node:crypto"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Redacted } from "effect"
import {
  apiClient,
  type ApiProcess,
  type CloudProcess,
  createDeployment,
  type Deployment,
  dumpRedis,
  redisUrl,
  runRelavium,
  sseClient,
  startApi,
  startWorker,
  waitFor
} from "./support/cloud.js"
import { describeFindings, LeakScanner, masterKeySecret, textSecret } from "./support/leaks.js"

const busy = (value: string) => `'(() => { let x = 0; for (let i = 0; i < 300000; i++) x += i % 7; return ${value} })()'`
const workflow = (label: string) => `schema_version: '1.0'
workflow:
  id: shared-name
  nodes:
    - { id: start, type: input }
    - { id: s1, type: transform, transform: ${busy('"one"')} }
    - { id: s2, type: transform, transform: ${busy(`run.outputs["s1"] + "-${label}"`)} }
    - { id: s3, type: transform, transform: ${busy('run.outputs["s2"] + "-three"')} }
    - { id: out, type: output }
  edges:
    - { from: start, to: s1 }
    - { from: s1, to: s2 }
    - { from: s2, to: s3 }
    - { from: s3, to: out }
`

const RUNS_PER_ORG = 4

interface Org {
  readonly label: string
  readonly id: string
  readonly token: string
  readonly keyValue: string
  /** The replica it starts its runs through, and the other one. */
  readonly home: ApiProcess
  readonly other: ApiProcess
  workflowId: string
  runs: Array<string>
}

let d: Deployment
let api1: ApiProcess
let api2: ApiProcess
let workers: Array<CloudProcess> = []
let A: Org
let B: Org
const masterKey = randomBytes(32).toString("base64")

const as = (api: ApiProcess, token: string) => apiClient(api.url, token)

const createOrg = async (label: string, home: ApiProcess, other: ApiProcess): Promise<Org> => {
  const created = await runRelavium(["org", "create", `${label} org`, "--owner", `owner@${label}.test`, "--database-url", d.databaseUrl, "--json"])
  expect(created.status, created.output).toBe(0)
  const body = JSON.parse(created.output) as { org: { id: string }; token: string }
  const keyValue = `sk-${label}-${crypto.randomUUID()}`
  const key = await as(home, body.token)("PUT", "/keys/openai", { key: keyValue })
  expect(key.status, key.text).toBe(204)
  return { label, id: body.org.id, token: body.token, keyValue, home, other, workflowId: "", runs: [] }
}

const sql = <A>(f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(d.databaseUrl), connectTimeout: Duration.seconds(5) }), f)).pipe(
      Effect.provide(Reactivity.layer)
    ) as Effect.Effect<A>
  )

beforeAll(async () => {
  d = await createDeployment("orgs")
  const env = { RELAVIUM_MASTER_KEY: masterKey }
  const workerArgs = ["--job-lock-ms", "4000", "--stalled-check-ms", "1000"]
  ;[api1, api2, ...workers] = await Promise.all([
    startApi(d, { env }),
    startApi(d, { env }),
    startWorker(d, { env, args: workerArgs }),
    startWorker(d, { env, args: workerArgs })
  ])
  A = await createOrg("alpha", api1, api2)
  B = await createOrg("beta", api2, api1)
}, 180_000)

afterAll(async () => {
  await Promise.all([api1, api2, ...workers].map((p) => p?.stop("SIGKILL")))
  await d?.dispose()
})

describe("distributed: two orgs side by side on 2 api replicas and 2 workers", { timeout: 600_000 }, () => {
  it("each org's runs, started through its replica, run on the workers and are followed on the other replica; neither sees the other's", async () => {
    for (const org of [A, B]) {
      const uploaded = await as(org.home, org.token)("POST", "/workflows", { yaml: workflow(org.label), file: "shared.relavium.yaml" })
      expect(uploaded.status, uploaded.text).toBe(201)
      org.workflowId = uploaded.json.workflowId
    }
    // Same workflow name in both orgs, two workflows.
    expect(A.workflowId).not.toBe(B.workflowId)

    // Both orgs start their runs at once, each through its own replica.
    const start = (org: Org) =>
      Promise.all(
        Array.from({ length: RUNS_PER_ORG }, async () => {
          const started = await as(org.home, org.token)("POST", "/runs", { workflowId: org.workflowId })
          expect(started.status, started.text).toBe(201)
          return started.json.runId as string
        })
      )
    ;[A.runs, B.runs] = await Promise.all([start(A), start(B)])

    // Each org follows its first run on the other replica, to the end; every event is of that run.
    const [followedA, followedB] = await Promise.all([A, B].map((org) => sseClient(org.other.url, org.token)(org.runs[0]!)))
    for (const [org, events] of [
      [A, followedA],
      [B, followedB]
    ] as const) {
      expect(events.at(-1)?.type).toBe("run:completed")
      expect(new Set(events.map((e) => e.data.runId))).toEqual(new Set([org.runs[0]]))
      expect(JSON.stringify(events)).toContain(`one-${org.label}-three`)
      const otherLabel = org === A ? B.label : A.label
      expect(JSON.stringify(events)).not.toContain(`one-${otherLabel}`)
    }

    // All runs of both orgs end completed (only the workers execute them), each with its org's output.
    for (const org of [A, B]) {
      for (const runId of org.runs) {
        await waitFor(
          async () => {
            const summary = await as(org.home, org.token)("GET", `/runs/${runId}`)
            if (summary.json?.status !== "completed") await new Promise((r) => setTimeout(r, 300))
            return summary.json?.status === "completed" ? true : undefined
          },
          `${org.label}'s run ${runId} to complete`,
          120_000
        )
      }
    }

    // Each org's run list, on either replica, is exactly its runs.
    for (const org of [A, B]) {
      for (const api of [api1, api2]) {
        const listed = await as(api, org.token)("GET", "/runs")
        expect(listed.status).toBe(200)
        expect((listed.json.runs as Array<{ runId: string }>).map((r) => r.runId).sort()).toEqual([...org.runs].sort())
      }
    }

    // The other org's token on a run's events, summary and gates: 404 on both replicas.
    for (const [owner, intruder] of [
      [A, B],
      [B, A]
    ] as const) {
      for (const api of [api1, api2]) {
        for (const path of [`/runs/${owner.runs[0]}/events`, `/runs/${owner.runs[0]}`, `/gates?runId=${owner.runs[0]}`]) {
          const answer = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${intruder.token}` }, signal: AbortSignal.timeout(5_000) })
          expect(answer.status, `${intruder.label} GET ${path} on ${api.url}`).toBe(404)
          expect(await answer.text()).not.toContain(owner.label)
        }
      }
    }
  })

  it("the store keeps each run in its org, and every queued job names its org", async () => {
    const rows = await sql((client) => client.unsafe<{ org_id: string; run_id: string; status: string }>(`SELECT org_id, run_id, status FROM runs`))
    for (const org of [A, B]) {
      expect(rows.filter((r) => r.org_id === org.id).map((r) => r.run_id).sort()).toEqual([...org.runs].sort())
      expect(rows.filter((r) => r.org_id === org.id).every((r) => r.status === "completed")).toBe(true)
    }
    // BullMQ keeps the jobs it ran: their payloads carry the org of the run.
    const redis = await dumpRedis(d.queuePrefix)
    const orgsOfJobs = new Set([...redis.text.matchAll(/\\?"orgId\\?":\\?"(org_[A-Za-z0-9_-]+)/g)].map((m) => m[1]))
    expect(orgsOfJobs).toEqual(new Set([A.id, B.id]))
  })

  it("neither org's token nor provider key is in Postgres or Redis (the leak scanner)", async () => {
    const scanner = new LeakScanner([
      textSecret("A's owner token", A.token),
      textSecret("B's owner token", B.token),
      textSecret("A's provider key", A.keyValue),
      textSecret("B's provider key", B.keyValue),
      masterKeySecret("the master key", masterKey)
    ])
    const store = await scanner.postgres(d.databaseUrl)
    expect(describeFindings(store.findings)).toBe("no leaks")
    expect(store.rowsByTable.provider_keys).toBe(2)
    expect(store.rowsByTable.run_events).toBeGreaterThan(RUNS_PER_ORG * 2 * 5)
    const redis = await scanner.redis(redisUrl, [`${d.queuePrefix}*`])
    expect(describeFindings(redis.findings)).toBe("no leaks")
    expect(redis.jobs).toBeGreaterThan(RUNS_PER_ORG * 2)
    for (const p of [api1, api2, ...workers]) expect(describeFindings(scanner.text("logs", "a server process", p.output()))).toBe("no leaks")
  })
})

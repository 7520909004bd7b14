/**
 * Cost views and budget alerts on a seeded data set, on SQLite and on a fresh Postgres database:
 * two orgs, several runs, workflows, models, members, triggers and days. The aggregates by each
 * grouping equal the sums of the seeded `cost:updated` events in the range (the other org's and
 * the out-of-range events never count); the CSV has its header, ISO dates and cents with six
 * decimals. A monthly budget notifies each threshold reached once, through a signed webhook.
 */

import { Effect, Layer, ManagedRuntime, Option, Redacted, TestClock, TestContext } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { aggregateUsage, centsOf, forOrg, NotificationStore, UsageGroupBy, UsageStore, usageCsv } from "@relavium/ports"
import { Database, SqlClient, SqlNotifications } from "@relavium/store"
import { Notifier } from "../src/index.js"
import { createDatabase, dropDatabase } from "../../../test/support/cloud.js"

interface Seed {
  readonly org: string
  readonly runId: string
  readonly workflow: string
  readonly member: string | undefined
  readonly trigger: { readonly triggerId: string; readonly kind: "webhook" | "schedule" } | undefined
  readonly costs: ReadonlyArray<{ readonly at: string; readonly model: string; readonly micro: number; readonly input: number; readonly output: number }>
}

const A = "org_usage_a"
const B = "org_usage_b"

const seeds: ReadonlyArray<Seed> = [
  {
    org: A,
    runId: "run-a1",
    workflow: "alpha",
    member: "alice@acme.test",
    trigger: { triggerId: "trg_nightly", kind: "schedule" },
    costs: [
      { at: "2026-11-03T10:00:00.000Z", model: "openai/gpt-4o", micro: 12_345, input: 100, output: 20 },
      { at: "2026-11-03T10:01:00.000Z", model: "anthropic/claude", micro: 2_000_000, input: 1000, output: 300 }
    ]
  },
  {
    org: A,
    runId: "run-a2",
    workflow: "beta",
    member: "bob@acme.test",
    trigger: undefined,
    costs: [
      { at: "2026-11-04T23:59:59.000Z", model: "openai/gpt-4o", micro: 7, input: 1, output: 1 },
      { at: "2026-11-05T00:00:01.000Z", model: "openai/gpt-4o", micro: 500_000, input: 50, output: 5 }
    ]
  },
  {
    org: A,
    runId: "run-a3",
    workflow: "alpha",
    member: undefined,
    trigger: { triggerId: "trg_github", kind: "webhook" },
    costs: [
      { at: "2026-11-06T08:00:00.000Z", model: "anthropic/claude", micro: 3_000_000, input: 3000, output: 400 },
      // Outside the range asked for.
      { at: "2026-12-01T00:00:00.000Z", model: "anthropic/claude", micro: 9_999_999, input: 9, output: 9 }
    ]
  },
  {
    org: B,
    runId: "run-b1",
    workflow: "alpha",
    member: "carol@other.test",
    trigger: undefined,
    costs: [{ at: "2026-11-03T12:00:00.000Z", model: "openai/gpt-4o", micro: 777_777_777, input: 5, output: 5 }]
  }
]

const FROM = "2026-11-01T00:00:00.000Z"
const TO = "2026-12-01T00:00:00.000Z"

const seed = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  for (const org of [A, B]) yield* sql`INSERT INTO orgs (org_id, name, created_at) VALUES (${org}, ${org}, ${FROM})`
  let auditSeq = 0
  for (const s of seeds) {
    yield* sql`INSERT INTO runs ${sql.insert({ org_id: s.org, run_id: s.runId, workflow_id: `${s.workflow}-v1`, workflow_name: s.workflow, status: "completed", created_at: s.costs[0]!.at, updated_at: s.costs[0]!.at })}`
    const started = { type: "run:started", runId: s.runId, sequenceNumber: 0, timestamp: s.costs[0]!.at, workflowId: `${s.workflow}-v1`, inputs: {}, executionMode: "cloud", ...(s.trigger === undefined ? {} : { trigger: { ...s.trigger, deliveryId: "dlv" } }) }
    yield* sql`INSERT INTO run_events ${sql.insert({ org_id: s.org, run_id: s.runId, seq: 0, type: "run:started", timestamp: s.costs[0]!.at, payload: JSON.stringify(started) })}`
    for (const [i, c] of s.costs.entries()) {
      const event = { type: "cost:updated", runId: s.runId, sequenceNumber: i + 1, timestamp: c.at, nodeId: "n", model: c.model, inputTokens: c.input, outputTokens: c.output, costMicrocents: c.micro, cumulativeCostMicrocents: 0 }
      yield* sql`INSERT INTO run_events ${sql.insert({ org_id: s.org, run_id: s.runId, seq: i + 1, type: "cost:updated", timestamp: c.at, payload: JSON.stringify(event) })}`
    }
    if (s.member !== undefined) {
      auditSeq++
      yield* sql`INSERT INTO audit_log ${sql.insert({ org_id: s.org, seq: auditSeq, at: s.costs[0]!.at, actor: s.member, action: "run.start", target: s.runId, detail: JSON.stringify({}) })}`
    }
  }
})

/** The expected groups, summed straight from the seeds. */
const expected = (org: string, by: UsageGroupBy) => {
  const groups = new Map<string, { runs: Set<string>; inputTokens: number; outputTokens: number; costMicrocents: number }>()
  for (const s of seeds.filter((x) => x.org === org)) {
    for (const c of s.costs.filter((x) => x.at >= FROM && x.at < TO)) {
      const key =
        by === "day" ? c.at.slice(0, 10) : by === "workflow" ? s.workflow : by === "model" ? c.model : by === "member" ? (s.member ?? "unknown") : s.trigger === undefined ? "manual" : `${s.trigger.kind}:${s.trigger.triggerId}`
      const g = groups.get(key) ?? { runs: new Set<string>(), inputTokens: 0, outputTokens: 0, costMicrocents: 0 }
      g.runs.add(s.runId)
      g.inputTokens += c.input
      g.outputTokens += c.output
      g.costMicrocents += c.micro
      groups.set(key, g)
    }
  }
  return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, g]) => ({ key, runs: g.runs.size, inputTokens: g.inputTokens, outputTokens: g.outputTokens, costMicrocents: g.costMicrocents }))
}

const dir = mkdtempSync(join(tmpdir(), "relavium-usage-"))
const pgNames: Array<string> = []
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  for (const name of pgNames) await dropDatabase(name)
})

const databases: ReadonlyArray<[string, () => Promise<Layer.Layer<SqlClient.SqlClient, unknown>>]> = [
  ["SQLite", async () => Database.layerSqlite({ filename: join(dir, `${randomBytes(4).toString("hex")}.db`) })],
  [
    "Postgres",
    async () => {
      const db = await createDatabase("usage")
      pgNames.push(db.name)
      return Database.layerPg({ url: db.url })
    }
  ]
]

describe.each(databases)("usage on %s", (_name, open) => {
  it("groups the org's cost events by day, workflow, model, member and trigger, as their sums; never another org's", async () => {
    const runtime = ManagedRuntime.make(Layer.provideMerge(SqlNotifications.layerUsage, await open()))
    try {
      await runtime.runPromise(seed)
      for (const by of UsageGroupBy.literals) {
        const events = await runtime.runPromise(forOrg(A)(Effect.flatMap(UsageStore, (u) => u.costEvents(FROM, TO))))
        expect(aggregateUsage(events, by), by).toEqual(expected(A, by))
        const other = await runtime.runPromise(forOrg(B)(Effect.flatMap(UsageStore, (u) => u.costEvents(FROM, TO))))
        expect(aggregateUsage(other, by), by).toEqual(expected(B, by))
      }
      const events = await runtime.runPromise(forOrg(A)(Effect.flatMap(UsageStore, (u) => u.costEvents(FROM, TO))))
      expect(events.some((e) => e.runId === "run-b1")).toBe(false)
      expect(usageCsv("day", aggregateUsage(events, "day"))).toBe(
        [
          "day,runs,input_tokens,output_tokens,cost_cents",
          "2026-11-03,1,1100,320,2.012345",
          "2026-11-04,1,1,1,0.000007",
          "2026-11-05,1,50,5,0.500000",
          "2026-11-06,1,3000,400,3.000000",
          ""
        ].join("\r\n")
      )
    } finally {
      await runtime.dispose()
    }
  }, 60_000)

  it("notifies each budget threshold once per month", async () => {
    const bodies: Array<{ type: string; data: { threshold: number; period: string } }> = []
    const receiver = createServer((request, response) => {
      let body = ""
      request.on("data", (c: Buffer) => (body += c.toString("utf8")))
      request.on("end", () => {
        bodies.push(JSON.parse(body))
        response.end("ok")
      })
    })
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", () => resolve()))
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/budget`
    const stores = Layer.mergeAll(
      SqlNotifications.layer(Option.some({ masterKey: Redacted.make(randomBytes(32).toString("base64")) })),
      SqlNotifications.layerUsage,
      Layer.succeed(Notifier.NotifySettings, { linkKey: Redacted.make("k"), publicUrl: "https://relavium.acme.test" })
    )
    const runtime = ManagedRuntime.make(Layer.provideMerge(stores, await open()))
    try {
      await runtime.runPromise(seed)
      // Org A spent 5,512,352 microcents in November (in range); a limit of 6,000,000 is 91.9 %.
      await runtime.runPromise(
        forOrg(A)(
          Effect.gen(function* () {
            const store = yield* NotificationStore
            yield* store.channels.put({ name: "hook", settings: { kind: "webhook", url }, secret: Redacted.make("whsec_c2VjcmV0") })
            yield* store.budget.set({ monthlyLimitMicrocents: 6_000_000, thresholds: [50, 80, 100] }, FROM)
          })
        )
      )
      const sweepAt = (iso: string) =>
        runtime.runPromise(
          Effect.gen(function* () {
            yield* TestClock.setTime(Date.parse(iso))
            return yield* (yield* Notifier.make).sweep
          }).pipe(Effect.provide(TestContext.TestContext))
        )
      await sweepAt("2026-11-20T00:00:00.000Z")
      await sweepAt("2026-11-21T00:00:00.000Z")
      expect(bodies.map((b) => [b.type, b.data.period, b.data.threshold]).sort((x, y) => Number(x[2]) - Number(y[2]))).toEqual([
        ["budget.threshold", "2026-11", 50],
        ["budget.threshold", "2026-11", 80]
      ])
      // More spending in the month reaches 100 %: told once, and only that threshold.
      await runtime.runPromise(
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql`INSERT INTO run_events ${sql.insert({ org_id: A, run_id: "run-a2", seq: 3, type: "cost:updated", timestamp: "2026-11-22T00:00:00.000Z", payload: JSON.stringify({ type: "cost:updated", runId: "run-a2", sequenceNumber: 3, timestamp: "2026-11-22T00:00:00.000Z", nodeId: "n", model: "openai/gpt-4o", inputTokens: 1, outputTokens: 1, costMicrocents: 1_000_000, cumulativeCostMicrocents: 0 }) })}`
        )
      )
      await sweepAt("2026-11-22T01:00:00.000Z")
      await sweepAt("2026-11-23T01:00:00.000Z")
      expect(bodies.map((b) => b.data.threshold).sort((x, y) => x - y)).toEqual([50, 80, 100])
      expect(centsOf(6_512_352)).toBe("6.512352")
    } finally {
      await runtime.dispose()
      await new Promise<void>((resolve) => receiver.close(() => resolve()))
    }
  }, 60_000)
})

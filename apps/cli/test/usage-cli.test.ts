/**
 * `relavium usage --server`: the table, `--json` and `--csv` of the cost of the caller's org,
 * against the whole API on SQLite (tenantServer.ts) with cost events seeded in its database; a
 * bad date is refused with what to write. `relavium notify` and `budget` set and show a channel
 * (its secret from stdin, never shown) and the budget.
 */
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { mintToken } from "@relavium/ports"
import { Database, SqlClient } from "@relavium/store"
import { startTenantServer, type TenantServer } from "../../../packages/server/test/support/tenantServer.js"
import { relaviumAsync } from "./relavium.js"

const token = mintToken()
let server: TenantServer
let dataDir: string

const cli = (args: ReadonlyArray<string>) => relaviumAsync(["usage", ...args, "--server", server.url, "--token", Redacted.value(token)])
const remote = (args: ReadonlyArray<string>, input?: string) =>
  relaviumAsync([...args, "--server", server.url, "--token", Redacted.value(token)], input === undefined ? {} : { input })

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "relavium-usage-cli-"))
  server = await startTenantServer({ dataDir, localOwnerToken: token, notify: { masterKey: randomBytes(32).toString("base64") } })
  const db = ManagedRuntime.make(Layer.orDie(Database.layerSqlite({ filename: join(dataDir, "relavium.db") })))
  await db.runPromise(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const at = "2026-11-03T10:00:00.000Z"
      yield* sql`INSERT INTO runs ${sql.insert({ org_id: "local", run_id: "run-u1", workflow_id: "w-v1", workflow_name: "review", status: "completed", created_at: at, updated_at: at })}`
      const costs = [
        { seq: 1, at, model: "openai/gpt-4o", micro: 12_345 },
        { seq: 2, at: "2026-11-04T09:00:00.000Z", model: "anthropic/claude", micro: 2_500_000 }
      ]
      for (const c of costs) {
        const event = { type: "cost:updated", runId: "run-u1", sequenceNumber: c.seq, timestamp: c.at, nodeId: "n", model: c.model, inputTokens: 10, outputTokens: 2, costMicrocents: c.micro, cumulativeCostMicrocents: 0 }
        yield* sql`INSERT INTO run_events ${sql.insert({ org_id: "local", run_id: "run-u1", seq: c.seq, type: "cost:updated", timestamp: c.at, payload: JSON.stringify(event) })}`
      }
    }).pipe(Effect.orDie)
  )
  await db.dispose()
}, 60_000)

afterAll(async () => {
  await server?.close()
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
})

describe("relavium usage --server", { timeout: 600_000 }, () => {
  it("prints a table by model, JSON, and CSV by day", async () => {
    const range = ["--from", "2026-11-01", "--to", "2026-12-01"]
    const shown = await cli([...range, "--group-by", "model"])
    expect(shown.status, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(/^MODEL\s+RUNS\s+INPUT\s+OUTPUT\s+COST \(CENTS\)$/m)
    expect(shown.stdout).toMatch(/^anthropic\/claude\s+1\s+10\s+2\s+2\.500000$/m)
    expect(shown.stdout).toMatch(/^openai\/gpt-4o\s+1\s+10\s+2\s+0\.012345$/m)
    expect(shown.stdout).toMatch(/^total\s+20\s+4\s+2\.512345$/m)

    const json = await cli([...range, "--group-by", "workflow", "--json"])
    expect(json.status, json.stderr).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({
      groupBy: "workflow",
      rows: [{ key: "review", runs: 1, costMicrocents: 2_512_345, costCents: "2.512345" }],
      total: { costMicrocents: 2_512_345 }
    })

    const csv = await cli([...range, "--csv"])
    expect(csv.status, csv.stderr).toBe(0)
    expect(csv.stdout).toBe("day,runs,input_tokens,output_tokens,cost_cents\r\n2026-11-03,1,10,2,0.012345\r\n2026-11-04,1,10,2,2.500000\r\n")
  })

  it("refuses a date that is not ISO-8601, saying what to write", async () => {
    const refused = await cli(["--from", "last tuesday"])
    expect(refused.status).toBe(2)
    expect(refused.stderr).toMatch(/ISO-8601/)
  })
})

describe("relavium notify and budget --server", { timeout: 600_000 }, () => {
  it("sets a channel with its secret from stdin, lists it without the secret, and refuses bad settings before sending", async () => {
    const secret = "https://hooks.slack.test/services/T1/B1/cli-secret-value"
    const set = await remote(["notify", "channel", "set", "team", "--settings", '{"kind":"slack"}', "--secret-stdin"], `${secret}\n`)
    expect(set.status, set.stderr).toBe(0)
    expect(set.stdout).toBe("channel team (slack) set, with its secret\n")
    const listed = await remote(["notify", "channel", "list", "--json"])
    expect(listed.status, listed.stderr).toBe(0)
    expect(JSON.parse(listed.stdout)).toMatchObject([{ name: "team", kind: "slack", hasSecret: true, enabled: true }])
    expect(listed.stdout).not.toContain("cli-secret-value")
    const bad = await remote(["notify", "channel", "set", "mail", "--settings", '{"kind":"email","host":"h","port":0,"from":"a@b.test","to":[]}'])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/--settings: .*port/s)
    expect((await remote(["notify", "channel", "remove", "team"])).stdout).toBe("removed channel team\n")
  })

  it("sets the monthly budget and shows this month's spend", async () => {
    const set = await remote(["budget", "set", "--monthly-cents", "250", "--thresholds", "80,50"])
    expect(set.status, set.stderr).toBe(0)
    expect(set.stdout).toBe("monthly budget 250 cents, alerts at 50, 80 %\n")
    const shown = await remote(["budget", "show", "--json"])
    expect(JSON.parse(shown.stdout)).toMatchObject({ budget: { monthlyLimitMicrocents: 250_000_000, thresholds: [50, 80] } })
    const bad = await remote(["budget", "set", "--monthly-cents", "10", "--thresholds", "half"])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/--thresholds: whole percentages/)
  })
})

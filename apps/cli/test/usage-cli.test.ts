/**
 * `relavium usage --server`: the table, `--json` and `--csv` of the cost of the caller's org,
 * against the whole API on SQLite (tenantServer.ts) with cost events seeded in its database; a
 * bad date is refused with what to write.
 */
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
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

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "relavium-usage-cli-"))
  server = await startTenantServer({ dataDir, localOwnerToken: token })
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

/**
 * `relavium triggers list|create|delete|rotate-secret --server URL --token T` end to end: the real
 * binary against the whole API in this process (memory Tenancy and Triggers, the local engine),
 * as an org's owner would use it; deliveries signed with the secrets the CLI printed start runs.
 */
import { Effect, Redacted } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { forOrg, Tenancy } from "@relavium/ports"
import { WebhookSignature } from "@relavium/server"
import { startTenantServer, type TenantServer } from "../../../packages/server/test/support/tenantServer.js"
import { relaviumAsync } from "./relavium.js"

const workflow = `schema_version: '1.0'
workflow:
  id: cli-hook
  inputs:
    - { name: title, type: string, required: true }
  nodes:
    - { id: start, type: input }
    - { id: result, type: output }
  edges:
    - { from: start, to: result }
`

let server: TenantServer
let dataDir: string
let owner: string
let viewer: string
let workflowId: string

const cli = (args: ReadonlyArray<string>, token = owner) => relaviumAsync([...args, "--server", server.url, "--token", token])

const deliver = async (triggerId: string, secret: string) => {
  const id = `msg_${crypto.randomUUID()}`
  const timestamp = Math.floor(Date.now() / 1000)
  const body = JSON.stringify({ title: "from the cli test" })
  const response = await fetch(`${server.url}/hooks/${triggerId}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": WebhookSignature.sign(Redacted.make(secret), id, timestamp, body)
    },
    body
  })
  return response.status
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "relavium-triggers-cli-"))
  server = await startTenantServer({ dataDir })
  const made = await server.run(
    Effect.gen(function* () {
      const tenancy = yield* Tenancy
      const { org, token } = yield* tenancy.createOrg("Acme", { email: "olivia@acme.test" })
      const view = yield* forOrg(org.id)(tenancy.tokens.create({ name: "viewer", role: "viewer", createdBy: "olivia@acme.test" }))
      return { owner: Redacted.value(token.token), viewer: Redacted.value(view.token) }
    })
  )
  owner = made.owner
  viewer = made.viewer
  const uploaded = await fetch(`${server.url}/workflows`, {
    method: "POST",
    headers: { authorization: `Bearer ${owner}`, "content-type": "application/json" },
    body: JSON.stringify({ yaml: workflow })
  })
  workflowId = ((await uploaded.json()) as { workflowId: string }).workflowId
}, 60_000)

afterAll(async () => {
  await server?.close()
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
})

describe("relavium triggers --server", { timeout: 600_000 }, () => {
  it("create prints a webhook's secret once; list never shows it; rotate-secret replaces it; delete ends the hook", async () => {
    const created = await cli(["triggers", "create", "--workflow", workflowId, "--name", "on push", "--kind", "webhook", "--template", '{"title":"{{ ctx.body.title }}"}'])
    expect(created.status, created.stderr).toBe(0)
    expect(created.stderr).toMatch(/shown only this once/)
    const secrets = created.stdout.match(/whsec_[A-Za-z0-9+/=]+/g) ?? []
    expect(secrets).toHaveLength(1)
    const secret = secrets[0]!
    const id = /^trigger\s+(trg_[0-9a-f]{32})$/m.exec(created.stdout)![1]!
    expect(created.stdout).toContain(`POST /hooks/${id}`)
    expect(await deliver(id, secret)).toBe(202)

    const listed = await cli(["triggers", "list"])
    expect(listed.status).toBe(0)
    expect(listed.stdout).toMatch(/^ID\s+KIND\s+NAME\s+WORKFLOW/)
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+webhook\\s+on push\\s+${workflowId}`, "m"))
    expect(listed.stdout).not.toContain(secret)

    const rotated = await cli(["triggers", "rotate-secret", id, "--grace-seconds", "0", "--json"])
    expect(rotated.status, rotated.stderr).toBe(0)
    const body = JSON.parse(rotated.stdout) as { triggerId: string; secret: string }
    expect(body.triggerId).toBe(id)
    expect(body.secret).not.toBe(secret)
    expect(await deliver(id, secret)).toBe(401)
    expect(await deliver(id, body.secret)).toBe(202)

    expect(await cli(["triggers", "delete", id])).toMatchObject({ status: 0, stdout: `deleted trigger ${id}\n` })
    expect(await deliver(id, body.secret)).toBe(404)
    const again = await cli(["triggers", "delete", id])
    expect(again.status).toBe(2)
    expect(again.stderr).toMatch(/no trigger/)
  })

  it("creates a schedule, and refuses bad input with a located message, sending nothing", async () => {
    const made = await cli(["triggers", "create", "--workflow", workflowId, "--name", "weekdays", "--kind", "schedule", "--cron", "0 9 * * 1-5", "--timezone", "Europe/Paris", "--missed", "run_once", "--inputs", '{"title":"daily"}', "--json"])
    expect(made.status, made.stderr).toBe(0)
    const trigger = (JSON.parse(made.stdout) as { trigger: { id: string; cron: string; timezone: string; missed: string }; secret?: string })
    expect(trigger.trigger).toMatchObject({ cron: "0 9 * * 1-5", timezone: "Europe/Paris", missed: "run_once" })
    expect(trigger.secret).toBeUndefined()

    const before = (await cli(["triggers", "list", "--json"])).stdout
    const badCron = await cli(["triggers", "create", "--workflow", workflowId, "--name", "x", "--kind", "schedule", "--cron", "61 * * * *", "--inputs", '{"title":"t"}'])
    expect(badCron.status).toBe(2)
    expect(badCron.stderr).toMatch(/cron/)
    const badZone = await cli(["triggers", "create", "--workflow", workflowId, "--name", "x", "--kind", "schedule", "--cron", "0 9 * * *", "--timezone", "Nowhere/Land", "--inputs", '{"title":"t"}'])
    expect(badZone.status).toBe(2)
    expect(badZone.stderr).toMatch(/Nowhere\/Land.*IANA time zone/)
    const badJson = await cli(["triggers", "create", "--workflow", workflowId, "--name", "x", "--kind", "webhook", "--template", "{nope"])
    expect(badJson.status).toBe(2)
    expect(badJson.stderr).toMatch(/--template is not JSON/)
    const badLimit = await cli(["triggers", "create", "--workflow", workflowId, "--name", "x", "--kind", "webhook", "--rate-limit", "0"])
    expect(badLimit.status).toBe(2)
    expect(badLimit.stderr).toMatch(/rateLimitPerMinute/)
    expect((await cli(["triggers", "list", "--json"])).stdout).toBe(before)
  })

  it("a viewer may list but not create: the server's 403 is a clear exit 2", async () => {
    expect((await cli(["triggers", "list"], viewer)).status).toBe(0)
    const refused = await cli(["triggers", "create", "--workflow", workflowId, "--name", "x", "--kind", "webhook"], viewer)
    expect(refused.status).toBe(2)
    expect(refused.stderr).toMatch(/403/)
    const nowhere = await relaviumAsync(["triggers", "list"])
    expect(nowhere.status).toBe(2)
    expect(nowhere.stderr).toMatch(/--server/)
  })
})

/**
 * `relavium server inference` as an OS process on a fresh Postgres database: org API tokens made
 * by `relavium org create`, a managed key stored encrypted for one org (SqlKeyStore under that
 * org), the routes file pointing at a fake OpenAI upstream; the official SDK through it. A bad
 * routes file or missing master keys stop the start with exit 2 and the place that is wrong.
 */
import { forOrg, KeyStore } from "@relavium/ports"
import { Database, SqlKeyStore } from "@relavium/store"
import { Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openAiChat } from "../../../packages/llm/test/fixtures/wire.js"
import { startUpstream, type Upstream } from "../../../packages/inference/test/support/upstream.js"
import { createDeployment, type Deployment, runRelavium, spawnRelavium, type CloudProcess, waitForOutput } from "../../../test/support/cloud.js"

const masterKey = randomBytes(32).toString("base64")
const MANAGED = `sk-managed-${randomBytes(8).toString("hex")}`

let d: Deployment
let upstream: Upstream
let dir: string
let routesFile: string
let gateway: CloudProcess
let url: string
const orgs: Record<"acme" | "globex", { readonly id: string; readonly token: string }> = {} as never

const createOrg = async (name: string, email: string) => {
  const created = await runRelavium(["org", "create", name, "--owner", email, "--database-url", d.databaseUrl, "--json"])
  expect(created.status, created.output).toBe(0)
  const body = JSON.parse(created.output) as { org: { id: string }; token: string }
  return { id: body.org.id, token: body.token }
}

beforeAll(async () => {
  d = await createDeployment("inference")
  upstream = await startUpstream()
  dir = mkdtempSync(join(tmpdir(), "relavium-inference-"))
  routesFile = join(dir, "routes.json")
  writeFileSync(
    routesFile,
    JSON.stringify({ providers: { openai: { base_url: `${upstream.url}/v1` } }, models: { "gpt-4o-mini": { provider: "openai", model: "gpt-4o-mini" } } })
  )
  orgs.acme = await createOrg("Acme", "ada@acme.test")
  orgs.globex = await createOrg("Globex", "bob@globex.test")
  await Effect.runPromise(
    Effect.flatMap(KeyStore, (keys) => keys.set("openai", Redacted.make(MANAGED))).pipe(
      forOrg(orgs.acme.id),
      Effect.provide(
        SqlKeyStore.layerPgEncrypted({ masterKey: Redacted.make(masterKey) }).pipe(Layer.provide(Database.layerPg({ url: d.appDatabaseUrl, migrate: "verify" })))
      )
    )
  )
  gateway = spawnRelavium(["server", "inference", "--port", "0", "--routes", routesFile], {
    RELAVIUM_DATABASE_URL: d.appDatabaseUrl,
    RELAVIUM_MASTER_KEY: masterKey
  })
  url = (await waitForOutput(gateway, /listening on (http:\/\/\S+)/))[1]!
}, 120_000)

afterAll(async () => {
  await gateway?.stop()
  await upstream?.close()
  await d?.dispose()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const sdk = (token: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: token, maxRetries: 0 })

describe("relavium server inference", () => {
  it("serves an org's token with the org's managed key from Postgres; another org without a key is refused", async () => {
    upstream.script({ frames: openAiChat.text("gpt-4o-mini") })
    const answer = await sdk(orgs.acme.token).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
    expect(answer.choices[0]!.message.content).toBe("Hello, world!")
    expect(upstream.seen.map((s) => s.authorization)).toEqual([`Bearer ${MANAGED}`])
    expect((await sdk(orgs.acme.token).models.list()).data.map((m) => m.id)).toEqual(["gpt-4o-mini"])
    expect((await sdk(orgs.globex.token).models.list()).data).toEqual([])
    const refused = await sdk(orgs.globex.token).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError)
    expect(refused.error).toMatchObject({ code: "model_not_enabled" })
    const stranger = await sdk("rlv_" + "A".repeat(43)).models.list().catch((e) => e)
    expect(stranger).toBeInstanceOf(OpenAI.AuthenticationError)
    expect(upstream.seen).toHaveLength(1)
    expect(gateway.output()).not.toContain(MANAGED)
    expect(gateway.output()).not.toContain("Hello, world")
  })

  it("refuses to start on a bad routes file (exit 2, the place that is wrong) or without master keys", async () => {
    const bad = join(dir, "bad.json")
    writeFileSync(bad, JSON.stringify({ models: { cheap: { provider: "openai", model: "no-such-model" } } }))
    const env = { RELAVIUM_DATABASE_URL: d.appDatabaseUrl, RELAVIUM_MASTER_KEY: masterKey }
    const unpriced = await runRelavium(["server", "inference", "--port", "0", "--routes", bad], env)
    expect(unpriced.status).toBe(2)
    expect(unpriced.output).toContain("models.cheap.price")
    writeFileSync(bad, JSON.stringify({ models: { cheap: { provider: "openai", model: 42 } } }))
    const typed = await runRelavium(["server", "inference", "--port", "0", "--routes", bad], env)
    expect(typed.status).toBe(2)
    expect(typed.output).toContain(`${bad} at models.cheap.model`)
    const noKeys = await runRelavium(["server", "inference", "--port", "0", "--routes", routesFile], { RELAVIUM_DATABASE_URL: d.appDatabaseUrl })
    expect(noKeys.status).toBe(2)
    expect(noKeys.output).toContain("RELAVIUM_MASTER_KEYS")
  })

  it("stops cleanly on SIGTERM", async () => {
    expect(await gateway.stop("SIGTERM")).toBe(0)
  })
})

/**
 * Gate notifications over real channels on loopback: a real SMTP server (`smtp-server`, the
 * message captured), and an HTTP receiver standing for Slack's incoming webhook and for a generic
 * webhook (its Standard Webhooks signature verified). The API server is the whole `MonolithApi` on
 * SQLite (tenantServer.ts); the notifier's passes are run by the test.
 *
 * A gate that opens is told through every channel, with approve and reject links: opening a link
 * decides nothing, posting it approves the gate once and the run goes on; a second click, and the
 * other link, say it was already decided; an expired or altered link is refused. A failing
 * receiver is retried (the clock moved past the backoff) and each attempt recorded without the
 * secret; a gate decided elsewhere cancels its pending deliveries.
 */
import { Effect, Option, Redacted, TestClock, TestContext } from "effect"
import { createHmac, randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer, type Server as HttpServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SMTPServer } from "smtp-server"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { forOrg, mintToken, NotificationStore } from "@relavium/ports"
import { GateLinks, Notifier } from "../src/index.js"
import { call, startTenantServer, type TenantServer } from "./support/tenantServer.js"

const gateWorkflow = `schema_version: '1.0'
workflow:
  id: notify-gate
  nodes:
    - { id: start, type: input }
    - { id: gate, type: human_gate, gate_type: approval, assignee: 'lead@acme.test', message_template: 'Ship the release?' }
    - { id: result, type: output }
  edges:
    - { from: start, to: gate }
    - { from: gate, to: result }
`

interface Received {
  readonly path: string
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: string
}

const linkKey = Redacted.make(randomBytes(32).toString("base64url"))
const webhookSecret = `whsec_${randomBytes(24).toString("base64")}`
const localOwnerToken = mintToken()
const auth = `Bearer ${Redacted.value(localOwnerToken)}`

let server: TenantServer
let dataDir: string
let smtp: SMTPServer
let smtpPort: number
const mails: Array<{ to: ReadonlyArray<string>; raw: string }> = []
let receiver: HttpServer
let receiverUrl: string
const received: Array<Received> = []
/** While true the receiver answers 500 to everything. */
let receiverFails = false

const api = async (method: string, path: string, body?: unknown) => {
  const reply = await call(server, method, path, { authorization: auth, body })
  return reply
}

const sweepAt = (ms: number) =>
  server.run(
    Effect.gen(function* () {
      yield* TestClock.setTime(ms)
      const notifier = yield* Notifier.make
      return yield* notifier.sweep
    }).pipe(Effect.provide(TestContext.TestContext))
  )

const waitFor = async <A>(probe: () => Promise<A | undefined>, what: string): Promise<A> => {
  const deadline = Date.now() + 15_000
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

const startRun = async (workflowId: string) => {
  const run = await api("POST", "/runs", { workflowId })
  expect(run.status, run.text).toBe(201)
  const runId = run.json.runId as string
  const gateId = await waitFor(async () => ((await api("GET", `/gates?runId=${runId}`)).json as Array<{ gateId: string }>)[0]?.gateId, "a gate")
  return { runId, gateId }
}

const deliveriesOf = async (runId: string) =>
  (await api("GET", `/notifications/deliveries?runId=${runId}`)).json as Array<{
    channelId: string
    status: string
    attempts: number
    lastError: string | null
  }>

const channelIds = async () =>
  Object.fromEntries(((await api("GET", "/notifications/channels")).json as Array<{ id: string; name: string }>).map((c) => [c.name, c.id]))

const pathOfLink = (url: string) => new URL(url).pathname

let workflowId: string

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "relavium-notify-"))
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Array<Buffer> = []
      stream.on("data", (chunk: Buffer) => chunks.push(chunk))
      stream.on("end", () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString("utf8") })
        callback()
      })
    }
  })
  await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", () => resolve()))
  smtpPort = (smtp.server.address() as AddressInfo).port
  receiver = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      received.push({ path: request.url ?? "", headers: request.headers, body: Buffer.concat(chunks).toString("utf8") })
      response.statusCode = receiverFails ? 500 : 200
      response.end(receiverFails ? "down" : "ok")
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", () => resolve()))
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
  server = await startTenantServer({
    dataDir,
    localOwnerToken,
    notify: { masterKey: randomBytes(32).toString("base64"), linkKey, publicUrl: "https://relavium.acme.test" }
  })
  const mail = await api("PUT", "/notifications/channels/ops-mail", {
    settings: { kind: "email", host: "127.0.0.1", port: smtpPort, from: "relavium@acme.test", to: ["ops@acme.test"] }
  })
  expect(mail.status, mail.text).toBe(200)
  const slack = await api("PUT", "/notifications/channels/team-slack", { settings: { kind: "slack" }, secret: `${receiverUrl}/slack/T000/B000/secretpath` })
  expect(slack.status, slack.text).toBe(200)
  const hook = await api("PUT", "/notifications/channels/hook", { settings: { kind: "webhook", url: `${receiverUrl}/hook` }, secret: webhookSecret })
  expect(hook.status, hook.text).toBe(200)
  const upload = await api("POST", "/workflows", { yaml: gateWorkflow })
  expect(upload.status, upload.text).toBe(201)
  workflowId = upload.json.workflowId
}, 60_000)

afterAll(async () => {
  await server?.close()
  await new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve()))
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()))
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
})

describe("channels", () => {
  it("keeps secrets out of every answer and refuses bad settings with a located error, changing nothing", async () => {
    const listed = await api("GET", "/notifications/channels")
    expect(listed.status).toBe(200)
    expect(listed.json.map((c: { name: string; hasSecret: boolean }) => [c.name, c.hasSecret])).toEqual([
      ["hook", true],
      ["ops-mail", false],
      ["team-slack", true]
    ])
    expect(listed.text).not.toContain("secretpath")
    expect(listed.text).not.toContain(webhookSecret)
    const bad = await api("PUT", "/notifications/channels/bad", { settings: { kind: "email", host: "127.0.0.1", port: 70000, from: "x", to: [] } })
    expect(bad.status).toBe(400)
    expect(bad.text).toContain("port")
    const noSecret = await api("PUT", "/notifications/channels/no-url", { settings: { kind: "slack" } })
    expect(noSecret.status).toBe(400)
    expect(noSecret.json.message).toContain("incoming webhook URL")
    expect(((await api("GET", "/notifications/channels")).json as Array<unknown>).length).toBe(3)
  })
})

describe("a gate that opens", () => {
  it("is told by email, Slack and a signed webhook; its link approves once and the run goes on", async () => {
    const { gateId, runId } = await startRun(workflowId)
    const report = await sweepAt(Date.now())
    expect(report.sent).toBe(3)

    // Email, to the channel's recipients and the gate's assignee.
    const mail = mails.find((m) => m.raw.includes(runId))
    expect([...(mail?.to ?? [])].sort()).toEqual(["lead@acme.test", "ops@acme.test"])
    const mailText = mail!.raw.replaceAll("=\r\n", "").replaceAll("=3D", "=")
    expect(mailText).toContain("Ship the release?")

    // Slack: a JSON text with both links, posted to the secret URL.
    const slack = received.find((r) => r.path.startsWith("/slack/") && r.body.includes(runId))
    expect(slack?.path).toBe("/slack/T000/B000/secretpath")
    expect(JSON.parse(slack!.body).text).toContain("Approve: https://relavium.acme.test/gate-links/")

    // The webhook: Standard Webhooks headers, the signature over id.timestamp.body.
    const hook = received.find((r) => r.path === "/hook" && r.body.includes(runId))!
    const id = hook.headers["webhook-id"] as string
    const timestamp = hook.headers["webhook-timestamp"] as string
    const expected = createHmac("sha256", Buffer.from(webhookSecret.slice(6), "base64")).update(`${id}.${timestamp}.${hook.body}`).digest("base64")
    expect(hook.headers["webhook-signature"]).toBe(`v1,${expected}`)
    const event = JSON.parse(hook.body)
    expect(event.type).toBe("gate.opened")
    expect(event.data).toMatchObject({ runId, gateId, workflow: "notify-gate", message: "Ship the release?", assignee: "lead@acme.test" })
    expect(hook.body).not.toContain(webhookSecret)

    const deliveries = await deliveriesOf(runId)
    expect(deliveries.map((d) => [d.status, d.attempts])).toEqual([["sent", 1], ["sent", 1], ["sent", 1]])
    // A second pass tells nobody again.
    const before = received.length + mails.length
    expect((await sweepAt(Date.now())).sent).toBe(0)
    expect(received.length + mails.length).toBe(before)

    // The email's approve link is a valid link of this gate.
    const emailApprove = /https:\/\/relavium\.acme\.test\/gate-links\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/.exec(mailText)![1]!
    const linkId = GateLinks.verifyLinkToken(linkKey, emailApprove)
    expect(linkId._tag).toBe("Right")
    const link = await server.run(Effect.flatMap(NotificationStore, (store) => store.links.find(linkId._tag === "Right" ? linkId.right : "")))
    expect(Option.map(link, (l) => [l.orgId, l.runId, l.gateId, l.decision])).toEqual(Option.some(["local", runId, gateId, "approved"]))

    // Opening the link (as a mail scanner would) decides nothing.
    const approve = pathOfLink(event.data.approveUrl)
    const reject = pathOfLink(event.data.rejectUrl)
    const shown = await call(server, "GET", approve, { authorization: null })
    expect(shown.status).toBe(200)
    expect(shown.text).toContain('<form method="post">')
    expect(((await api("GET", `/gates?runId=${runId}`)).json as Array<unknown>).length).toBe(1)

    // Posting it approves, once; the run continues to its end.
    const decided = await call(server, "POST", approve, { authorization: null })
    expect(decided.status, decided.text).toBe(200)
    expect(decided.text).toContain("Approved")
    const status = await waitFor(async () => {
      const run = await api("GET", `/runs/${runId}`)
      return run.json.status === "completed" ? run.json.status : undefined
    }, "the run to complete")
    expect(status).toBe("completed")
    const again = await call(server, "POST", approve, { authorization: null })
    expect(again.status).toBe(409)
    expect(again.text).toContain("Already decided")
    expect((await call(server, "POST", reject, { authorization: null })).status).toBe(409)
    expect((await call(server, "GET", approve, { authorization: null })).status).toBe(409)
  }, 60_000)

  it("refuses an expired link and an altered one, deciding nothing", async () => {
    const { gateId, runId } = await startRun(workflowId)
    const issue = (expiresAt: string) =>
      server.run(
        Effect.gen(function* () {
          const store = yield* NotificationStore
          const linkId = GateLinks.newLinkId()
          yield* forOrg("local")(store.links.create({ linkId, runId, gateId, decision: "approved", expiresAt }, new Date().toISOString()))
          return GateLinks.makeLinkToken(linkKey, linkId)
        })
      )
    const expired = await issue(new Date(Date.now() - 1000).toISOString())
    const refusedExpired = await call(server, "POST", `/gate-links/${expired}`, { authorization: null })
    expect(refusedExpired.status).toBe(410)
    expect(refusedExpired.text).toContain("expired")
    expect((await call(server, "GET", `/gate-links/${expired}`, { authorization: null })).status).toBe(410)
    const valid = await issue(new Date(Date.now() + 60_000).toISOString())
    const [linkId, signature] = valid.split(".") as [string, string]
    const flip = (s: string) => `${s.slice(0, 5)}${s[5] === "A" ? "B" : "A"}${s.slice(6)}`
    expect((await call(server, "POST", `/gate-links/${flip(linkId)}.${signature}`, { authorization: null })).status).toBe(400)
    expect((await call(server, "POST", `/gate-links/${linkId}.${flip(signature)}`, { authorization: null })).status).toBe(400)
    const forged = GateLinks.makeLinkToken(Redacted.make("not the server's key"), linkId)
    expect((await call(server, "POST", `/gate-links/${forged}`, { authorization: null })).status).toBe(400)
    expect((await call(server, "POST", `/gate-links/${valid}x`, { authorization: null })).status).toBe(400)
    // A link signed by the server but never issued (no row) is refused too.
    const unissued = GateLinks.makeLinkToken(linkKey, GateLinks.newLinkId())
    expect((await call(server, "POST", `/gate-links/${unissued}`, { authorization: null })).status).toBe(400)
    expect(((await api("GET", `/gates?runId=${runId}`)).json as Array<unknown>).length).toBe(1)
    await api("POST", `/runs/${runId}/cancel`)
  }, 60_000)

  it("retries a failing receiver with backoff and records each attempt without the secret", async () => {
    const { runId } = await startRun(workflowId)
    const ids = await channelIds()
    receiverFails = true
    const now = Date.now()
    await sweepAt(now)
    const failed = await deliveriesOf(runId)
    const slack = failed.find((d) => d.channelId === ids["team-slack"])!
    expect([slack.status, slack.attempts, slack.lastError]).toEqual(["pending", 1, "the receiver answered HTTP 500"])
    expect(JSON.stringify(failed)).not.toContain("secretpath")
    expect(failed.find((d) => d.channelId === ids["ops-mail"])?.status).toBe("sent")
    // Not due again before the backoff has passed.
    receiverFails = false
    const early = received.length
    await sweepAt(now + 1_000)
    expect(received.length).toBe(early)
    await sweepAt(now + 10 * 60_000)
    const retried = await deliveriesOf(runId)
    expect(retried.map((d) => [d.channelId, d.status, d.attempts]).sort()).toEqual(
      [
        [ids["hook"], "sent", 2],
        [ids["ops-mail"], "sent", 1],
        [ids["team-slack"], "sent", 2]
      ].sort()
    )
    await api("POST", `/runs/${runId}/cancel`)
  }, 60_000)

  it("cancels the pending deliveries of a gate decided elsewhere", async () => {
    const { gateId, runId } = await startRun(workflowId)
    receiverFails = true
    const now = Date.now()
    await sweepAt(now)
    receiverFails = false
    const decided = await api("POST", `/runs/${runId}/gates/${gateId}/approve`, {})
    expect(decided.status, decided.text).toBe(200)
    const before = received.length
    const report = await sweepAt(now + 10 * 60_000)
    expect(report.cancelled).toBe(2)
    expect(received.length).toBe(before)
    const deliveries = await deliveriesOf(runId)
    expect(deliveries.map((d) => d.status).sort()).toEqual(["cancelled", "cancelled", "sent"])
  }, 60_000)
})

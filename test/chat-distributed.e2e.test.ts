/**
 * Chats on the distributed deployment, every part a separate OS process of the
 * bundled `relavium`: 2 `server api` replicas, 2 `server worker` replicas, 1
 * `server gateway` and a `daemon start --gateway` on a git repository, against
 * the real Postgres, Redis and NATS on loopback. The model is a local server
 * speaking OpenAI's streaming wire format, scripted by the conversation.
 *
 * - A chat of a project bound to the daemon, started through api A, streams
 *   through api B (SSE); the write the agent asks for is approved through api
 *   B and lands in the daemon's workspace.
 * - Bad input: an unknown chat 404, a message while a decision is pending
 *   409, a decision on a call no longer pending 409, a project whose daemon
 *   is not connected refused naming it.
 * - The worker running a turn is SIGKILLed mid-stream, or mid-tool-call: the
 *   other worker settles the turn (the partial answer kept, `interrupted`; the
 *   running call reported interrupted), nothing runs twice, and a resume
 *   through the other api goes on.
 * - A turn running on a worker is cancelled through an api replica.
 * - The daemon goes away during a turn: the turn fails at once with
 *   `tool_unavailable` naming it; a resume once it is back goes on.
 * - The queue's jobs carry ids only.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { existsSync, readFileSync } from "node:fs"
import { gitRepo, git } from "../packages/chat/test/fixtures.js"
import { type ApiProcess, type CloudProcess, createDeployment, type Deployment, startApi, startWorker, testToken, waitFor, waitForOutput } from "./support/cloud.js"
import { type GatewayProcess, queryDatabase, startGateway, startRemoteDaemon } from "./support/distributed.js"
import { answerFrames, type ChatSseEvent, chatEvents, gapFree, type ModelServer, startModel, toolCallFrames } from "./support/chats.js"

const KEY = "sk-test-chat-distributed-0123456789"
const NOTE = "written by a chat on the distributed deployment\n"
const STORY_START = "Once upon a time "

describe("chats on the distributed deployment: 2 api, 2 workers, a gateway and a daemon, as OS processes", () => {
  let d: Deployment
  let model: ModelServer
  let apiA: ApiProcess
  let apiB: ApiProcess
  let workers: Array<CloudProcess> = []
  let gateway: GatewayProcess
  let daemon: CloudProcess
  let repo: string
  let storyCalls = 0
  let longCalls = 0
  let releaseDaemonGone: () => void = () => {}
  const daemonGone = { promise: new Promise<void>((resolve) => (releaseDaemonGone = resolve)) }
  let env: Record<string, string> = {}
  const workerArgs = ["--job-lock-ms", "4000", "--stalled-check-ms", "1000"]

  /** The worker whose pid the chat's claim names. */
  const ownerOf = async (chatId: string) => {
    const [row] = await queryDatabase<{ turn_owner: string | null }>(d.databaseUrl, `SELECT turn_owner FROM chats WHERE chat_id = '${chatId}'`)
    const pid = Number(row?.turn_owner?.split(":")[1])
    const worker = workers.find((w) => w.process.pid === pid)
    expect(worker, `no worker has pid ${pid}`).toBeDefined()
    return worker!
  }

  beforeAll(async () => {
    model = await startModel((request) => {
      if (request.lastUser.includes("away")) {
        // The daemon goes away while the model answers; after the resume the model asks again.
        const unavailable = request.toolResults.filter((r) => r.includes("tool_unavailable")).length
        if (request.toolResults.length === 0) {
          return { frames: toolCallFrames("Writing. ", "call_away_1", "write_file", { path: "away.txt", content: "back\n" }), after: daemonGone.promise }
        }
        return request.toolResults.length === unavailable
          ? { frames: toolCallFrames("Again. ", "call_away_2", "write_file", { path: "away.txt", content: "back\n" }) }
          : { frames: answerFrames("away.txt is written.") }
      }
      if (request.lastUser.includes("long")) {
        longCalls += 1
        return longCalls === 1 ? { hold: answerFrames("A long answer that is cut short.").slice(0, 3) } : { frames: answerFrames("The long answer ends.") }
      }
      if (request.lastUser.includes("wait")) {
        return request.toolResults.length === 0
          ? { frames: toolCallFrames("Waiting. ", "call_sleep", "run_command", { command: "sleep", args: ["30"] }) }
          : { frames: answerFrames("The wait was interrupted; I will not run it again.") }
      }
      if (request.lastUser.includes("notes")) {
        return request.toolResults.length === 0
          ? { frames: toolCallFrames("I will write the notes. ", "call_write", "write_file", { path: "notes.txt", content: NOTE }) }
          : { frames: answerFrames("notes.txt is written.") }
      }
      // The first telling of the story stops mid-stream (its worker is killed); later ones end.
      storyCalls += 1
      return storyCalls === 1 ? { hold: answerFrames(`${STORY_START}there was a queue.`).slice(0, 4) } : { frames: answerFrames("The story ends here.") }
    })
    d = await createDeployment("chats")
    repo = gitRepo({ "README.md": "# a project\n" })
    env = { RELAVIUM_OPENAI_BASE_URL: model.url, RELAVIUM_OPENAI_API_KEY: KEY }
    apiA = await startApi(d)
    ;[apiB, gateway, ...workers] = await Promise.all([
      startApi(d),
      startGateway(d),
      startWorker(d, { args: workerArgs, env }),
      startWorker(d, { args: workerArgs, env })
    ])
    daemon = await startRemoteDaemon(gateway, repo, { name: "laptop" })
  }, 180_000)

  afterAll(async () => {
    await Promise.all([apiA, apiB, gateway, daemon, ...workers].map((p) => p?.stop("SIGKILL")))
    model?.close()
    await d?.dispose()
  })

  let chatId: string

  it("streams a chat started through api A on api B, and runs the write approved through api B in the daemon's workspace", async () => {
    const project = await apiA.api("POST", "/projects", { dir: repo, daemon: "laptop" })
    expect(project.status, project.text).toBe(201)
    expect(project.json).toMatchObject({ rootPath: repo, daemon: "laptop" })
    expect((await apiB.api("GET", "/projects")).json).toEqual([project.json])
    const chat = await apiA.api("POST", "/chats", { projectId: project.json.projectId, model: "openai/gpt-4o-mini" })
    expect(chat.status, chat.text).toBe(201)
    chatId = chat.json.chatId
    const start = chat.json.lastSequenceNumber as number

    // Api B follows from before the message is sent; the turn runs on a worker.
    const untilPaused = chatEvents(apiB.url, testToken, chatId, { lastEventId: start, until: (e) => e.type === "turn:paused" })
    const sent = await apiA.api("POST", `/chats/${chatId}/messages`, { text: "write the notes" })
    expect(sent.status, sent.text).toBe(202)
    const paused = await untilPaused
    expect(gapFree(paused, start)).toBe(true)
    expect(paused.map((e) => e.type)).toEqual(expect.arrayContaining(["turn:started", "message:started", "message:delta", "tool:call", "approval:requested"]))
    const requested = paused.find((e) => e.type === "approval:requested")!
    expect(requested.data).toMatchObject({ toolCallId: "call_write", name: "write_file" })
    expect(readFileSync(`${repo}/README.md`, "utf8")).toBe("# a project\n")

    // While the decision is pending, another message is refused; an unknown chat is a 404.
    const busy = await apiB.api("POST", `/chats/${chatId}/messages`, { text: "and more" })
    expect(busy.status).toBe(409)
    expect(busy.json.message).toContain("call_write")
    expect((await apiB.api("GET", `/chats/${crypto.randomUUID()}`)).status).toBe(404)
    expect((await apiB.api("POST", `/chats/${chatId}/approvals/call_nothing`, { decision: "allow" })).status).toBe(404)

    const last = paused.at(-1)!.id
    const untilDone = chatEvents(apiB.url, testToken, chatId, { lastEventId: last, until: (e) => e.type === "turn:completed" || e.type === "turn:failed" })
    const approved = await apiB.api("POST", `/chats/${chatId}/approvals/call_write`, { decision: "allow" })
    expect(approved.status, approved.text).toBe(200)
    expect(approved.json).toMatchObject({ decision: "allow", resumed: true, pending: [] })
    const done = await untilDone
    expect(gapFree(done, last)).toBe(true)
    expect(done.at(-1)!.type).toBe("turn:completed")
    const result = done.find((e) => e.type === "tool:result")!
    expect(result.data).toMatchObject({ toolCallId: "call_write", outcome: "ok" })
    expect(readFileSync(`${repo}/notes.txt`, "utf8")).toBe(NOTE)
    expect(git(repo, "status", "--porcelain")).toContain("notes.txt")

    // A decision on a call that already ran is refused, and the whole log reads the same on api A.
    const again = await apiA.api("POST", `/chats/${chatId}/approvals/call_write`, { decision: "deny" })
    expect(again.status).toBe(409)
    const all = await chatEvents(apiA.url, testToken, chatId, { until: (e) => e.id === done.at(-1)!.id })
    expect(gapFree(all, -1)).toBe(true)
    expect(all.slice(start + 1).map((e) => e.data)).toEqual([...paused, ...done].map((e) => e.data))
    const detail = await apiA.api("GET", `/chats/${chatId}`)
    expect(detail.json).toMatchObject({ turnStatus: "idle", pendingApprovals: 0 })
    expect(detail.json.messages.at(-1).text ?? JSON.stringify(detail.json.messages.at(-1))).toContain("notes.txt is written.")
    expect(model.requests.filter((r) => r.lastUser.includes("notes"))).toHaveLength(2)
  }, 120_000)

  it("refuses a message for a project whose daemon is not connected, naming the daemon", async () => {
    const project = await apiA.api("POST", "/projects", { dir: "/srv/elsewhere", daemon: "absent-daemon" })
    expect(project.status, project.text).toBe(201)
    const chat = await apiA.api("POST", "/chats", { projectId: project.json.projectId, model: "openai/gpt-4o-mini" })
    const sent = await apiB.api("POST", `/chats/${chat.json.chatId}/messages`, { text: "write the notes" })
    expect(sent.status).toBe(409)
    expect(sent.json.message).toContain("'absent-daemon'")
    expect((await apiB.api("GET", `/chats/${chat.json.chatId}`)).json.messages).toEqual([])
    const bad = await apiA.api("POST", "/projects", { dir: "/srv/x", daemon: "no spaces allowed" })
    expect(bad.status).toBe(400)
  }, 60_000)

  it("settles the turn of a SIGKILLed worker on the other one, keeps the partial answer, and goes on after a resume", async () => {
    const before = (await apiA.api("GET", `/chats/${chatId}`)).json.lastSequenceNumber as number
    const noteBefore = readFileSync(`${repo}/notes.txt`, "utf8")
    const untilDelta = chatEvents(apiB.url, testToken, chatId, {
      lastEventId: before,
      until: (e) => e.type === "message:delta" && String(e.data.text ?? e.data.delta ?? "").length > 0
    })
    expect((await apiA.api("POST", `/chats/${chatId}/messages`, { text: "tell a story" })).status).toBe(202)
    await untilDelta
    // The worker holding the turn is the one whose pid its claim names.
    const victim = await ownerOf(chatId)
    await victim.stop("SIGKILL")
    const survivor = workers.find((w) => w !== victim)!

    const settled = await chatEvents(apiB.url, testToken, chatId, { lastEventId: before, until: (e) => e.type === "turn:interrupted" })
    expect(gapFree(settled, before)).toBe(true)
    const interrupted = settled.find((e) => e.type === "message:completed")!
    expect(interrupted.data.status).toBe("interrupted")
    expect(interrupted.data.text).toContain("Once upon")
    expect(settled.filter((e) => e.type === "tool:started")).toEqual([])

    const last = settled.at(-1)!.id
    const untilDone = chatEvents(apiA.url, testToken, chatId, { lastEventId: last, until: (e) => e.type === "turn:completed" || e.type === "turn:failed" })
    const resumed = await apiB.api("POST", `/chats/${chatId}/resume`)
    expect(resumed.status, resumed.text).toBe(202)
    const done = await untilDone
    expect(done.at(-1)!.type).toBe("turn:completed")
    expect(done.map((e) => e.type)).toContain("turn:resumed")
    // The survivor ran it; the earlier write was not run again.
    expect(survivor.process.exitCode).toBeNull()
    expect(readFileSync(`${repo}/notes.txt`, "utf8")).toBe(noteBefore)
    expect(model.requests.filter((r) => r.lastUser.includes("notes"))).toHaveLength(2)
    const detail = await apiB.api("GET", `/chats/${chatId}`)
    expect(detail.json.turnStatus).toBe("idle")
  }, 120_000)

  it("reports the tool call a SIGKILLed worker was running as interrupted, and never runs it again", async () => {
    workers = [...workers.filter((w) => w.process.exitCode === null && w.process.signalCode === null), await startWorker(d, { args: workerArgs, env })]
    const projectId = (await apiA.api("GET", `/chats/${chatId}`)).json.projectId
    const chat = await apiB.api("POST", "/chats", { projectId, model: "openai/gpt-4o-mini", approvalMode: "auto" })
    expect(chat.status, chat.text).toBe(201)
    const id = chat.json.chatId as string
    const start = chat.json.lastSequenceNumber as number
    const untilRunning = chatEvents(apiA.url, testToken, id, { lastEventId: start, until: (e) => e.type === "tool:started" })
    expect((await apiB.api("POST", `/chats/${id}/messages`, { text: "wait a while" })).status).toBe(202)
    await untilRunning
    const victim = await ownerOf(id)
    await victim.stop("SIGKILL")

    const settled = await chatEvents(apiA.url, testToken, id, { lastEventId: start, until: (e) => e.type === "turn:interrupted" })
    expect(gapFree(settled, start)).toBe(true)
    const result = settled.find((e) => e.type === "tool:result")!
    expect(result.data).toMatchObject({ toolCallId: "call_sleep", outcome: "interrupted" })

    const last = settled.at(-1)!.id
    const untilDone = chatEvents(apiB.url, testToken, id, { lastEventId: last, until: (e) => e.type === "turn:completed" || e.type === "turn:failed" })
    expect((await apiA.api("POST", `/chats/${id}/resume`)).status).toBe(202)
    const done = await untilDone
    expect(done.at(-1)!.type).toBe("turn:completed")
    // The interrupted call was started once, and the model was told it was interrupted.
    expect([...settled, ...done].filter((e) => e.type === "tool:started")).toHaveLength(1)
    const after = model.requests.filter((r) => r.lastUser.includes("wait"))
    expect(after).toHaveLength(2)
    expect(after[1]!.toolResults[0]).toContain("interrupted")
  }, 120_000)

  it("cancels through api B a turn a worker runs: the partial answer is kept, and a resume goes on", async () => {
    const projectId = (await apiA.api("GET", `/chats/${chatId}`)).json.projectId
    const chat = await apiA.api("POST", "/chats", { projectId, model: "openai/gpt-4o-mini" })
    const id = chat.json.chatId as string
    const start = chat.json.lastSequenceNumber as number
    const streaming = chatEvents(apiA.url, testToken, id, { lastEventId: start, until: (e) => e.type === "message:delta" })
    expect((await apiA.api("POST", `/chats/${id}/messages`, { text: "a long answer please" })).status).toBe(202)
    await streaming
    const cancelled = await apiB.api("POST", `/chats/${id}/cancel`)
    expect(cancelled.json).toEqual({ chatId: id, cancelled: true })
    const settled = await chatEvents(apiB.url, testToken, id, { lastEventId: start, until: (e) => e.type === "turn:interrupted" })
    expect(gapFree(settled, start)).toBe(true)
    expect(settled.at(-1)!.data.reason).toBe("the turn was cancelled")
    const partial = settled.find((e) => e.type === "message:completed")!
    expect(partial.data).toMatchObject({ status: "interrupted" })
    expect(partial.data.text).toContain("A long")
    // Nothing runs now: a second cancel asks nobody.
    expect((await apiA.api("POST", `/chats/${id}/cancel`)).json).toEqual({ chatId: id, cancelled: false })
    const last = settled.at(-1)!.id
    const untilDone = chatEvents(apiA.url, testToken, id, { lastEventId: last, until: (e) => e.type === "turn:completed" || e.type === "turn:failed" })
    expect((await apiB.api("POST", `/chats/${id}/resume`)).status).toBe(202)
    expect((await untilDone).at(-1)!.type).toBe("turn:completed")
  }, 120_000)

  it("fails the turn at once with tool_unavailable when the daemon goes away during it; a resume once it is back goes on", async () => {
    const projectId = (await apiA.api("GET", `/chats/${chatId}`)).json.projectId
    const chat = await apiA.api("POST", "/chats", { projectId, model: "openai/gpt-4o-mini", approvalMode: "auto" })
    const id = chat.json.chatId as string
    const start = chat.json.lastSequenceNumber as number
    const rested = chatEvents(apiB.url, testToken, id, { lastEventId: start, until: (e) => e.type === "turn:failed" || e.type === "turn:completed" })
    expect((await apiA.api("POST", `/chats/${id}/messages`, { text: "write while I am away" })).status).toBe(202)
    // The message was accepted (the daemon was there) and the model asked; the daemon goes away
    // before the model's answer (a write) arrives.
    await waitFor(async () => (model.requests.some((r) => r.lastUser.includes("away")) ? true : undefined), "the model to be asked")
    await daemon.stop("SIGKILL")
    await waitForOutput(gateway, /tools daemon 'laptop' disconnected/)
    releaseDaemonGone()
    const failed = await rested
    expect(failed.at(-1)!.type).toBe("turn:failed")
    expect(failed.at(-1)!.data).toMatchObject({ code: "tool_unavailable" })
    expect(failed.at(-1)!.data.message).toContain("'laptop'")
    expect(failed.find((e) => e.type === "tool:result")!.data).toMatchObject({ toolCallId: "call_away_1", outcome: "error" })
    expect(existsSync(`${repo}/away.txt`)).toBe(false)
    // While it is away a message or a resume is refused, naming it; once back, the resume goes on.
    const refused = await apiB.api("POST", `/chats/${id}/resume`)
    expect(refused.status).toBe(409)
    expect(refused.json.message).toContain("'laptop'")
    daemon = await startRemoteDaemon(gateway, repo, { name: "laptop" })
    await waitForOutput(gateway, /'laptop' disconnected[\s\S]*tools daemon 'laptop' connected/)
    const last = failed.at(-1)!.id
    const done = chatEvents(apiA.url, testToken, id, { lastEventId: last, until: (e) => e.type === "turn:failed" || e.type === "turn:completed" })
    expect((await apiB.api("POST", `/chats/${id}/resume`)).status).toBe(202)
    expect((await done).at(-1)!.type).toBe("turn:completed")
    expect(readFileSync(`${repo}/away.txt`, "utf8")).toBe("back\n")
  }, 120_000)

  it("keeps message text out of the queue's jobs", async () => {
    const { withRedis } = await import("./support/cloud.js")
    const payloads = await withRedis(async (redis) => {
      const keys = await redis.keys(`${d.queuePrefix}:node:*`)
      const found: Array<string> = []
      for (const key of keys) {
        if ((await redis.type(key)) !== "hash") continue
        const data = await redis.hget(key, "data")
        if (data !== null && data.includes("ChatTurn")) found.push(data)
      }
      return found
    })
    expect(payloads.length).toBeGreaterThan(0)
    for (const payload of payloads) {
      expect(Object.keys(JSON.parse(payload)).sort()).toEqual(["_tag", "chatId", "claimedBy", "orgId", "turn"])
      expect(payload).not.toContain("notes")
      expect(payload).not.toContain("story")
      expect(payload).not.toContain("wait")
      expect(payload).not.toContain("long")
      expect(payload).not.toContain("away")
    }
  })
})

export type { ChatSseEvent }

/**
 * One scripted chat gives the same chat events (ids, times and the
 * workspace's path normalized) in `relavium chat send`, the monolith and the
 * distributed deployment (api, worker, gateway and a dialed-in daemon as OS
 * processes), with the same model: a local server speaking OpenAI's streaming
 * wire format. And the monolith runs the tools of a project bound to a daemon
 * dialed in to it in that daemon, refusing messages while it is away.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startMonolith } from "../packages/server/test/support/monolith.js"
import { gitRepo } from "../packages/chat/test/fixtures.js"
import { createDeployment, type Deployment, runRelavium, spawnRelavium, startApi, startWorker, testToken, type CloudProcess, waitFor, waitForOutput } from "./support/cloud.js"
import { startGateway, startRemoteDaemon } from "./support/distributed.js"
import { answerFrames, chatEvents, type ModelServer, normalizeChatEvents, startModel, toolCallFrames } from "./support/chats.js"

const KEY = "sk-test-chat-parity-0123456789"
const NOTE = "the same in every deployment\n"
const MESSAGE = "write the notes"
const MODEL = "openai/gpt-4o-mini"

describe("chat parity: relavium chat send, the monolith and the distributed deployment", () => {
  let model: ModelServer
  const dirs: Array<string> = []
  const processes: Array<{ readonly stop: (signal?: NodeJS.Signals) => Promise<unknown> }> = []
  let d: Deployment | undefined

  beforeAll(async () => {
    model = await startModel((request) =>
      request.toolResults.length === 0
        ? { frames: toolCallFrames("I will write the notes. ", "call_write", "write_file", { path: "notes.txt", content: NOTE }) }
        : { frames: answerFrames("notes.txt is written.") }
    )
  })

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop("SIGKILL")))
    model?.close()
    await d?.dispose()
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  const freshDir = (prefix: string) => {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    dirs.push(dir)
    return dir
  }
  const modelEnv = () => ({ RELAVIUM_OPENAI_BASE_URL: model.url, RELAVIUM_OPENAI_API_KEY: KEY })

  const viaCli = async () => {
    const repo = gitRepo({ "README.md": "# a project\n" })
    const result = await runRelavium(
      ["chat", "send", "--project", repo, "--model", MODEL, "--approval-mode", "auto", "--json", MESSAGE],
      { RELAVIUM_DATA_DIR: freshDir("relavium-parity-cli-"), ...modelEnv() }
    )
    expect(result.status, result.output).toBe(0)
    const events = result.output
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, any>)
      .filter((event) => typeof event.type === "string" && typeof event.seq === "number")
    expect(readFileSync(join(repo, "notes.txt"), "utf8")).toBe(NOTE)
    return normalizeChatEvents(events, repo)
  }

  /** A monolith calling the model above (it inherits this process's environment: the model's URL and key for it alone). */
  const monolithWithModel = async (dataDir: string) => {
    const saved = { ...process.env }
    Object.assign(process.env, modelEnv())
    const monolith = await startMonolith(dataDir).finally(() => {
      for (const key of Object.keys(modelEnv())) {
        if (saved[key] === undefined) delete process.env[key]
        else process.env[key] = saved[key]
      }
    })
    processes.push(monolith)
    return monolith
  }

  const viaMonolith = async () => {
    const repo = gitRepo({ "README.md": "# a project\n" })
    const monolith = await monolithWithModel(freshDir("relavium-parity-monolith-"))
    const project = await monolith.api("POST", "/projects", { dir: repo })
    expect(project.status, project.text).toBe(201)
    const chat = await monolith.api("POST", "/chats", { projectId: project.json.projectId, model: MODEL, approvalMode: "auto" })
    expect(chat.status, chat.text).toBe(201)
    const done = chatEvents(monolith.url, monolith.token, chat.json.chatId, { fetch: monolith.fetch, until: (e) => e.type.startsWith("turn:") && e.type !== "turn:started" })
    expect((await monolith.api("POST", `/chats/${chat.json.chatId}/messages`, { text: MESSAGE })).status).toBe(202)
    const events = await done
    expect(readFileSync(join(repo, "notes.txt"), "utf8")).toBe(NOTE)
    return normalizeChatEvents(events.map((e) => e.data), repo)
  }

  const viaDistributed = async () => {
    d = await createDeployment("parity")
    const repo = gitRepo({ "README.md": "# a project\n" })
    const [api, gateway, worker] = await Promise.all([startApi(d), startGateway(d), startWorker(d, { env: modelEnv() })])
    processes.push(api, gateway, worker)
    const daemon: CloudProcess = await startRemoteDaemon(gateway, repo, { name: "parity" })
    processes.push(daemon)
    const project = await api.api("POST", "/projects", { dir: repo, daemon: "parity" })
    expect(project.status, project.text).toBe(201)
    const chat = await api.api("POST", "/chats", { projectId: project.json.projectId, model: MODEL, approvalMode: "auto" })
    expect(chat.status, chat.text).toBe(201)
    const done = chatEvents(api.url, testToken, chat.json.chatId, { until: (e) => e.type.startsWith("turn:") && e.type !== "turn:started" })
    expect((await api.api("POST", `/chats/${chat.json.chatId}/messages`, { text: MESSAGE })).status).toBe(202)
    const events = await done
    expect(readFileSync(join(repo, "notes.txt"), "utf8")).toBe(NOTE)
    return normalizeChatEvents(events.map((e) => e.data), repo)
  }

  it("gives the same events in all three", async () => {
    const cli = await viaCli()
    const monolith = await viaMonolith()
    const distributed = await viaDistributed()
    expect(cli.map((e) => e.type)).toEqual(
      expect.arrayContaining(["chat:created", "turn:started", "message:delta", "tool:call", "tool:started", "tool:result", "message:completed", "turn:completed"])
    )
    expect(cli.at(-1)!.type).toBe("turn:completed")
    expect(monolith).toEqual(cli)
    expect(distributed).toEqual(cli)
    expect(model.requests).toHaveLength(6)
  }, 240_000)

  it("the monolith runs the tools of a project bound to a dialed-in daemon in that daemon, and refuses messages while it is away", async () => {
    const dataDir = freshDir("relavium-parity-monolith-daemon-")
    const monolith = await monolithWithModel(dataDir)
    const repo = gitRepo({ "README.md": "# a project\n" })
    const project = await monolith.api("POST", "/projects", { dir: repo, daemon: "laptop" })
    expect(project.status, project.text).toBe(201)
    const chat = await monolith.api("POST", "/chats", { projectId: project.json.projectId, model: MODEL, approvalMode: "auto" })
    const chatId = chat.json.chatId as string
    const away = await monolith.api("POST", `/chats/${chatId}/messages`, { text: MESSAGE })
    expect(away.status).toBe(409)
    expect(away.json.message).toContain("'laptop'")

    const daemon = spawnRelavium(
      ["daemon", "start", "--gateway", `${monolith.url.replace(/^https:/, "wss:")}/rpc/daemon`, "--ca", join(dataDir, "monolith-cert.pem"), "--workspace", repo, "--name", "laptop"],
      { RELAVIUM_TOKEN: monolith.token }
    )
    processes.push(daemon)
    await waitForOutput(daemon, /relavium daemon: connected to \S+ as 'laptop'/)
    await waitFor(async () => (monolith.output().includes("tools daemon 'laptop' connected") ? true : undefined), "the monolith to see the daemon")
    const start = (await monolith.api("GET", `/chats/${chatId}`)).json.lastSequenceNumber as number
    const done = chatEvents(monolith.url, monolith.token, chatId, { fetch: monolith.fetch, lastEventId: start, until: (e) => e.type.startsWith("turn:") && e.type !== "turn:started" })
    expect((await monolith.api("POST", `/chats/${chatId}/messages`, { text: MESSAGE })).status).toBe(202)
    const events = await done
    expect(events.at(-1)!.type).toBe("turn:completed")
    expect(events.find((e) => e.type === "tool:result")!.data).toMatchObject({ toolCallId: "call_write", outcome: "ok" })
    expect(readFileSync(join(repo, "notes.txt"), "utf8")).toBe(NOTE)
  }, 120_000)
})

/**
 * Live tool output on the monolith, over real HTTPS and the stock
 * `eventsource` client: a workflow run whose scripted agent calls
 * `run_command` with a shell loop (a line every 100 ms for 2 s), and a chat
 * turn doing the same. The SSE client receives the command's output as
 * several `tool:output` events before the tool's completed event
 * (`agent:tool_result`, `tool:result`), while the command runs (the loop waits
 * for a file the test writes only once the client has its first chunk), and
 * what the model sees is unchanged.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { EventSource } from "eventsource"
import { Agent, fetch as undiciFetch } from "undici"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ChatEvent } from "@relavium/chat"
import { gitRepo } from "../../chat/test/fixtures.js"
import { liveChunksBefore, LOOP_OUTPUT, loopCalls, loopCassette, loopWorkflow, openGateOn } from "../../../test/support/liveOutput.js"
import { collect, type Monolith, startMonolith } from "./support/monolith.js"

const CHAT_EVENT_TYPES = ChatEvent.members.map((member) => member.fields.type.literals[0])

let m: Monolith
let dispatcher: Agent
let workspace: string

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "relavium-live-output-data-"))
  workspace = mkdtempSync(join(tmpdir(), "relavium-live-output-ws-"))
  // Replayed in order: the workflow run's two model calls, then the chat turn's two.
  const tape = join(dataDir, "live.cassette.json")
  writeFileSync(tape, loopCassette([...loopCalls("toolu_run_loop"), ...loopCalls("toolu_chat_loop")]))
  m = await startMonolith(dataDir, ["--workspace", workspace, "--cassette", tape])
  dispatcher = new Agent({ connect: { ca: readFileSync(join(dataDir, "monolith-cert.pem"), "utf8") } })
}, 60_000)

afterAll(async () => {
  await m?.stop()
  await dispatcher?.close()
})

interface Received {
  readonly id: number
  readonly type: string
  readonly data: { readonly [k: string]: any }
}

/** Follows a chat's events until `until` holds (rejects after 30 s). */
const followChat = (chatId: string, until: (received: ReadonlyArray<Received>) => boolean) =>
  new Promise<Array<Received>>((resolve, reject) => {
    const source = new EventSource(`${m.url}/chats/${chatId}/events`, {
      fetch: (input, init) =>
        undiciFetch(input, {
          ...init,
          dispatcher,
          headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${m.token}` }
        }) as unknown as Promise<Response>
    })
    const received: Array<Received> = []
    const timer = setTimeout(() => {
      source.close()
      reject(new Error(`the chat's events never ended the turn; received: ${received.map((e) => e.type).join(", ")}`))
    }, 30_000)
    for (const type of CHAT_EVENT_TYPES) {
      source.addEventListener(type, (message) => {
        if (source.readyState === source.CLOSED) return
        received.push({ id: Number(message.lastEventId), type: message.type, data: JSON.parse(message.data) })
        if (until(received)) {
          clearTimeout(timer)
          source.close()
          resolve(received)
        }
      })
    }
  })

describe("live tool output on the monolith", () => {
  it("a workflow run: the SSE client sees the loop's lines as tool:output events before agent:tool_result", async () => {
    const uploaded = await m.api("POST", "/workflows", { yaml: loopWorkflow("live-loop"), file: "live-loop.relavium.yaml" })
    expect(uploaded.status, uploaded.text).toBe(201)
    const started = await m.api("POST", "/runs", { workflowId: uploaded.json.workflowId })
    expect(started.status, started.text).toBe(201)
    const runId = started.json.runId as string
    let opened = false
    const events = await collect(m.events(runId), (got) => {
      if (!opened) opened = openGateOn(workspace, got)
      return false
    })
    expect(events.at(-1)!.type, JSON.stringify(events.at(-1))).toBe("run:completed")
    const live = liveChunksBefore(events, "agent:tool_result", "toolu_run_loop")
    expect(live.chunks.length).toBeGreaterThanOrEqual(5)
    expect(new Set(live.chunks.map((e) => e.data.text)).size).toBe(live.chunks.length)
    expect(live.text).toBe(LOOP_OUTPUT)
    expect(live.after).toEqual([])
    for (const e of live.chunks) expect(e.data).toMatchObject({ runId, nodeId: "run", stream: "stdout" })
    // Stored like every event: the numbers have no gap, and the model's result is the whole output as before.
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i))
    expect(events.find((e) => e.type === "agent:tool_result")!.data).toMatchObject({ success: true, outputSummary: LOOP_OUTPUT })
    const replay = await collect(m.events(runId), () => false)
    expect(replay.filter((e) => e.type === "tool:output").map((e) => e.data.text).join("")).toBe(LOOP_OUTPUT)
  })

  it("a chat turn: the SSE client sees the loop's lines as tool:output events before tool:result", async () => {
    const repo = gitRepo({ "README.md": "live\n" })
    const project = await m.api("POST", "/projects", { dir: repo })
    expect(project.status, project.text).toBe(201)
    const chat = await m.api("POST", "/chats", { projectId: project.json.projectId, approvalMode: "auto" })
    expect(chat.status, chat.text).toBe(201)
    const chatId = chat.json.chatId as string
    let opened = false
    const following = followChat(chatId, (got) => {
      if (!opened) opened = openGateOn(repo, got)
      return got.some((e) => e.type === "turn:completed" || e.type === "turn:failed")
    })
    const sent = await m.api("POST", `/chats/${chatId}/messages`, { text: "Run the loop" })
    expect(sent.status, sent.text).toBe(202)
    const events = await following
    expect(events.at(-1)!.type).toBe("turn:completed")
    const live = liveChunksBefore(events, "tool:result", "toolu_chat_loop")
    expect(live.chunks.length).toBeGreaterThanOrEqual(5)
    expect(live.text).toBe(LOOP_OUTPUT)
    expect(live.after).toEqual([])
    const types = events.map((e) => e.type)
    expect(types.indexOf("tool:started")).toBeLessThan(types.indexOf("tool:output"))
    expect(events.find((e) => e.type === "tool:result")!.data).toMatchObject({ outcome: "ok", output: LOOP_OUTPUT })
  })
})

/**
 * The chat routes end to end over real HTTPS on loopback, against a
 * `relavium monolith` child process replaying a cassette: a project on a
 * temporary git repository, a chat in `ask` mode whose agent edits a file,
 * its events followed with the stock `eventsource` client (resumed with
 * Last-Event-ID), the approval given through the API, a denial in a worktree
 * that leaves the chat consistent; authentication and bad input.
 */
import { readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { EventSource } from "eventsource"
import { Agent, fetch as undiciFetch } from "undici"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ChatEvent } from "@relavium/chat"
import { call, cassette, gitRepo, stop, tempDir, text } from "../../chat/test/fixtures.js"
import { exited, type Monolith, startMonolith } from "./support/monolith.js"



/** Every chat event type, from the schema (an EventSource only reports the types it listens to). */
const CHAT_EVENT_TYPES = ChatEvent.members.map((member) => member.fields.type.literals[0])

interface ChatSse {
  readonly id: number
  readonly type: string
  readonly data: { readonly type: string; readonly seq: number; readonly chatId: string; readonly [k: string]: any }
}

let m: Monolith
let dataDir: string
let dispatcher: Agent

/** Follows `/chats/{chatId}/events` with the stock EventSource until `until(received)` holds; then closes it. */
const follow = (
  chatId: string,
  until: (received: ReadonlyArray<ChatSse>) => boolean,
  options: { readonly lastEventId?: number; readonly query?: string; readonly via?: { readonly monolith: Monolith; readonly dispatcher: Agent } } = {}
) => {
  const target = options.via ?? { monolith: m, dispatcher }
  const source = new EventSource(`${target.monolith.url}/chats/${chatId}/events${options.query ?? ""}`, {
    fetch: (input, init) =>
      undiciFetch(input, {
        ...init,
        dispatcher: target.dispatcher,
        headers: {
          ...(init?.headers as Record<string, string>),
          authorization: `Bearer ${target.monolith.token}`,
          ...(options.lastEventId !== undefined ? { "last-event-id": String(options.lastEventId) } : {})
        }
      }) as unknown as Promise<Response>
  })
  const received: Array<ChatSse> = []
  const done = new Promise<Array<ChatSse>>((resolve, reject) => {
    const timer = setTimeout(() => {
      source.close()
      reject(new Error(`the chat's events never satisfied the test; received:\n${received.map((e) => `${e.id} ${e.type}`).join("\n")}`))
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
    source.onerror = (error) => {
      if (source.readyState === source.CLOSED) {
        clearTimeout(timer)
        reject(new Error(`the event stream failed: ${String((error as { message?: string }).message)}`))
      }
    }
  })
  return { received, done }
}

const waitFor = async <A>(probe: () => A | undefined, what: string): Promise<A> => {
  const deadline = Date.now() + 30_000
  for (;;) {
    const value = probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const createChat = async (dir: string, options: Record<string, unknown> = {}, on: Monolith = m) => {
  const project = await on.api("POST", "/projects", { dir })
  expect(project.status, project.text).toBe(201)
  expect(project.json).toMatchObject({ rootPath: dir })
  const chat = await on.api("POST", "/chats", { projectId: project.json.projectId, approvalMode: "ask", ...options })
  expect(chat.status, chat.text).toBe(201)
  return chat.json as { chatId: string; workspace: string; worktree?: { path: string; branch: string }; approvalMode: string }
}


beforeAll(async () => {
  dataDir = tempDir("relavium-chat-api-data-")
  // The monolith replays these in order, whichever chat calls: the tests below run in this order.
  const tape = cassette([
    [text("I'll update "), text("the greeting."), ...call("toolu_write", "write_file", { path: "hello.txt", content: "hello, world\n" })],
    [text("Updated hello.txt "), text("to greet the world."), stop("stop", 200, 12)],
    [text("Rewriting it."), ...call("toolu_deny", "write_file", { path: "hello.txt", content: "goodbye\n" })],
    [text("Understood: hello.txt stays as it is."), stop("stop")],
    [text("You're welcome."), stop("stop")],
    [...Array.from({ length: 1500 }, (_, i) => text(`word${i} `)), stop("stop")]
  ])
  m = await startMonolith(dataDir, ["--cassette", tape, "--token-delay-ms", "5"])
  dispatcher = new Agent({ connect: { ca: readFileSync(join(dataDir, "monolith-cert.pem"), "utf8") } })
}, 60_000)

afterAll(async () => {
  await m?.stop()
  await dispatcher?.close()
})

describe("chat routes of the monolith", () => {
  it("runs a turn in the server: SSE shows the approval request, the approval through the API continues it, the file changes", async () => {
    const repo = gitRepo({ "hello.txt": "hello\n" })
    const chat = await createChat(repo)
    expect(chat).toMatchObject({ workspace: repo, approvalMode: "ask" })
    const listed = await m.api("GET", "/chats")
    expect(listed.json.map((c: { chatId: string }) => c.chatId)).toContain(chat.chatId)

    const events = follow(chat.chatId, (got) => got.some((e) => e.type === "turn:completed"))
    // The stream starts at the chat's creation: a follower that connects first misses nothing.
    await waitFor(() => events.received.find((e) => e.type === "chat:created"), "chat:created")
    const sent = await m.api("POST", `/chats/${chat.chatId}/messages`, { text: "Make hello.txt greet the world" })
    expect(sent.status, sent.text).toBe(202)
    expect(sent.json).toEqual({ chatId: chat.chatId, afterSeq: 0 })

    const requested = await waitFor(() => events.received.find((e) => e.type === "approval:requested"), "the approval request")
    expect(requested.data).toMatchObject({ toolCallId: "toolu_write", name: "write_file", preview: "write_file: hello.txt (13 characters)" })
    await waitFor(() => events.received.find((e) => e.type === "turn:paused"), "the turn to pause")
    const waiting = await m.api("GET", `/chats/${chat.chatId}`)
    expect(waiting.json).toMatchObject({ turnStatus: "awaiting_approval", pendingApprovals: 1, pending: [{ toolCallId: "toolu_write", name: "write_file" }] })
    expect(readFileSync(join(repo, "hello.txt"), "utf8")).toBe("hello\n")

    // Nothing else happens in the chat until the call is decided.
    const meanwhile = await m.api("POST", `/chats/${chat.chatId}/messages`, { text: "and also this" })
    expect(meanwhile.status).toBe(409)
    expect(meanwhile.json.message).toContain(`POST /chats/${chat.chatId}/approvals/toolu_write`)

    const approved = await m.api("POST", `/chats/${chat.chatId}/approvals/toolu_write`, { decision: "allow" })
    expect(approved.status, approved.text).toBe(200)
    expect(approved.json).toMatchObject({ chatId: chat.chatId, toolCallId: "toolu_write", decision: "allow", pending: [], resumed: true })

    const all = await events.done
    expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i))
    for (const e of all) expect(e.data).toMatchObject({ seq: e.id, type: e.type, chatId: chat.chatId })
    const types = all.map((e) => e.type)
    expect(types.indexOf("approval:decided")).toBeGreaterThan(types.indexOf("turn:paused"))
    expect(all.find((e) => e.type === "tool:result")!.data).toMatchObject({ outcome: "ok", output: "wrote 13 bytes to hello.txt" })
    expect(all.find((e) => e.type === "file:patch")!.data).toMatchObject({ path: "hello.txt", operation: "write" })
    expect(all.filter((e) => e.type === "message:delta").map((e) => e.data.text).join("")).toContain("Updated hello.txt to greet the world.")
    expect(readFileSync(join(repo, "hello.txt"), "utf8")).toBe("hello, world\n")

    const after = await m.api("GET", `/chats/${chat.chatId}`)
    expect(after.json).toMatchObject({ turnStatus: "idle", pending: [], costMicrocents: 108_000, lastSequenceNumber: all.at(-1)!.id })
    expect(after.json.usage).toEqual([expect.objectContaining({ model: "claude-sonnet-4", calls: 2, costMicrocents: 108_000 })])
    const blocks = after.json.messages.flatMap((message: { blocks: Array<{ kind: string }> }) => message.blocks)
    expect(blocks).toContainEqual(expect.objectContaining({ kind: "tool_call", toolCallId: "toolu_write", status: "done", decision: "allow", decidedBy: "local" }))

    // A follower that reconnects with Last-Event-ID (or ?after=) gets exactly the rest of the stored log.
    const cut = requested.id
    const rest = await follow(chat.chatId, (got) => got.at(-1)?.id === all.at(-1)!.id, { lastEventId: cut }).done
    expect(rest.map((e) => e.data)).toEqual(all.slice(cut + 1).map((e) => e.data))
    const byQuery = await follow(chat.chatId, (got) => got.at(-1)?.id === all.at(-1)!.id, { query: `?after=${cut}` }).done
    expect(byQuery.map((e) => e.id)).toEqual(rest.map((e) => e.id))

    const markdown = await m.api("GET", `/chats/${chat.chatId}/export`)
    expect(markdown.status).toBe(200)
    expect(markdown.text).toContain("# Make hello.txt greet the world")
    expect(markdown.text).toContain("**Tool call** `write_file` (`toolu_write`: done, allowed by local)")
    const yaml = await m.api("GET", `/chats/${chat.chatId}/export?format=yaml`)
    expect(yaml.status).toBe(200)
    expect(yaml.text).toContain('schema_version: "1.0"')

    const again = await m.api("POST", `/chats/${chat.chatId}/approvals/toolu_write`, { decision: "deny" })
    expect(again.status).toBe(409)
    expect((await m.api("POST", `/chats/${chat.chatId}/resume`)).status).toBe(409)
    expect((await m.api("POST", `/chats/${chat.chatId}/cancel`)).json).toEqual({ chatId: chat.chatId, cancelled: false })
  })

  it("a denied call in a worktree chat is not run, the model is told, and the chat stays consistent", async () => {
    const repo = gitRepo({ "hello.txt": "hello\n" })
    const chat = await createChat(repo, { worktree: true })
    const worktree = chat.worktree!.path
    expect(chat.workspace).toBe(worktree)
    expect(readFileSync(join(worktree, "hello.txt"), "utf8")).toBe("hello\n")

    const events = follow(chat.chatId, (got) => got.some((e) => e.type === "turn:completed"))
    expect((await m.api("POST", `/chats/${chat.chatId}/messages`, { text: "Say goodbye instead" })).status).toBe(202)
    await waitFor(() => events.received.find((e) => e.type === "turn:paused"), "the turn to pause")
    const denied = await m.api("POST", `/chats/${chat.chatId}/approvals/toolu_deny`, { decision: "deny" })
    expect(denied.json).toMatchObject({ decision: "deny", pending: [], resumed: true })
    const all = await events.done
    expect(all.find((e) => e.type === "tool:result")!.data).toMatchObject({ outcome: "denied", output: expect.stringContaining("denied by the user") })
    expect(all.some((e) => e.type === "file:patch")).toBe(false)
    expect(readFileSync(join(worktree, "hello.txt"), "utf8")).toBe("hello\n")
    expect(readFileSync(join(repo, "hello.txt"), "utf8")).toBe("hello\n")

    const detail = await m.api("GET", `/chats/${chat.chatId}`)
    expect(detail.json).toMatchObject({ turnStatus: "idle", pending: [] })
    const last = detail.json.messages.at(-1)
    expect(last).toMatchObject({ role: "assistant", status: "completed", blocks: [expect.objectContaining({ kind: "text", text: "Understood: hello.txt stays as it is." })] })
    // The chat goes on.
    const next = follow(chat.chatId, (got) => got.some((e) => e.type === "turn:completed"), { lastEventId: all.at(-1)!.id })
    expect((await m.api("POST", `/chats/${chat.chatId}/messages`, { text: "Thanks" })).status).toBe(202)
    const thanked = await next.done
    expect(thanked[0]!.id).toBe(all.at(-1)!.id + 1)
    expect(thanked.filter((e) => e.type === "message:delta").map((e) => e.data.text).join("")).toBe("You're welcome.")
  })

  it("lists the chat routes in the OpenAPI document and refuses requests without the token (401)", async () => {
    expect((await m.api("GET", "/openapi.json", undefined, { token: null })).status).toBe(401)
    const openapi = await m.api("GET", "/openapi.json")
    expect(Object.keys(openapi.json.paths)).toEqual(expect.arrayContaining(["/projects", "/chats", "/chats/{chatId}/events", "/chats/{chatId}/approvals/{toolCallId}"]))
    for (const [method, path] of [["GET", "/chats"], ["GET", "/projects"], ["GET", "/chats/x"], ["GET", "/chats/x/events"], ["POST", "/chats/x/messages"], ["POST", "/chats/x/approvals/y"]] as const) {
      expect((await m.api(method, path, method === "POST" ? {} : undefined, { token: null })).status, `${method} ${path}`).toBe(401)
      expect((await m.api(method, path, method === "POST" ? {} : undefined, { token: `${m.token}x` })).status, `${method} ${path}`).toBe(401)
    }
  })

  it("answers unknown chats with 404 and malformed bodies with located 400s; nothing is created", async () => {
    const before = (await m.api("GET", "/chats")).json.length
    for (const [method, path, body] of [
      ["GET", "/chats/no-such-chat", undefined],
      ["GET", "/chats/no-such-chat/events", undefined],
      ["GET", "/chats/no-such-chat/export", undefined],
      ["POST", "/chats/no-such-chat/messages", { text: "hello" }],
      ["POST", "/chats/no-such-chat/approvals/toolu_x", { decision: "allow" }],
      ["POST", "/chats/no-such-chat/resume", undefined],
      ["POST", "/chats/no-such-chat/cancel", undefined],
      ["POST", "/chats", { projectId: "no-such-project" }]
    ] as const) {
      const response = await m.api(method, path, body)
      expect(response.status, `${method} ${path}: ${response.text}`).toBe(404)
    }
    expect((await m.api("GET", "/chats/no-such-chat")).json.message).toBe("no chat with id no-such-chat (GET /chats lists them)")

    const notAString = await m.api("POST", "/chats", { projectId: 5 })
    expect(notAString.status).toBe(400)
    expect(notAString.json.issues[0].path).toEqual(["projectId"])
    const badMode = await m.api("POST", "/chats", { projectId: "p", approvalMode: "yolo" })
    expect(badMode.status).toBe(400)
    expect(badMode.json.issues[0].path).toEqual(["approvalMode"])
    const relative = await m.api("POST", "/projects", { dir: "some/relative/dir" })
    expect(relative.status).toBe(400)
    expect(relative.json.issues[0]).toMatchObject({ path: ["dir"], message: "an absolute path of a directory on the monolith's machine" })
    const missing = await m.api("POST", "/projects", { dir: join(tmpdir(), "relavium-no-such-project-dir") })
    expect(missing.status).toBe(400)
    expect(missing.json.issues[0]).toMatchObject({ path: "dir", message: expect.stringContaining("does not exist") })
    const notJson = await m.api("POST", "/projects", undefined, { raw: "{not json" })
    expect(notJson.status).toBe(400)
    expect(notJson.json.message).toMatch(/JSON/)

    const plain = tempDir("relavium-chat-api-plain-")
    const project = await m.api("POST", "/projects", { dir: plain })
    const notGit = await m.api("POST", "/chats", { projectId: project.json.projectId, worktree: true })
    expect(notGit.status).toBe(400)
    expect(notGit.json.issues[0]).toMatchObject({ path: "worktree", message: expect.stringContaining(`${plain} is not a git repository`) })
    const badModel = await m.api("POST", "/chats", { projectId: project.json.projectId, model: "claude" })
    expect(badModel.status).toBe(400)
    expect(badModel.json.message).toContain("must be provider/model")

    const chat = (await m.api("GET", "/chats")).json[0] as { chatId: string }
    const blank = await m.api("POST", `/chats/${chat.chatId}/messages`, { text: "   " })
    expect(blank.status).toBe(400)
    expect(blank.json.issues[0]).toMatchObject({ path: ["text"], message: "must not be blank" })
    const noText = await m.api("POST", `/chats/${chat.chatId}/messages`, {})
    expect(noText.status).toBe(400)
    expect(noText.json.issues[0].path).toEqual(["text"])
    const maybe = await m.api("POST", `/chats/${chat.chatId}/approvals/toolu_x`, { decision: "maybe" })
    expect(maybe.status).toBe(400)
    expect(maybe.json.issues[0].path).toEqual(["decision"])
    const unknownCall = await m.api("POST", `/chats/${chat.chatId}/approvals/toolu_x`, { decision: "allow" })
    expect(unknownCall.status).toBe(404)
    const badAfter = await m.api("GET", `/chats/${chat.chatId}/events?after=abc`)
    expect(badAfter.status).toBe(400)
    expect((await m.api("GET", "/chats")).json.length).toBe(before)
  })
})

describe("cancelling a chat's turn through the API", () => {
  it("POST /chats/:id/cancel stops a streaming answer: what arrived is kept and the turn rests interrupted", async () => {
    const chat = await createChat(gitRepo({ "README.md": "hello\n" }))
    const events = follow(chat.chatId, (got) => got.filter((e) => e.type === "message:delta").length >= 3)
    expect((await m.api("POST", `/chats/${chat.chatId}/messages`, { text: "Tell me a long story" })).status).toBe(202)
    await events.done
    const rest = follow(chat.chatId, (got) => got.some((e) => e.type === "turn:interrupted"))
    const cancelled = await m.api("POST", `/chats/${chat.chatId}/cancel`)
    expect(cancelled.json).toEqual({ chatId: chat.chatId, cancelled: true })
    const all = await rest.done
    expect(all.at(-1)!.data.reason).toBe("the turn was cancelled")
    const message = all.find((e) => e.type === "message:completed")!
    expect(message.data.status).toBe("interrupted")
    expect(message.data.text).toMatch(/^word0 word1 word2 /)
    expect(message.data.text).not.toContain("word1499")
    const detail = await m.api("GET", `/chats/${chat.chatId}`)
    expect(detail.json.turnStatus).toBe("interrupted")
  })
})

describe("chat recovery in the monolith", () => {
  it("a monolith killed mid-answer: on restart the chat keeps the partial answer as interrupted, and POST /resume continues it", async () => {
    const crashDir = tempDir("relavium-chat-api-crash-")
    const repo = gitRepo({ "README.md": "hello\n" })
    const words = Array.from({ length: 400 }, (_, i) => text(`word${i} `))
    const first = await startMonolith(crashDir, ["--cassette", cassette([[...words, stop("stop")]]), "--token-delay-ms", "20"])
    const firstAgent = new Agent({ connect: { ca: readFileSync(join(crashDir, "monolith-cert.pem"), "utf8") } })
    const chat = await createChat(repo, { approvalMode: "auto" }, first)
    const streaming = follow(chat.chatId, (got) => got.filter((e) => e.type === "message:delta").length >= 3, { via: { monolith: first, dispatcher: firstAgent } })
    expect((await first.api("POST", `/chats/${chat.chatId}/messages`, { text: "Tell me a long story" })).status).toBe(202)
    const seen = await streaming.done
    first.process.kill("SIGKILL")
    await exited(first.process)
    await first.stop()
    await firstAgent.close()
    const streamed = seen.filter((e) => e.type === "message:delta").map((e) => e.data.text as string).join("")

    // The restarted monolith replays a second cassette: its call 0 is the chat's next model call.
    const second = await startMonolith(crashDir, ["--cassette", cassette([[text("Here is the whole story again."), stop("stop")]])])
    const secondAgent = new Agent({ connect: { ca: readFileSync(join(crashDir, "monolith-cert.pem"), "utf8") } })
    try {
      expect(second.output()).toContain("recovered 1 interrupted chat(s)")
      const recovered = await second.api("GET", `/chats/${chat.chatId}`)
      expect(recovered.json.turnStatus).toBe("interrupted")
      const partial = recovered.json.messages.find((message: { role: string }) => message.role === "assistant")
      expect(partial.status).toBe("interrupted")
      const kept = partial.blocks.map((b: { text?: string }) => b.text ?? "").join("")
      expect(kept.startsWith(streamed)).toBe(true)
      expect(kept.length).toBeLessThan(words.map((w) => w.text).join("").length)

      const rest = follow(chat.chatId, (got) => got.some((e) => e.type === "turn:completed"), {
        lastEventId: recovered.json.lastSequenceNumber,
        via: { monolith: second, dispatcher: secondAgent }
      })
      const resumed = await second.api("POST", `/chats/${chat.chatId}/resume`)
      expect(resumed.status, resumed.text).toBe(202)
      const after = await rest.done
      expect(after[0]!.type).toBe("turn:resumed")
      expect(after.filter((e) => e.type === "message:delta").map((e) => e.data.text).join("")).toBe("Here is the whole story again.")
      expect((await second.api("GET", `/chats/${chat.chatId}`)).json.turnStatus).toBe("idle")
    } finally {
      await second.stop()
      await secondAgent.close()
    }
  })
})

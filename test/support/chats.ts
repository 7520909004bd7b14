/**
 * Chats in tests of whole deployments: a local model server speaking OpenAI's
 * streaming wire format, scripted by the conversation it is sent, and a
 * minimal SSE reader of a chat's events.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"

const frame = (choices: ReadonlyArray<unknown>, usage?: unknown) =>
  `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1731000000, model: "gpt-4o-mini", choices, ...(usage ? { usage } : {}) })}\n\n`

const usage = (prompt: number, completion: number) => frame([], { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion })

/** Text, then one tool call, as one streamed answer. */
export const toolCallFrames = (text: string, id: string, name: string, args: unknown) => [
  frame([{ index: 0, delta: { role: "assistant", content: text }, finish_reason: null }]),
  frame([{ index: 0, delta: { tool_calls: [{ index: 0, id, type: "function", function: { name, arguments: "" } }] }, finish_reason: null }]),
  frame([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: JSON.stringify(args) } }] }, finish_reason: null }]),
  frame([{ index: 0, delta: {}, finish_reason: "tool_calls" }]),
  usage(120, 30),
  "data: [DONE]\n\n"
]

/** The text of an answer as deltas (one per word), then its end. */
export const answerFrames = (text: string) => [
  frame([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]),
  ...text.split(/(?<= )/).map((word) => frame([{ index: 0, delta: { content: word }, finish_reason: null }])),
  frame([{ index: 0, delta: {}, finish_reason: "stop" }]),
  usage(200, 12),
  "data: [DONE]\n\n"
]

export interface ModelRequest {
  /** The text of the last user message. */
  readonly lastUser: string
  /** Tool results after the last user message. */
  readonly toolResults: ReadonlyArray<string>
}

/**
 * What the script answers: frames sent at once, or `hold` frames sent and the response left open
 * (a stream a process is killed in the middle of); `after` delays the frames.
 */
export type Reply =
  | { readonly frames: ReadonlyArray<string>; readonly after?: Promise<unknown> }
  | { readonly hold: ReadonlyArray<string> }

export interface ModelServer {
  /** `http://127.0.0.1:PORT/v1`, for RELAVIUM_OPENAI_BASE_URL. */
  readonly url: string
  readonly requests: Array<ModelRequest>
  readonly close: () => void
}

const textOf = (content: unknown): string =>
  typeof content === "string"
    ? content
    : Array.isArray(content)
      ? content.map((part) => (typeof part === "object" && part !== null && "text" in part ? String((part as { text: unknown }).text) : "")).join("")
      : ""

/** A model on loopback answering each request with `script(request)`. */
export const startModel = (script: (request: ModelRequest) => Reply) =>
  new Promise<ModelServer>((resolve) => {
    const requests: Array<ModelRequest> = []
    const held = new Set<http.ServerResponse>()
    const server = http.createServer((req, res) => {
      let raw = ""
      req.on("data", (d) => (raw += d))
      req.on("end", () => {
        const body = JSON.parse(raw) as { messages: Array<{ role: string; content: unknown }> }
        const lastUserAt = body.messages.map((m) => m.role).lastIndexOf("user")
        const request: ModelRequest = {
          lastUser: textOf(body.messages[lastUserAt]?.content),
          toolResults: body.messages.slice(lastUserAt + 1).filter((m) => m.role === "tool").map((m) => textOf(m.content))
        }
        requests.push(request)
        const reply = script(request)
        res.writeHead(200, { "content-type": "text/event-stream" })
        if ("frames" in reply) {
          // Sent once `after` settles (the test changes something while the model "thinks").
          void (reply.after ?? Promise.resolve()).then(() => {
            for (const f of reply.frames) res.write(f)
            res.end()
          })
        } else {
          held.add(res)
          for (const f of reply.hold) res.write(f)
        }
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
        requests,
        close: () => {
          for (const res of held) res.destroy()
          server.closeAllConnections()
          server.close()
        }
      })
    )
  })

export interface ChatSseEvent {
  readonly id: number
  readonly type: string
  readonly data: { readonly type: string; readonly seq: number; readonly chatId: string; readonly [k: string]: any }
}

/**
 * Reads a chat's events over SSE (`GET /chats/{chatId}/events`, resumed after `lastEventId`) until
 * `until` says stop; a chat's stream never ends by itself.
 */
export const chatEvents = async (
  url: string,
  token: string,
  chatId: string,
  options: {
    readonly lastEventId?: number
    readonly until: (event: ChatSseEvent) => boolean
    readonly timeoutMs?: number
    /** The client (default the global `fetch`; the monolith's trusts its certificate). */
    readonly fetch?: (url: string, init: { readonly headers: Record<string, string>; readonly signal?: AbortSignal }) => Promise<Response>
  }
): Promise<Array<ChatSseEvent>> => {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "text/event-stream" }
  if (options.lastEventId !== undefined) headers["last-event-id"] = String(options.lastEventId)
  const controller = new AbortController()
  const received: Array<ChatSseEvent> = []
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 60_000)
  try {
    const response = await (options.fetch ?? fetch)(`${url}/chats/${chatId}/events`, { headers, signal: controller.signal })
    if (response.status !== 200 || response.body === null) throw new Error(`GET /chats/${chatId}/events: ${response.status} ${await response.text()}`)
    const decoder = new TextDecoder()
    let buffer = ""
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true })
      let end: number
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const fields: Record<string, string> = {}
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue
          const colon = line.indexOf(":")
          if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart()
        }
        if (fields.data === undefined || fields.event === undefined) continue
        const event: ChatSseEvent = { id: Number(fields.id), type: fields.event, data: JSON.parse(fields.data) }
        received.push(event)
        if (options.until(event)) return received
      }
    }
    throw new Error(`the event stream of chat ${chatId} ended after ${received.length} events`)
  } catch (e) {
    if (controller.signal.aborted) throw new Error(`chat ${chatId}: no expected event within the time; got ${received.map((r) => r.type).join(", ")}`)
    throw e
  } finally {
    clearTimeout(timer)
    controller.abort()
  }
}

/** Every event's seq follows the one before it (and the first follows `after`). */
export const gapFree = (events: ReadonlyArray<ChatSseEvent>, after: number) =>
  events.every((event, i) => event.id === (i === 0 ? after + 1 : events[i - 1]!.id + 1) && event.data.seq === event.id)

/**
 * A chat's events as a deployment-independent script: ids, times, sequence numbers and the
 * workspace's path replaced by placeholders (ids numbered by first appearance), and the deltas of
 * one message joined (how they are coalesced before they are stored depends on timing).
 */
export const normalizeChatEvents = (events: ReadonlyArray<Record<string, any>>, workspace: string): Array<Record<string, unknown>> => {
  const ids = new Map<string, string>()
  const idOf = (kind: string, value: string) => {
    let placeholder = ids.get(value)
    if (placeholder === undefined) ids.set(value, (placeholder = `<${kind}-${[...ids.values()].filter((v) => v.startsWith(`<${kind}-`)).length + 1}>`))
    return placeholder
  }
  const out: Array<Record<string, unknown>> = []
  for (const event of events) {
    const { chatId: _chatId, seq: _seq, timestamp: _timestamp, ...rest } = event
    const shown = JSON.parse(JSON.stringify(rest).replaceAll(workspace, "<workspace>")) as Record<string, unknown>
    for (const key of ["messageId", "turnId", "projectId"]) if (typeof shown[key] === "string") shown[key] = idOf(key, shown[key] as string)
    const previous = out.at(-1)
    if (shown.type === "message:delta" && previous?.type === "message:delta" && previous.messageId === shown.messageId) {
      previous.text = `${String(previous.text)}${String(shown.text)}`
      continue
    }
    out.push(shown)
  }
  return out
}

/**
 * A small client of the monolith's API for the benchmarks, on `node:https` only (no client
 * library's overhead in the figures): JSON calls with the bearer token, and a follower of
 * `GET /runs/:id/events` that parses Server-Sent Events and stamps each event with the
 * monotonic time its bytes arrived.
 */
import { Agent, request } from "node:https"

export interface SseEvent {
  readonly id: number
  readonly type: string
  readonly data: string
  /** `performance.now()` when the chunk holding this event arrived. */
  readonly receivedAt: number
}

export interface Follow {
  /** `performance.now()` when the response headers arrived (the stream is open). */
  readonly opened: Promise<number>
  /** Every event up to the terminal one (or the end of the stream). */
  readonly done: Promise<ReadonlyArray<SseEvent>>
}

export interface ApiClient {
  readonly call: (method: string, path: string, body?: unknown) => Promise<{ readonly status: number; readonly json: any }>
  readonly follow: (runId: string, onEvent?: (event: SseEvent) => void) => Follow
  readonly close: () => void
}

const TERMINAL = new Set(["run:completed", "run:failed", "run:cancelled", "run:timeout"])

export const apiClient = (baseUrl: string, token: string, ca: string): ApiClient => {
  const agent = new Agent({ keepAlive: true, ca, maxSockets: 64 })
  const url = new URL(baseUrl)
  const base = { host: url.hostname, port: Number(url.port), agent, ca }

  // A kept-alive socket the server is closing as the request goes out fails with "socket hang up"
  // before the server has read anything: that one request is sent again on a fresh socket.
  const call: ApiClient["call"] = (method, path, body) =>
    send(method, path, body).catch((error: Error & { reusedSocket?: boolean }) => {
      if (error.reusedSocket === true && (error as { code?: string }).code === "ECONNRESET") return send(method, path, body)
      throw error
    })

  const send: ApiClient["call"] = (method, path, body) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const req = request(
        {
          ...base,
          method,
          path,
          headers: {
            authorization: `Bearer ${token}`,
            ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) })
          }
        },
        (res) => {
          let text = ""
          res.setEncoding("utf8")
          res.on("data", (chunk: string) => (text += chunk))
          res.on("end", () => {
            let json: unknown = undefined
            try {
              json = text === "" ? undefined : JSON.parse(text)
            } catch {
              json = text
            }
            resolve({ status: res.statusCode ?? 0, json })
          })
          res.on("error", reject)
        }
      )
      req.on("error", (error) => reject(Object.assign(error, { reusedSocket: req.reusedSocket })))
      req.end(payload)
    })

  const follow: ApiClient["follow"] = (runId, onEvent) => {
    let resolveOpened!: (t: number) => void
    const opened = new Promise<number>((r) => (resolveOpened = r))
    const done = new Promise<ReadonlyArray<SseEvent>>((resolve, reject) => {
      const events: Array<SseEvent> = []
      const req = request(
        { ...base, method: "GET", path: `/runs/${runId}/events`, headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" } },
        (res) => {
          resolveOpened(performance.now())
          if (res.statusCode !== 200) {
            res.resume()
            reject(new Error(`GET /runs/${runId}/events answered ${res.statusCode}`))
            return
          }
          res.setEncoding("utf8")
          let buffer = ""
          let finished = false
          res.on("data", (chunk: string) => {
            const receivedAt = performance.now()
            buffer += chunk
            let end: number
            while (!finished && (end = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, end)
              buffer = buffer.slice(end + 2)
              let id: number | undefined
              let type = "message"
              let data = ""
              for (const line of block.split("\n")) {
                if (line.startsWith("id: ")) id = Number(line.slice(4))
                else if (line.startsWith("event: ")) type = line.slice(7)
                else if (line.startsWith("data: ")) data = line.slice(6)
              }
              if (id === undefined) continue // retry: or a keep-alive comment
              const event = { id, type, data, receivedAt }
              events.push(event)
              onEvent?.(event)
              if (TERMINAL.has(type)) {
                finished = true
                req.destroy()
                resolve(events)
              }
            }
          })
          res.on("end", () => resolve(events))
          res.on("error", (e) => (finished ? undefined : reject(e)))
        }
      )
      req.on("error", reject)
      req.end()
    })
    return { opened, done }
  }

  return { call, follow, close: () => agent.destroy() }
}

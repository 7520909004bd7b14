/**
 * A fake provider on 127.0.0.1 (random port) speaking the real wire formats: it answers each
 * request with the next scripted reply (SSE frames from packages/llm/test/fixtures/wire.ts, an
 * error status, a stream cut midway, or a stream that stops and waits), and records what it got:
 * the path, the credentials, the body, and whether the gateway hung up before the reply ended.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"

export interface Reply {
  readonly status?: number
  readonly body?: string
  readonly frames?: ReadonlyArray<string>
  /** Destroy the socket after the frames: a stream cut midway. */
  readonly cut?: boolean
  /** After the frames, keep the response open until the client leaves. */
  readonly hold?: boolean
}

export interface Seen {
  readonly path: string
  readonly authorization: string | undefined
  readonly apiKey: string | undefined
  readonly body: any
  /** Set when the connection closed before the reply ended (the gateway cancelled the call). */
  closedEarly: boolean
  readonly closed: Promise<void>
}

export interface Upstream {
  readonly url: string
  readonly seen: Array<Seen>
  readonly script: (...replies: ReadonlyArray<Reply>) => void
  /** The reply given whenever no scripted one is left (a benchmark's endless upstream). */
  readonly always: (reply: Reply | undefined) => void
  readonly close: () => Promise<void>
}

export const startUpstream = (): Promise<Upstream> =>
  new Promise((resolve) => {
    const seen: Array<Seen> = []
    let replies: Array<Reply> = []
    let fallback: Reply | undefined
    // An endless upstream keeps only the last request it saw.
    let keep = true
    const server = http.createServer((req, res) => {
      let raw = ""
      req.on("data", (d) => (raw += d))
      req.on("end", () => {
        let body: unknown = raw
        try {
          body = JSON.parse(raw)
        } catch {
          // keep the text
        }
        let markClosed = () => {}
        const closed = new Promise<void>((r) => (markClosed = r))
        const record: Seen = {
          path: req.url ?? "",
          authorization: req.headers["authorization"],
          apiKey: req.headers["x-api-key"] as string | undefined,
          body,
          closedEarly: false,
          closed
        }
        if (!keep) seen.length = 0
        seen.push(record)
        res.on("close", () => {
          if (!res.writableEnded) record.closedEarly = true
          markClosed()
        })
        const reply = replies.shift() ?? fallback
        if (reply === undefined) {
          res.writeHead(500, { "content-type": "application/json" })
          res.end(JSON.stringify({ error: { message: "no scripted reply left", type: "server_error" } }))
          return
        }
        if (reply.body !== undefined) {
          res.writeHead(reply.status ?? 200, { "content-type": "application/json" })
          res.end(reply.body)
          return
        }
        res.writeHead(reply.status ?? 200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
        const frames = reply.frames ?? []
        let i = 0
        const write = () => {
          if (res.destroyed) return
          if (i < frames.length) {
            res.write(frames[i++])
            setImmediate(write)
          } else if (reply.cut) {
            res.socket?.destroy()
          } else if (!reply.hold) {
            res.end()
          }
        }
        write()
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        seen,
        script: (...next) => {
          replies = [...next]
        },
        always: (reply) => {
          fallback = reply
          keep = reply === undefined
        },
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })

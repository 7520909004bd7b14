/**
 * A monolith's HTTP server in this process, composed the way `relavium
 * monolith` composes it (lock, token, certificate, SQLite in the data
 * directory, the engine and the chat service) but with the server options the
 * security tests set (short timeouts, a projects root, a price file), on real
 * HTTPS on loopback. Plus small clients: one over `node:https`, one over a raw
 * TLS socket for requests no ordinary client sends (a body that never
 * arrives, headers trickled a byte at a time).
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Exit, Layer, Redacted, Scope } from "effect"
import * as https from "node:https"
import * as tls from "node:tls"
import { join } from "node:path"
import { ChatHub, ChatTools, layer as chatServiceLayer, Worktrees } from "@relavium/chat"
import { layerLocal, QuickJsSandbox } from "@relavium/core"
import { Cassette, Pricing } from "@relavium/llm"
import { DaemonRouter, KeyStore, layerTenancyMemory, layerTriggersMemory, RunQueue, UpdateHub } from "@relavium/ports"
import { Auth, Monolith, Server } from "@relavium/server"
import type { HttpGuard } from "@relavium/server"
import { Store } from "@relavium/store"
import { notificationStores } from "../../support/notify.js"

export interface TestServerOptions {
  readonly dataDir: string
  readonly timeouts?: HttpGuard.ServerTimeouts
  readonly projectsRoot?: string
  readonly pricesFile?: string
}

export interface TestServer {
  readonly url: string
  readonly host: string
  readonly port: number
  readonly token: string
  readonly cert: string
  readonly close: () => Promise<void>
}

const noModel = Cassette.layerCassette({ schema_version: "1.0", provider: "openai", calls: [] })

export const startServer = async (options: TestServerOptions): Promise<TestServer> => {
  const scope = Effect.runSync(Scope.make())
  const program = Effect.gen(function* () {
    yield* Monolith.lock(options.dataDir)
    const token = yield* Monolith.ensureToken(options.dataDir)
    const tlsMaterial = yield* Monolith.ensureCertificate(options.dataDir, "127.0.0.1")
    const engine = layerLocal({ executionMode: "local" }).pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          UpdateHub.layerMemory,
          RunQueue.layerMemory(),
          QuickJsSandbox.layerQuickJs,
          noModel,
          KeyStore.layerMemory(),
          Pricing.layerStatic,
          DaemonRouter.layerInProcess([])
        )
      ),
      Layer.provideMerge(Store.layerSqlite({ filename: join(options.dataDir, "relavium.db") })),
      Layer.provideMerge(NodeContext.layer)
    )
    const chats = chatServiceLayer({ worktreesDir: join(options.dataDir, "worktrees") }).pipe(
      Layer.provideMerge(Layer.mergeAll(ChatHub.layerMemory, ChatTools.layer(() => DaemonRouter.layerInProcess([])), Worktrees.layerGit))
    )
    const app = Server.layerMonolith({
      ...(options.projectsRoot === undefined ? {} : { projectsRoot: options.projectsRoot }),
      ...(options.pricesFile === undefined ? {} : { pricesFile: options.pricesFile })
    }).pipe(
      Layer.provide(Auth.layerSingleUser(token)),
      Layer.provide(layerTenancyMemory),
      Layer.provide(layerTriggersMemory),
      Layer.provideMerge(Monolith.layerHttps({ host: "127.0.0.1", port: 0, tls: tlsMaterial, timeouts: options.timeouts })),
      Layer.provide(notificationStores()),
      Layer.provide(chats),
      Layer.provide(engine)
    )
    const context = yield* Layer.buildWithScope(app, scope)
    const url = yield* Monolith.serverUrl.pipe(Effect.provide(context))
    return { token: Redacted.value(token), cert: tlsMaterial.cert, url, context }
  })
  const built = await Effect.runPromise(program.pipe(Scope.extend(scope)))
  const parsed = new URL(built.url)
  return {
    url: built.url,
    host: parsed.hostname,
    port: Number(parsed.port),
    token: built.token,
    cert: built.cert,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export interface Reply {
  readonly status: number
  readonly text: string
  readonly json: any
}

/** One request over HTTPS, trusting the server's certificate. */
export const request = (
  server: TestServer,
  method: string,
  path: string,
  options: { readonly body?: unknown; readonly raw?: string; readonly token?: string | null } = {}
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body))
    const token = options.token === undefined ? server.token : options.token
    const req = https.request(
      {
        host: server.host,
        port: server.port,
        path,
        method,
        ca: server.cert,
        agent: false,
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) })
        }
      },
      (res) => {
        let text = ""
        res.setEncoding("utf8")
        res.on("data", (chunk) => (text += chunk))
        res.on("end", () => {
          let json: unknown
          try {
            json = text === "" ? undefined : JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, text, json })
        })
      }
    )
    req.on("error", reject)
    if (payload !== undefined) req.write(payload)
    req.end()
  })

/** A raw TLS connection: what it wrote, and the server's bytes as they arrive. */
export interface RawConnection {
  readonly socket: tls.TLSSocket
  /** Everything the server sent so far. */
  readonly received: () => string
  /** Resolves when the server closes the connection, with the milliseconds since connecting. */
  readonly closed: Promise<number>
  /** Resolves with the received text once it contains `needle`; rejects after `timeoutMs`. */
  readonly waitFor: (needle: string, timeoutMs: number) => Promise<string>
}

export const connect = (server: TestServer): Promise<RawConnection> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    let received = ""
    const socket = tls.connect({ host: server.host, port: server.port, ca: server.cert, servername: "localhost" }, () => {
      const closed = new Promise<number>((done) => socket.once("close", () => done(Date.now() - started)))
      resolve({
        socket,
        received: () => received,
        closed,
        waitFor: (needle, timeoutMs) =>
          new Promise((found, fail) => {
            const deadline = Date.now() + timeoutMs
            const poll = () => {
              if (received.includes(needle)) return found(received)
              if (Date.now() > deadline) return fail(new Error(`no ${JSON.stringify(needle)} within ${timeoutMs} ms; received ${JSON.stringify(received.slice(0, 300))}`))
              setTimeout(poll, 10)
            }
            poll()
          })
      })
    })
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => (received += chunk))
    socket.on("error", (e) => {
      if (received === "") reject(e)
    })
  })

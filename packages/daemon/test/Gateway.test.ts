/**
 * The reverse connection in one process over real loopback websockets: a
 * daemon dials in (`dialGateway`) to a gateway endpoint (`httpApp` on a Node
 * HTTP server), and `routerFor` / `layerRouterGateway` send tool calls to it.
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Path from "node:path"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { WebSocket } from "@effect/platform-node/Undici"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Option, Redacted, Schedule, Scope, Stream } from "effect"
import { DaemonRouter } from "@relavium/ports"
import {
  authorizeToken,
  DAEMON_NAME_HEADER,
  DAEMON_RPC_PATH,
  DaemonRegistry,
  type DaemonRegistryService,
  dialGateway,
  type DialedDaemon,
  type DialOptions,
  httpApp,
  layerLocal,
  layerRouterGateway,
  routerFor,
  type ToolPolicy
} from "../src/index.js"
import { alive, callOf, makeWorkspace, readPids, waitFor } from "./support.js"

const TOKEN = "gateway-token-0123456789abcdef"
const allowNode: ToolPolicy = { allowedCommandGlobs: ["node spawner.js *"] }

interface Gateway {
  readonly port: number
  readonly url: string
  /** Cuts every open connection and closes the server. */
  readonly stop: Effect.Effect<void>
}

/** A gateway endpoint on 127.0.0.1 (`port` 0: any free port), closed with the test's scope or by `stop`. */
const serveGateway = (registry: DaemonRegistryService, port = 0, app = httpApp(registry, { authorize: authorizeToken(Redacted.make(TOKEN)) })) =>
  Effect.gen(function* () {
    const connections = new Set<Net.Socket>()
    const scope = yield* Scope.make()
    const server = yield* NodeHttpServer.make(
      () =>
        Http.createServer().on("connection", (socket: Net.Socket) => {
          connections.add(socket)
          socket.on("close", () => connections.delete(socket))
        }),
      { port, host: "127.0.0.1" }
    ).pipe(Scope.extend(scope))
    yield* HttpServer.serveEffect(HttpRouter.empty.pipe(HttpRouter.get(DAEMON_RPC_PATH, app))).pipe(
      Effect.provideService(HttpServer.HttpServer, server),
      Scope.extend(scope)
    )
    const bound = server.address._tag === "TcpAddress" ? server.address.port : port
    const stop = Effect.sync(() => {
      for (const socket of connections) socket.destroy()
    }).pipe(Effect.zipRight(Scope.close(scope, Exit.void)))
    yield* Effect.addFinalizer(() => stop)
    return { port: bound, url: `ws://127.0.0.1:${bound}${DAEMON_RPC_PATH}`, stop } satisfies Gateway
  })

const registryOf = Layer.build(DaemonRegistry.layerMemory).pipe(Effect.map(Context.get(DaemonRegistry)))

const dial = (gateway: Gateway, workspace: string, options: Partial<DialOptions> = {}) =>
  dialGateway({ url: gateway.url, token: TOKEN, workspace, reconnectDelay: { initial: "50 millis", max: "200 millis" }, ...options })

/** Waits for the daemon to report itself connected (the gateway's first Ping answered). */
const connected = (dialed: DialedDaemon) =>
  dialed.changes.pipe(
    Stream.filter((s) => s._tag === "Connected"),
    Stream.runHead,
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the daemon did not connect") }),
    Effect.orDie
  )

/** Waits for the daemon to have lost its connection. */
const waiting = (dialed: DialedDaemon) =>
  dialed.changes.pipe(
    Stream.filter((s) => s._tag === "Waiting"),
    Stream.runHead,
    Effect.map(Option.getOrThrow),
    Effect.timeoutFail({ duration: "40 seconds", onTimeout: () => new Error("the daemon did not notice") }),
    Effect.orDie
  )

/** Polls `check` until it holds (or dies after 10 s). */
const until = (check: Effect.Effect<boolean>, what: string) =>
  check.pipe(
    Effect.filterOrFail((ok) => ok, () => "not yet"),
    Effect.retry({ schedule: Schedule.spaced("25 millis"), times: 400 }),
    Effect.orDieWith(() => new Error(`timed out waiting for ${what}`))
  )

/** A GET of the endpoint with these headers, over a raw TCP socket: the status and JSON body it is answered with. */
const rawGet = (port: number, headers: Record<string, string>) =>
  Effect.async<{ status: number; body: { message: string } }>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    let text = ""
    socket.on("connect", () => {
      const lines = Object.entries({ host: `127.0.0.1:${port}`, ...headers }).map(([k, v]) => `${k}: ${v}`)
      socket.write(`GET ${DAEMON_RPC_PATH} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`)
    })
    socket.on("data", (chunk) => {
      text += chunk.toString("utf8")
      const [head, body] = text.split("\r\n\r\n")
      const length = Number(/content-length: (\d+)/i.exec(head ?? "")?.[1] ?? -1)
      if (body !== undefined && Buffer.byteLength(body) >= length) {
        socket.destroy()
        resume(Effect.succeed({ status: Number(head!.split(" ")[1]), body: JSON.parse(body) }))
      }
    })
    socket.on("error", (e) => resume(Effect.die(e)))
  })

describe("a daemon dialed in to a gateway", () => {
  it.scopedLive("runs tool calls in the dialed daemon's workspace", () =>
    Effect.gen(function* () {
      const registry = yield* registryOf
      const gateway = yield* serveGateway(registry)
      const workspace = makeWorkspace({ "notes.txt": "on the laptop" })
      const dialed = yield* dial(gateway, workspace, { name: "laptop" })
      yield* connected(dialed)
      const listed = yield* registry.list
      assert.deepStrictEqual(listed.map((d) => [d.name, d.connections]), [["laptop", 1]])

      const router = routerFor(registry, "laptop")
      assert.deepStrictEqual(yield* router.execute(callOf("read_file", { path: "notes.txt" })), { output: "on the laptop", isError: false })
      const written = yield* router.execute(callOf("write_file", { path: "out/result.txt", content: "written remotely" }))
      assert.isFalse(written.isError ?? false)
      assert.strictEqual(Fs.readFileSync(Path.join(workspace, "out/result.txt"), "utf8"), "written remotely")
      assert.deepStrictEqual((yield* router.tools(["read_file", "write_file"])).map((t) => t.name), ["read_file", "write_file"])
      const denied = yield* router.execute(callOf("read_file", { path: "../escape" })).pipe(Effect.flip)
      assert.strictEqual(denied.code, "tool_denied")

      // Another name is not connected: a clear tool_unavailable, at once.
      const other = yield* routerFor(registry, "desktop").execute(callOf("read_file", { path: "notes.txt" })).pipe(Effect.flip)
      assert.strictEqual(other.code, "tool_unavailable")
      assert.match(other.message, /no tools daemon named 'desktop' is connected; start one with `relavium daemon start --gateway .* --name desktop`/)
    }))

  it.scopedLive("a wrong token is refused with 401 before the upgrade, nothing is registered, and the daemon stops dialing", () =>
    Effect.gen(function* () {
      const registry = yield* registryOf
      const gateway = yield* serveGateway(registry)
      const seen: Array<string> = []
      yield* (yield* registry.subscribe).pipe(Stream.runForEach((c) => Effect.sync(() => seen.push(`${c._tag} ${c.name}`))), Effect.forkScoped)
      const dialed = yield* dial(gateway, makeWorkspace(), { token: "not-the-token-0123456789" })
      const error = yield* dialed.join.pipe(Effect.flip)
      assert.strictEqual(error.reason, "refused")
      assert.strictEqual(error.message, `the gateway at ${gateway.url} refused the daemon's token (401)`)
      assert.strictEqual((yield* dialed.state)._tag, "Refused")
      assert.deepStrictEqual(yield* registry.list, [])
      assert.deepStrictEqual(seen, [])

      // The endpoint itself, asked plainly.
      const upgrade = { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" }
      const noToken = yield* rawGet(gateway.port, upgrade)
      assert.strictEqual(noToken.status, 401)
      const wrong = yield* rawGet(gateway.port, { ...upgrade, authorization: "Bearer wrong" })
      assert.strictEqual(wrong.status, 401)
      assert.match(wrong.body.message, /missing or wrong bearer token/)
      const badName = yield* rawGet(gateway.port, { ...upgrade, authorization: `Bearer ${TOKEN}`, [DAEMON_NAME_HEADER]: "../x" })
      assert.strictEqual(badName.status, 400)
      const plain = yield* rawGet(gateway.port, { authorization: `Bearer ${TOKEN}` })
      assert.strictEqual(plain.status, 426)
      assert.match(plain.body.message, /relavium daemon start --gateway/)
      assert.deepStrictEqual(yield* registry.list, [])
    }))

  it.scopedLive("a daemon that disconnects is unregistered, and calls fail with tool_unavailable instead of hanging", () =>
    Effect.gen(function* () {
      const registry = yield* registryOf
      const gateway = yield* serveGateway(registry)
      const workspace = makeWorkspace({
        "a.txt": "A",
        "spawner.js": `
const { spawn } = require("node:child_process")
const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })
require("node:fs").writeFileSync(process.argv[2], process.pid + " " + child.pid)
setInterval(() => {}, 1000)`
      })
      const router = routerFor(registry, DEFAULT_NAME)

      // Mid-call: the daemon goes away while its command runs.
      const daemonScope = yield* Scope.make()
      const dialed = yield* dial(gateway, workspace).pipe(Scope.extend(daemonScope))
      yield* connected(dialed)
      const pidFile = Path.join(workspace, "pids")
      const call = yield* Effect.fork(router.execute(callOf("run_command", { command: "node", args: ["spawner.js", "pids"] }, allowNode)))
      yield* waitFor(() => readPids(pidFile).length === 2, 5000, "the command to start")
      yield* Scope.close(daemonScope, Exit.void)
      const error = yield* Fiber.join(call).pipe(Effect.flip)
      assert.strictEqual(error.code, "tool_unavailable")
      assert.match(error.message, /the tools daemon 'default' disconnected during the call/)
      yield* waitFor(() => readPids(pidFile).every((pid) => !alive(pid)), 5000, "the command tree to be killed")

      // Afterwards: unregistered, and the next call says nothing is connected.
      yield* until(Effect.map(registry.list, (l) => l.length === 0), "the daemon to be unregistered")
      const next = yield* router.execute(callOf("read_file", { path: "a.txt" })).pipe(Effect.flip)
      assert.strictEqual(next.code, "tool_unavailable")
      assert.match(next.message, /no tools daemon named 'default' is connected/)
    }))

  it.scopedLive("the daemon redials after the gateway restarts, and calls work again", () =>
    Effect.gen(function* () {
      const registry = yield* registryOf
      const first = yield* serveGateway(registry)
      const workspace = makeWorkspace({ "a.txt": "still here" })
      const dialed = yield* dial(first, workspace)
      yield* connected(dialed)
      const router = routerFor(registry, DEFAULT_NAME)
      assert.strictEqual((yield* router.execute(callOf("read_file", { path: "a.txt" }))).output, "still here")

      yield* first.stop
      const lost = yield* waiting(dialed)
      assert.isTrue(lost.wasConnected)
      yield* until(Effect.map(registry.list, (l) => l.length === 0), "the dropped daemon to be unregistered")
      assert.strictEqual((yield* router.execute(callOf("read_file", { path: "a.txt" })).pipe(Effect.flip)).code, "tool_unavailable")

      // The gateway comes back on the same port: the daemon finds it by itself.
      yield* serveGateway(registry, first.port)
      yield* connected(dialed)
      assert.strictEqual((yield* router.execute(callOf("read_file", { path: "a.txt" }))).output, "still here")
    }))

  it.scopedLive("the newest connection of a name is used; the older one takes over when it goes", () =>
    Effect.gen(function* () {
      const registry = yield* registryOf
      const gateway = yield* serveGateway(registry)
      const older = yield* dial(gateway, makeWorkspace({ "who.txt": "older" }))
      yield* connected(older)
      const newerScope = yield* Scope.make()
      const newer = yield* dial(gateway, makeWorkspace({ "who.txt": "newer" })).pipe(Scope.extend(newerScope))
      yield* connected(newer)
      const router = routerFor(registry, DEFAULT_NAME)
      assert.strictEqual((yield* router.execute(callOf("read_file", { path: "who.txt" }))).output, "newer")
      assert.deepStrictEqual((yield* registry.list).map((d) => d.connections), [2])
      yield* Scope.close(newerScope, Exit.void)
      yield* until(Effect.map(registry.list, (l) => l[0]?.connections === 1), "the newer connection to go")
      assert.strictEqual((yield* router.execute(callOf("read_file", { path: "who.txt" }))).output, "older")
    }))

  it.scopedLive("layerRouterGateway falls back to its orElse router while no daemon is connected", () =>
    Effect.gen(function* () {
      const registryContext = yield* Layer.build(DaemonRegistry.layerMemory)
      const registry = Context.get(registryContext, DaemonRegistry)
      const local = makeWorkspace({ "where.txt": "in-process" })
      const router = yield* Layer.build(
        layerRouterGateway("default", { orElse: layerLocal({ workspace: local }) }).pipe(Layer.provide(Layer.succeedContext(registryContext)))
      ).pipe(Effect.map(Context.get(DaemonRouter)))
      assert.strictEqual((yield* router.execute(callOf("read_file", { path: "where.txt" }))).output, "in-process")
      const gateway = yield* serveGateway(registry)
      yield* connected(yield* dial(gateway, makeWorkspace({ "where.txt": "dialed in" })))
      assert.strictEqual((yield* router.execute(callOf("read_file", { path: "where.txt" }))).output, "dialed in")
    }))

  it.scopedLive("a peer that upgrades but never answers the gateway's Ping is dropped and unregistered", () =>
    Effect.gen(function* () {
      const registry = yield* registryOf
      const seen: Array<string> = []
      yield* (yield* registry.subscribe).pipe(Stream.runForEach((c) => Effect.sync(() => seen.push(`${c._tag} ${c.name}`))), Effect.forkScoped)
      const gateway = yield* serveGateway(
        registry,
        0,
        httpApp(registry, { authorize: authorizeToken(Redacted.make(TOKEN)), pingTimeout: "300 millis" })
      )
      const mute = yield* Effect.acquireRelease(
        Effect.async<WebSocket>((resume) => {
          const ws = new WebSocket(gateway.url, { headers: { authorization: `Bearer ${TOKEN}`, [DAEMON_NAME_HEADER]: "mute" } })
          ws.addEventListener("open", () => resume(Effect.succeed(ws)), { once: true })
          ws.addEventListener("error", () => resume(Effect.dieMessage("the mute peer could not connect")), { once: true })
        }),
        (ws) => Effect.sync(() => ws.close())
      )
      const closed = Effect.async<number>((resume) => {
        if (mute.readyState === WebSocket.CLOSED) return resume(Effect.succeed(0))
        mute.addEventListener("close", (event) => resume(Effect.succeed(event.code)), { once: true })
      })
      yield* closed.pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the gateway kept a mute peer") }), Effect.orDie)
      yield* until(Effect.map(registry.list, (l) => l.length === 0), "the mute peer to be unregistered")
      assert.deepStrictEqual(seen, ["Connected mute", "Disconnected mute"])
    }))

  it.scopedLive("a gateway that goes silent is taken for dead and redialed", () =>
    Effect.gen(function* () {
      // Accepts the websocket and never says a word (no Ping, nothing).
      let upgrades = 0
      const silentApp = Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const socket = yield* request.upgrade.pipe(Effect.orDie)
        upgrades++
        yield* socket.runRaw(() => {}).pipe(Effect.ignore)
        return HttpServerResponse.empty()
      })
      const registry = yield* registryOf
      const gateway = yield* serveGateway(registry, 0, silentApp)
      const dialed = yield* dial(gateway, makeWorkspace(), { idleTimeout: "300 millis" })
      const lost = yield* waiting(dialed)
      assert.isTrue(lost.wasConnected)
      assert.match(lost.reason, /the gateway sent nothing for 300ms/)
      yield* waitFor(() => upgrades >= 2, 5000, "the daemon to redial")
    }))
})

const DEFAULT_NAME = "default"

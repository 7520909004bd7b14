import * as Net from "node:net"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { CommandPattern } from "@relavium/domain"
import { layerRpcClient, makeClient, serveDaemon, type ToolPolicy } from "../src/index.js"
import { alive, callOf, makeWorkspace, readPids, routerFrom, waitFor } from "./support.js"

const ONE_TWO = "console.log('one'); setTimeout(() => console.log('two'), 150)"
const TOKEN = "test-token-0123456789abcdef"
const allowNode: ToolPolicy = { allowedCommandGlobs: ["node spawner.js *"] }
/** The exact command line, as a chat approval grants it (node -e is never matched by a pattern). */
const exactly = (command: string, args: ReadonlyArray<string>): ToolPolicy => ({ allowedCommands: [CommandPattern.exactLine(command, args)] })

const SPAWNER = `
const { spawn } = require("node:child_process")
const fs = require("node:fs")
const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })
fs.writeFileSync(process.argv[2], process.pid + " " + child.pid)
setInterval(() => {}, 1000)
`

/** A TCP proxy in front of the daemon whose connections a test can cut. */
const proxy = (targetPort: number) =>
  Effect.acquireRelease(
    Effect.async<{ port: number; server: Net.Server; cut: () => void }>((resume) => {
      const sockets = new Set<Net.Socket>()
      const server = Net.createServer((client) => {
        const upstream = Net.connect(targetPort, "127.0.0.1")
        sockets.add(client).add(upstream)
        client.pipe(upstream)
        upstream.pipe(client)
        const drop = () => {
          client.destroy()
          upstream.destroy()
        }
        client.on("error", drop).on("close", drop)
        upstream.on("error", drop).on("close", drop)
      })
      server.listen(0, "127.0.0.1", () =>
        resume(
          Effect.succeed({
            port: (server.address() as Net.AddressInfo).port,
            server,
            cut: () => {
              for (const socket of sockets) socket.destroy()
              sockets.clear()
            }
          })
        )
      )
    }),
    ({ cut, server }) =>
      Effect.async<void>((resume) => {
        cut()
        server.close(() => resume(Effect.void))
      })
  )

const routerFor = (url: string, token = TOKEN) => routerFrom(layerRpcClient({ url, token }))

describe("DaemonRpcs over a websocket", () => {
  it.scopedLive("ping, list tools, and execute with the output streamed before the result", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({ "a.txt": "remote A" })
      const server = yield* serveDaemon({ workspace: root, port: 0, token: TOKEN })
      assert.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+\/rpc$/)
      const client = yield* makeClient({ url: server.url, token: TOKEN })
      const ping = yield* client.Ping()
      assert.strictEqual(ping.daemon, "relavium")
      assert.isTrue(ping.started)

      const chunks = yield* client
        .Execute({
          call: callOf("run_command", { command: "node", args: ["-e", ONE_TWO] }, exactly("node", ["-e", ONE_TWO]))
        })
        .pipe(Stream.runCollect, Effect.map((c) => [...c]))
      assert.deepStrictEqual(
        chunks.map((c) => (c._tag === "Output" ? `${c.stream}:${c.text}` : `result:${c.output}`)),
        ["stdout:one\n", "stdout:two\n", "result:one\ntwo\n"]
      )

      const router = yield* routerFor(server.url)
      assert.deepStrictEqual((yield* router.tools(["read_file", "run_command"])).map((t) => t.name), ["read_file", "run_command"])
      assert.deepStrictEqual(yield* router.execute(callOf("read_file", { path: "a.txt" })), { output: "remote A", isError: false })
      const denied = yield* router.execute(callOf("read_file", { path: "../x" })).pipe(Effect.flip)
      assert.strictEqual(denied.code, "tool_denied")
      const unknown = yield* router.execute(callOf("nope", {})).pipe(Effect.flip)
      assert.strictEqual(unknown.code, "tool_unavailable")
      const badArgs = yield* router.execute(callOf("read_file", { path: 1 })).pipe(Effect.flip)
      assert.strictEqual(badArgs.code, "tool_failed")
    }))

  it.scopedLive("a wrong token is refused (tool_denied) and the daemon keeps serving the right one", () =>
    Effect.gen(function* () {
      const server = yield* serveDaemon({ workspace: makeWorkspace({ "a.txt": "A" }), port: 0, token: TOKEN })
      const intruder = yield* makeClient({ url: server.url, token: "wrong-token-0123456789abcdef" })
      const refused = yield* intruder.Ping().pipe(Effect.flip)
      assert.strictEqual(refused._tag, "Unauthorized")
      const wrongRouter = yield* routerFor(server.url, "wrong-token-0123456789abcdef")
      const error = yield* wrongRouter.execute(callOf("read_file", { path: "a.txt" })).pipe(Effect.flip)
      assert.strictEqual(error.code, "tool_denied")
      assert.match(error.message, /token/)
      const listError = yield* wrongRouter.tools(["read_file"]).pipe(Effect.flip)
      assert.strictEqual(listError.code, "tool_denied")
      const router = yield* routerFor(server.url)
      assert.strictEqual((yield* router.execute(callOf("read_file", { path: "a.txt" }))).output, "A")
    }))

  it.scopedLive("a connection dropped mid-call is tool_unavailable, the remote command dies, the daemon keeps serving", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({ "spawner.js": SPAWNER, "a.txt": "A" })
      const server = yield* serveDaemon({ workspace: root, port: 0, token: TOKEN })
      const relay = yield* proxy(server.port)
      const router = yield* routerFor(`ws://127.0.0.1:${relay.port}/rpc`)
      const pidFile = Path.join(root, "pids")
      const call = yield* Effect.fork(router.execute(callOf("run_command", { command: "node", args: ["spawner.js", "pids"] }, allowNode)))
      yield* waitFor(() => readPids(pidFile).length === 2, 5000, "the remote command to start")
      const pids = readPids(pidFile)
      const cutAt = Date.now()
      relay.cut()
      const error = yield* Fiber.join(call).pipe(Effect.flip)
      assert.strictEqual(error.code, "tool_unavailable")
      assert.match(error.message, /connection dropped/)
      assert.isBelow(Date.now() - cutAt, 3000, "the call fails promptly instead of hanging")
      // The daemon saw the client go and killed what it was running for it.
      yield* waitFor(() => pids.every((pid) => !alive(pid)), 5000, "the remote command tree to be killed")

      // The daemon still serves: a new client directly, and the same client once it has reconnected.
      const direct = yield* routerFor(server.url)
      assert.strictEqual((yield* direct.execute(callOf("read_file", { path: "a.txt" }))).output, "A")
      const deadline = Date.now() + 5000
      let reconnected = false
      while (!reconnected && Date.now() < deadline) {
        reconnected = yield* router.execute(callOf("read_file", { path: "a.txt" })).pipe(
          Effect.as(true),
          Effect.catchAll((e) => (e.code === "tool_unavailable" ? Effect.sleep("100 millis").pipe(Effect.as(false)) : Effect.fail(e)))
        )
      }
      assert.isTrue(reconnected, "the client reconnected through the proxy")
    }))

  it.scopedLive("an unreachable daemon is tool_unavailable, not a hang", () =>
    Effect.gen(function* () {
      const port = yield* Effect.async<number>((resume) => {
        const probe = Net.createServer().listen(0, "127.0.0.1", () => {
          const free = (probe.address() as Net.AddressInfo).port
          probe.close(() => resume(Effect.succeed(free)))
        })
      })
      const router = yield* routerFor(`ws://127.0.0.1:${port}/rpc`)
      const started = Date.now()
      const error = yield* router.execute(callOf("read_file", { path: "a.txt" })).pipe(Effect.flip)
      assert.strictEqual(error.code, "tool_unavailable")
      assert.isBelow(Date.now() - started, 3000)
    }))

  it.scopedLive("serveDaemon listens on 127.0.0.1 only and wants a real token", () =>
    Effect.gen(function* () {
      const wrongHost = yield* serveDaemon({ workspace: makeWorkspace(), port: 0, token: TOKEN, host: "0.0.0.0" as "127.0.0.1" }).pipe(Effect.flip)
      assert.match(wrongHost.message, /only listens on 127\.0\.0\.1/)
      const shortToken = yield* serveDaemon({ workspace: makeWorkspace(), port: 0, token: "short" }).pipe(Effect.flip)
      assert.match(shortToken.message, /at least 16/)
    }))
})

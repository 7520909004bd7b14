/**
 * Live output of `run_command` on every `DaemonRouter` transport: the daemon in
 * this process (`layerLocal`), the daemon's websocket RPC (`serveDaemon` +
 * `layerRpcClient`), a daemon dialed in to a gateway endpoint (`dialGateway`,
 * `routerFor`), and NATS (`NatsDaemonRouter`: a worker's router, a gateway
 * serving the real daemon, against the NATS server on 127.0.0.1:4222).
 * On each: the chunks arrive in order while the command runs (the command
 * waits for a file the test creates only once it has seen the first chunk),
 * fewer chunks than lines (coalesced), at most 50 KiB then a truncation note
 * (bounded, with the model's result unchanged), and interrupting the call
 * kills the command and ends the stream.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Http from "node:http"
import type * as Net from "node:net"
import { HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Redacted, Scope, Stream } from "effect"
import { CommandPattern } from "@relavium/domain"
import {
  authorizeToken,
  DAEMON_RPC_PATH,
  DaemonRegistry,
  dialGateway,
  httpApp,
  layerLocal,
  layerRpcClient,
  MAX_LIVE_BYTES,
  routerFor,
  serveDaemon,
  type ToolPolicy
} from "@relavium/daemon"
import { NatsDaemonRouter } from "@relavium/hub"
import type { DaemonRouter, ToolOutputChunk } from "@relavium/ports"
import { alive, callOf, makeWorkspace, readPids, routerFrom, waitFor } from "../packages/daemon/test/support.js"

const TOKEN = "live-output-token-0123456789"
const natsUrl = "nats://127.0.0.1:4222"

type Router = DaemonRouter["Type"]

/** A `sh -c SCRIPT` call, allowed by its exact command line. */
const shell = (script: string, timeoutMs = 20_000) => {
  const args = ["-c", script]
  const policy: ToolPolicy = { allowedCommands: [CommandPattern.exactLine("sh", args)] }
  return callOf("run_command", { command: "sh", args, timeout_ms: timeoutMs }, policy)
}

/** Prints `ready`, waits for the file `go`, then prints ten lines 100 ms apart and a burst of 300. */
const GATED = `echo ready; while [ ! -e go ]; do sleep 0.05; done; for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.1; done; i=0; while [ $i -lt 300 ]; do echo burst $i; i=$((i+1)); done`
const expectedGated = ["ready", ...Array.from({ length: 10 }, (_, i) => `line ${i + 1}`), ...Array.from({ length: 300 }, (_, i) => `burst ${i}`)]
  .map((line) => `${line}\n`)
  .join("")

const LINE = "y".repeat(50)
const FLOOD = `i=0; while [ $i -lt 4000 ]; do echo ${LINE}; i=$((i+1)); done`
const TICKER = `echo $$ > pid; while true; do echo tick; sleep 0.05; done`

type Transport = (workspace: string) => Effect.Effect<Router, unknown, Scope.Scope>

const inProcess: Transport = (workspace) => routerFrom(layerLocal({ workspace }))

const rpc: Transport = (workspace) =>
  Effect.gen(function* () {
    const server = yield* serveDaemon({ workspace, port: 0, token: TOKEN })
    return yield* routerFrom(layerRpcClient({ url: server.url, token: TOKEN }))
  })

const dialedIn: Transport = (workspace) =>
  Effect.gen(function* () {
    const registry = Context.get(yield* Layer.build(DaemonRegistry.layerMemory), DaemonRegistry)
    // The gateway endpoint in a scope of its own, closed after its sockets are cut (an open daemon socket holds it).
    const sockets = new Set<Net.Socket>()
    const serverScope = yield* Scope.make()
    const server = yield* NodeHttpServer.make(
      () =>
        Http.createServer().on("connection", (socket: Net.Socket) => {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
        }),
      { port: 0, host: "127.0.0.1" }
    ).pipe(Scope.extend(serverScope))
    yield* HttpServer.serveEffect(
      HttpRouter.empty.pipe(HttpRouter.get(DAEMON_RPC_PATH, httpApp(registry, { authorize: authorizeToken(Redacted.make(TOKEN)) })))
    ).pipe(Effect.provideService(HttpServer.HttpServer, server), Scope.extend(serverScope))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const socket of sockets) socket.destroy()
      }).pipe(Effect.zipRight(Scope.close(serverScope, Exit.void)))
    )
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const dialed = yield* dialGateway({ url: `ws://127.0.0.1:${port}${DAEMON_RPC_PATH}`, token: TOKEN, workspace, name: "laptop" })
    yield* dialed.changes.pipe(
      Stream.filter((s) => s._tag === "Connected"),
      Stream.runHead,
      Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "the daemon did not connect to the gateway" })
    )
    return routerFor(registry, "laptop")
  })

const nats: Transport = (workspace) =>
  Effect.gen(function* () {
    const prefix = `relavium-test.${crypto.randomUUID().replaceAll("-", "")}`
    const daemon = yield* routerFrom(layerLocal({ workspace }))
    const gatewayNc = yield* NatsDaemonRouter.acquireConnection({ servers: natsUrl, name: "live-output-gateway" })
    yield* NatsDaemonRouter.serveDaemon(gatewayNc, daemon, { daemon: "laptop", subjectPrefix: prefix, heartbeat: "200 millis" })
    const workerNc = yield* NatsDaemonRouter.acquireConnection({ servers: natsUrl, name: "live-output-worker" })
    return NatsDaemonRouter.makeRouter(workerNc, { daemon: "laptop", subjectPrefix: prefix })
  })

const transports: ReadonlyArray<readonly [string, Transport]> = [
  ["in-process", inProcess],
  ["RPC (websocket)", rpc],
  ["dialed in to a gateway", dialedIn],
  ["NATS", nats]
]

describe.each(transports)("live run_command output: %s", (_name, transport) => {
  it.scopedLive("chunks arrive in order while the command runs, coalesced, before the unchanged result", () =>
    Effect.gen(function* () {
      const root = makeWorkspace()
      const router = yield* transport(root)
      const seen: Array<ToolOutputChunk> = []
      const result = yield* router.execute(shell(GATED), {
        onOutput: (chunk) =>
          Effect.sync(() => {
            seen.push(chunk)
            // The command goes on only once its first line has been seen: output that came only at the end would time it out.
            if (seen.map((c) => c.text).join("").includes("ready\n")) Fs.writeFileSync(Path.join(root, "go"), "")
          })
      })
      assert.isFalse(result.isError, result.output)
      assert.notInclude(result.output, "timed out")
      assert.strictEqual(seen.map((c) => c.text).join(""), expectedGated)
      assert.isTrue(seen.every((c) => c.stream === "stdout"))
      assert.isAtLeast(seen.length, 3, "several chunks while the command ran")
      assert.isBelow(seen.length, 100, "311 lines arrive in far fewer chunks")
      assert.strictEqual(result.output, expectedGated, "the model's result is the whole output, as without streaming")
    }))

  it.scopedLive("at most 50 KiB are forwarded, then one truncation note; the result keeps its own bound", () =>
    Effect.gen(function* () {
      const router = yield* transport(makeWorkspace())
      const seen: Array<ToolOutputChunk> = []
      const result = yield* router.execute(shell(FLOOD), { onOutput: (chunk) => Effect.sync(() => seen.push(chunk)) })
      const last = seen.at(-1)!
      assert.match(last.text, /\[live output truncated after 51200 bytes/)
      const forwarded = seen.slice(0, -1).map((c) => c.text).join("")
      assert.strictEqual(Buffer.byteLength(forwarded), MAX_LIVE_BYTES)
      assert.strictEqual(forwarded, `${LINE}\n`.repeat(4000).slice(0, MAX_LIVE_BYTES))
      assert.isFalse(result.isError)
      assert.match(result.output, /\[output truncated: 204000 bytes in 4000 lines/)
    }))

  it.scopedLive("interrupting the call kills the command and ends the stream", () =>
    Effect.gen(function* () {
      const root = makeWorkspace()
      const router = yield* transport(root)
      const seen: Array<ToolOutputChunk> = []
      const first = yield* Deferred.make<void>()
      const fiber = yield* router
        .execute(shell(TICKER), { onOutput: (chunk) => Effect.zipRight(Effect.sync(() => seen.push(chunk)), Deferred.succeed(first, undefined)) })
        .pipe(Effect.fork)
      yield* Deferred.await(first)
      const pidFile = Path.join(root, "pid")
      yield* waitFor(() => readPids(pidFile).length === 1, 5000, "the pid file")
      const [pid] = readPids(pidFile)
      assert.isTrue(alive(pid!))
      yield* Fiber.interrupt(fiber)
      const count = seen.length
      yield* waitFor(() => !alive(pid!), 5000, "the command to be killed")
      // The process is gone: wait as long as two of its ticks and check nothing more arrived.
      yield* Effect.sleep("150 millis")
      assert.strictEqual(seen.length, count, "no chunk after the call was interrupted")
    }))
})

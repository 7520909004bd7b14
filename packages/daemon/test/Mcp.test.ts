import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { layerLocal, type McpServerConfig } from "../src/index.js"
import { alive, callOf, isToolError, makeWorkspace, routerFrom, run, startDaemon, tempDir, waitFor } from "./support.js"
// @ts-expect-error: a plain ESM fixture without types
import { makeServer } from "./fixtures/mcp-server.mjs"

const fixture = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "fixtures", "mcp-server.mjs")

const stdioServer = (startLog: string, extra: Partial<McpServerConfig> = {}): McpServerConfig =>
  ({
    id: "fx",
    transport: "stdio",
    command: process.execPath,
    args: [fixture],
    env: { MCP_START_LOG: startLog },
    ...extra
  }) as McpServerConfig

const starts = (log: string) => (Fs.existsSync(log) ? Fs.readFileSync(log, "utf8").trim().split("\n").filter(Boolean).map(Number) : [])

const ok = (value: unknown) => {
  assert.isFalse(isToolError(value as never), JSON.stringify(value))
  return value as { output: string; isError?: boolean }
}

describe("MCP over stdio (a real server built with the MCP SDK)", () => {
  it.scopedLive("lists its tools as mcp_{server}_{tool}, calls them, and reconnects after the server dies", () =>
    Effect.gen(function* () {
      const log = Path.join(tempDir(), "starts.log")
      const daemon = yield* startDaemon({ workspace: makeWorkspace(), mcpServers: [stdioServer(log)] })
      const all = yield* daemon.tools()
      assert.deepStrictEqual(
        all.filter((t) => t.name.startsWith("mcp_")).map((t) => t.name),
        ["mcp_fx_echo", "mcp_fx_pid", "mcp_fx_fail", "mcp_fx_hang"]
      )
      const [echoDef] = yield* daemon.tools(["mcp_fx_echo"])
      assert.deepInclude(echoDef!.parameters as object, { type: "object", required: ["text"] })

      assert.strictEqual(ok(yield* run(daemon, "mcp_fx_echo", { text: "hi" })).output, "echo: hi")
      const failing = ok(yield* run(daemon, "mcp_fx_fail", {}))
      assert.isTrue(failing.isError)
      assert.strictEqual(failing.output, "something broke")
      const bad = yield* run(daemon, "mcp_fx_echo", { text: 42 })
      assert.isFalse(isToolError(bad))
      assert.isTrue((bad as { isError?: boolean }).isError, "the server reports invalid arguments as a tool error")

      const firstPid = Number(ok(yield* run(daemon, "mcp_fx_pid", {})).output)
      assert.deepStrictEqual(starts(log), [firstPid])
      assert.strictEqual(daemon.mcp.pid("fx"), firstPid)

      // The server crashes; the next call starts a new one.
      process.kill(firstPid, "SIGKILL")
      yield* waitFor(() => !alive(firstPid), 3000, "the MCP server to die")
      yield* Effect.sleep("50 millis")
      const secondPid = Number(ok(yield* run(daemon, "mcp_fx_pid", {})).output)
      assert.notStrictEqual(secondPid, firstPid)
      assert.deepStrictEqual(starts(log), [firstPid, secondPid])
      assert.strictEqual(ok(yield* run(daemon, "mcp_fx_echo", { text: "again" })).output, "echo: again")
    }))

  it.scopedLive("a server dying during a call is tool_unavailable, and the next call reconnects", () =>
    Effect.gen(function* () {
      const log = Path.join(tempDir(), "starts.log")
      const daemon = yield* startDaemon({ workspace: makeWorkspace(), mcpServers: [stdioServer(log)] })
      const pid = Number(ok(yield* run(daemon, "mcp_fx_pid", {})).output)
      const fiber = yield* Effect.fork(run(daemon, "mcp_fx_hang", {}))
      yield* Effect.sleep("200 millis")
      process.kill(pid, "SIGKILL")
      const outcome = yield* Fiber.join(fiber)
      assert.isTrue(isToolError(outcome))
      if (isToolError(outcome)) {
        assert.strictEqual(outcome.code, "tool_unavailable")
        assert.match(outcome.message, /went away during the call/)
      }
      assert.strictEqual(ok(yield* run(daemon, "mcp_fx_echo", { text: "back" })).output, "echo: back")
    }))

  it.scopedLive("tools_allowlist narrows the tools; unknown servers and tools are tool_unavailable", () =>
    Effect.gen(function* () {
      const log = Path.join(tempDir(), "starts.log")
      const daemon = yield* startDaemon({
        workspace: makeWorkspace(),
        mcpServers: [stdioServer(log, { tools_allowlist: ["echo"] })]
      })
      assert.deepStrictEqual((yield* daemon.tools()).filter((t) => t.name.startsWith("mcp_")).map((t) => t.name), ["mcp_fx_echo"])
      const notAllowed = yield* run(daemon, "mcp_fx_pid", {})
      assert.isTrue(isToolError(notAllowed) && notAllowed.code === "tool_unavailable")
      const unknown = yield* run(daemon, "mcp_other_echo", {})
      assert.isTrue(isToolError(unknown) && unknown.code === "tool_unavailable")
      const badArgs = yield* run(daemon, "mcp_fx_echo", "not an object")
      assert.isTrue(isToolError(badArgs) && badArgs.code === "tool_failed")
    }))

  it.scopedLive("a server that cannot start makes its tools unavailable without stopping the daemon", () =>
    Effect.gen(function* () {
      const daemon = yield* startDaemon({
        workspace: makeWorkspace({ "a.txt": "still here" }),
        mcpServers: [{ id: "broken", transport: "stdio", command: "/nonexistent/mcp-server" }]
      })
      const error = yield* daemon.tools(["mcp_broken_x"]).pipe(Effect.flip)
      assert.strictEqual(error.code, "tool_unavailable")
      assert.match(error.message, /MCP server 'broken' is not reachable/)
      assert.strictEqual(ok(yield* run(daemon, "read_file", { path: "a.txt" })).output, "still here")
    }))
})

describe("MCP over streamable HTTP", () => {
  it.scopedLive("calls tools of a server on a streamable HTTP endpoint", () =>
    Effect.gen(function* () {
      const server = yield* Effect.acquireRelease(
        Effect.async<Http.Server>((resume) => {
          const http = Http.createServer(async (req, res) => {
            // Stateless: a fresh server and transport per request.
            const mcp = makeServer()
            const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
            res.on("close", () => {
              void transport.close()
              void mcp.close()
            })
            await mcp.connect(transport)
            await transport.handleRequest(req, res)
          })
          http.listen(0, "127.0.0.1", () => resume(Effect.succeed(http)))
        }),
        (http) => Effect.async<void>((resume) => {
          http.closeAllConnections()
          http.close(() => resume(Effect.void))
        })
      )
      const port = (server.address() as AddressInfo).port
      const daemon = yield* startDaemon({
        workspace: makeWorkspace(),
        mcpServers: [{ id: "web", transport: "http", url: `http://127.0.0.1:${port}/mcp` }]
      })
      assert.include((yield* daemon.tools()).map((t) => t.name), "mcp_web_echo")
      assert.strictEqual(ok(yield* run(daemon, "mcp_web_echo", { text: "over http" })).output, "echo: over http")
    }))
})

describe("layerLocal starts the daemon lazily", () => {
  it.scopedLive("nothing is spawned before the first tool call", () =>
    Effect.gen(function* () {
      const log = Path.join(tempDir(), "starts.log")
      const root = makeWorkspace({ "a.txt": "A" })
      const router = yield* routerFrom(layerLocal({ workspace: root, mcpServers: [stdioServer(log)] }))
      yield* Effect.sleep("300 millis")
      assert.deepStrictEqual(starts(log), [], "no MCP server before the first call")
      const result = yield* router.execute(callOf("read_file", { path: "a.txt" }))
      assert.strictEqual(result.output, "A")
      assert.lengthOf(starts(log), 1, "the daemon started (and connected its MCP servers) on the first call")
      yield* router.execute(callOf("mcp_fx_echo", { text: "x" }))
      assert.lengthOf(starts(log), 1, "and only once")
    }))

  it.scopedLive("a workspace that does not exist fails the call with tool_unavailable (and is retried)", () =>
    Effect.gen(function* () {
      const root = Path.join(tempDir(), "later")
      const router = yield* routerFrom(layerLocal({ workspace: root }))
      const error = yield* router.execute(callOf("read_file", { path: "a.txt" })).pipe(Effect.flip)
      assert.strictEqual(error.code, "tool_unavailable")
      Fs.mkdirSync(root)
      Fs.writeFileSync(Path.join(root, "a.txt"), "now")
      assert.strictEqual((yield* router.execute(callOf("read_file", { path: "a.txt" }))).output, "now")
    }))
})

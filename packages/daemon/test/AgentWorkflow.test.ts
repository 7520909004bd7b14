/**
 * The must-show: one agent workflow (read_file + run_command) runs with the
 * daemon in-process (`layerLocal`) and with the daemon in a separate OS
 * process over RPC (`layerRpcClient`), and the two runs emit the same events.
 * Cancelling a run kills the command the remote daemon is running for it.
 *
 * The separate process is `test/fixtures/daemon-process.ts`, bundled with
 * esbuild into a temporary directory and started with `node`.
 */
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { build } from "esbuild"
import { Data, Effect, Layer, Stream } from "effect"
import { WorkflowEngine } from "@relavium/core"
import { type DaemonRouter } from "@relavium/ports"
import type { RunEvent } from "@relavium/domain"
import { answer, engineLayer, scriptedModel, start, toolCall } from "../../core/test/harness.js"
import { layerLocal, layerRpcClient } from "../src/index.js"
import { alive, makeWorkspace, readPids, tempDir, waitFor } from "./support.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const TOKEN = "agent-test-token-0123456789abcdef"

interface DaemonProcess {
  readonly url: string
  readonly child: ChildProcess.ChildProcess
}

class DaemonExited extends Data.TaggedError("DaemonExited")<{ readonly code: number | null }> {}

let bundle = ""
const processes: Array<ChildProcess.ChildProcess> = []

beforeAll(async () => {
  bundle = Path.join(tempDir("relavium-daemon-bundle-"), "daemon-process.mjs")
  await build({
    entryPoints: [Path.join(here, "fixtures/daemon-process.ts")],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" }
  })
}, 60_000)

afterAll(() => {
  for (const child of processes) child.kill("SIGKILL")
})

/** Starts `node daemon-process.mjs WORKSPACE` and waits for the line with its URL. */
const spawnDaemon = (workspace: string) =>
  Effect.async<DaemonProcess, DaemonExited>((resume) => {
    const child = ChildProcess.spawn(process.execPath, [bundle, workspace], {
      env: { ...process.env, RELAVIUM_DAEMON_TOKEN: TOKEN },
      stdio: ["ignore", "pipe", "inherit"]
    })
    processes.push(child)
    let buffered = ""
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (text: string) => {
      buffered += text
      const line = buffered.split("\n")[0]
      if (buffered.includes("\n") && line) resume(Effect.succeed({ url: JSON.parse(line).url as string, child }))
    })
    child.on("exit", (code) => resume(Effect.fail(new DaemonExited({ code }))))
  })

const engineWith = (router: Layer.Layer<DaemonRouter>, model: ReturnType<typeof scriptedModel>) =>
  engineLayer({ model: model.layer, router })

const workflow = `schema_version: '1.0'
workflow:
  id: daemon-parity
  tools:
    allowedCommands: ["node count.js 3"]
    allowedCommandGlobs: ["node spawner.js *"]
  agents:
    - id: coder
      provider: anthropic
      model: claude-sonnet-4
      system_prompt: 'You read files and run commands.'
      tools: [read_file, run_command]
  nodes:
    - { id: work, type: agent, agent_ref: coder, prompt_template: 'Look at the notes and count.' }
    - { id: out, type: output }
  edges:
    - { from: work, to: out }
`

const workspaceFiles = {
  "notes.txt": "count to three\n",
  "count.js": "const n = Number(process.argv[2]); for (let i = 1; i <= n; i++) console.log(i)",
  "spawner.js": `
const { spawn } = require("node:child_process")
const fs = require("node:fs")
const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })
fs.writeFileSync(process.argv[2], process.pid + " " + child.pid)
setInterval(() => {}, 1000)
`
}

/** The model's script: read the notes, run the count, try a denied command and an escape, then answer. */
const script = () =>
  scriptedModel([
    [{ type: "text_delta", text: "Reading. " }, ...toolCall("c1", "read_file", { path: "notes.txt" })],
    toolCall("c2", "run_command", { command: "node", args: ["count.js", "3"] }),
    toolCall("c3", "run_command", { command: "rm", args: ["-rf", "."] }),
    toolCall("c4", "read_file", { path: "../../etc/passwd" }),
    toolCall("c5", "no_such_tool", {}),
    answer("Counted to three.")
  ])

const runToEnd = () =>
  Effect.gen(function* () {
    const handle = yield* start(workflow)
    const engine = yield* WorkflowEngine
    const events = yield* engine.events(handle.runId).pipe(Stream.runCollect)
    return [...events]
  })

/** Events without what differs between any two runs: run ids, workflow ids, clocks, durations. */
const comparable = (events: ReadonlyArray<RunEvent.RunEvent>) =>
  events.map((event) => {
    const { timestamp: _t, runId: _r, ...rest } = event as unknown as Record<string, unknown>
    delete rest.workflowId
    delete rest.durationMs
    return rest
  })

describe("the same agent workflow, daemon in-process and in another process", () => {
  it.live("emits identical events", () =>
    Effect.gen(function* () {
      const localModel = script()
      const localRoot = makeWorkspace(workspaceFiles)
      const local = yield* runToEnd().pipe(Effect.provide(engineWith(layerLocal({ workspace: localRoot }), localModel)))

      const remoteRoot = makeWorkspace(workspaceFiles)
      const daemon = yield* spawnDaemon(remoteRoot)
      assert.notStrictEqual(daemon.child.pid, process.pid)
      const remoteModel = script()
      const remote = yield* runToEnd().pipe(
        Effect.provide(engineWith(layerRpcClient({ url: daemon.url, token: TOKEN }), remoteModel))
      )

      assert.strictEqual(local[local.length - 1]!.type, "run:completed")
      assert.deepStrictEqual(comparable(remote), comparable(local))
      const results = local.filter((e) => e.type === "agent:tool_result")
      assert.deepStrictEqual(
        results.map((e) => (e.type === "agent:tool_result" ? [e.success, e.errorCode ?? null, e.outputSummary.slice(0, 30)] : [])),
        [
          [true, null, "count to three\n"],
          [true, null, "1\n2\n3\n"],
          [false, "tool_denied", "the command line 'rm -rf .' is"],
          [false, "tool_denied", "'../../etc/passwd' is outside "],
          [false, "tool_unavailable", "no tool named 'no_such_tool' i"]
        ]
      )
      // The model saw the same tool definitions both ways.
      assert.deepStrictEqual(remoteModel.requests[0]!.tools, localModel.requests[0]!.tools)
      assert.deepStrictEqual(localModel.requests[0]!.tools?.map((t) => t.name), ["read_file", "run_command"])
      daemon.child.kill("SIGTERM")
    }))

  it.live("cancelling the run kills the command the remote daemon is running", () =>
    Effect.gen(function* () {
      const root = makeWorkspace(workspaceFiles)
      const daemon = yield* spawnDaemon(root)
      const pidFile = Path.join(root, "pids")
      const model = scriptedModel([toolCall("c1", "run_command", { command: "node", args: ["spawner.js", "pids"] }), answer("never")])
      yield* Effect.gen(function* () {
        const handle = yield* start(workflow)
        const engine = yield* WorkflowEngine
        yield* waitFor(() => readPids(pidFile).length === 2, 10_000, "the remote command to start")
        const pids = readPids(pidFile)
        assert.isTrue(pids.every(alive), "the command and its child run in the daemon process's tree")
        yield* engine.cancel(handle.runId)
        const events = yield* engine.events(handle.runId).pipe(Stream.runCollect)
        assert.strictEqual([...events].at(-1)!.type, "run:cancelled")
        yield* waitFor(() => pids.every((pid) => !alive(pid)), 5000, "the remote command and its child to be killed")
        // The daemon process itself is still up.
        assert.isTrue(alive(daemon.child.pid!))
      }).pipe(Effect.provide(engineWith(layerRpcClient({ url: daemon.url, token: TOKEN }), model)))
      daemon.child.kill("SIGTERM")
    }))
})

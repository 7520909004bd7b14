/**
 * An agent node is checkpointed after every completed turn: a `relavium run`
 * SIGKILLed after the agent's second turn is continued by `relavium resume`
 * from its third turn. The model (a local server speaking OpenAI's streaming
 * wire format) counts the calls it gets per turn: the first two are never made
 * again, and each call's cost is counted once.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ndjson, relaviumAsync, root } from "../apps/cli/test/relavium.js"

const KEY = "sk-test-agent-crash-0123456789"
const bin = join(root, "apps/cli/bin/relavium.mjs")

const frame = (choices: ReadonlyArray<unknown>, usage?: unknown) =>
  `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1731000000, model: "gpt-4o-mini", choices, ...(usage ? { usage } : {}) })}\n\n`
const toolCall = (id: string, path: string, promptTokens: number) => [
  frame([{ index: 0, delta: { role: "assistant", content: null, tool_calls: [{ index: 0, id, type: "function", function: { name: "read_file", arguments: "" } }] }, finish_reason: null }]),
  frame([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: JSON.stringify({ path }) } }] }, finish_reason: null }]),
  frame([{ index: 0, delta: {}, finish_reason: "tool_calls" }]),
  frame([], { prompt_tokens: promptTokens, completion_tokens: 20, total_tokens: promptTokens + 20 }),
  "data: [DONE]\n\n"
]
const answer = [
  frame([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]),
  frame([{ index: 0, delta: { content: "alpha and beta" }, finish_reason: null }]),
  frame([{ index: 0, delta: {}, finish_reason: "stop" }]),
  frame([], { prompt_tokens: 300, completion_tokens: 10, total_tokens: 310 }),
  "data: [DONE]\n\n"
]

/** Answers by the turn the request is at (how many tool results it carries); counts calls per turn. */
const startModel = (holdThirdTurnMs: number) =>
  new Promise<{ url: string; calls: Array<number>; close: () => void; holdThirdTurn: { ms: number } }>((resolve) => {
    const calls = [0, 0, 0]
    const holdThirdTurn = { ms: holdThirdTurnMs }
    const server = http.createServer((req, res) => {
      let raw = ""
      req.on("data", (d) => (raw += d))
      req.on("end", () => {
        const body = JSON.parse(raw) as { messages: Array<{ role: string }> }
        const turn = body.messages.filter((m) => m.role === "tool").length
        calls[turn] = (calls[turn] ?? 0) + 1
        const frames = turn === 0 ? toolCall("call_a", "a.txt", 100) : turn === 1 ? toolCall("call_b", "b.txt", 200) : answer
        const send = () => {
          if (res.destroyed) return
          res.writeHead(200, { "content-type": "text/event-stream" })
          for (const f of frames) res.write(f)
          res.end()
        }
        if (turn === 2 && holdThirdTurn.ms > 0) setTimeout(send, holdThirdTurn.ms)
        else send()
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
        calls,
        holdThirdTurn,
        close: () => {
          server.closeAllConnections()
          server.close()
        }
      })
    )
  })

const workflow = `schema_version: '1.0'
workflow:
  id: three-turns
  agents:
    - id: reader
      provider: openai
      model: gpt-4o-mini
      max_tokens: 100
      system_prompt: Read a.txt, then b.txt, then answer.
      tools: [read_file]
  nodes:
    - { id: read, type: agent, agent_ref: reader, prompt_template: What do a.txt and b.txt say? }
    - { id: out, type: output }
  edges:
    - { from: read, to: out }
`

/** Starts `relavium run --json` and SIGKILLs it as soon as it prints the agent's second checkpoint. */
const runUntilSecondTurn = (file: string, workspace: string, env: Record<string, string>) =>
  new Promise<{ runId: string; killed: boolean }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "run", file, "--json", "--workspace", workspace], {
      cwd: root,
      env: { ...process.env, ...env, NO_COLOR: "1" }
    })
    let buffer = ""
    let runId = ""
    let killed = false
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8")
      let newline = buffer.indexOf("\n")
      while (newline >= 0) {
        const event = JSON.parse(buffer.slice(0, newline)) as { runId: string; type: string; turn?: number }
        buffer = buffer.slice(newline + 1)
        newline = buffer.indexOf("\n")
        runId = event.runId
        if (event.type === "agent:turn_completed" && event.turn === 1 && !killed) {
          killed = true
          child.kill("SIGKILL")
        }
      }
    })
    child.on("error", reject)
    child.on("exit", () => resolve({ runId, killed }))
  })

describe("agent checkpoints", () => {
  it("an agent killed after its second turn continues from its third: earlier calls are not made or paid again", { timeout: 60_000 }, async () => {
    const model = await startModel(5_000)
    try {
      const dir = mkdtempSync(join(tmpdir(), "relavium-agent-crash-"))
      const workspace = join(dir, "ws")
      mkdirSync(workspace)
      writeFileSync(join(workspace, "a.txt"), "alpha")
      writeFileSync(join(workspace, "b.txt"), "beta")
      const file = join(dir, "three-turns.relavium.yaml")
      writeFileSync(file, workflow)
      const env = { RELAVIUM_DATA_DIR: join(dir, "data"), RELAVIUM_OPENAI_BASE_URL: model.url, RELAVIUM_OPENAI_API_KEY: KEY }

      const { runId, killed } = await runUntilSecondTurn(file, workspace, env)
      assert.isTrue(killed, "the run never reached its second checkpoint")
      assert.deepStrictEqual(model.calls.slice(0, 2), [1, 1])

      model.holdThirdTurn.ms = 0
      const resumed = await relaviumAsync(["resume", runId, "--json", "--workspace", workspace], { env })
      assert.strictEqual(resumed.status, 0, resumed.stderr)
      // Turns 1 and 2 were never asked again; turn 3 was answered once after the resume.
      assert.deepStrictEqual(model.calls.slice(0, 2), [1, 1])
      assert.isAtLeast(model.calls[2]!, 1)

      const logs = await relaviumAsync(["runs", "logs", runId, "--json"], { env })
      const log = ndjson(logs.stdout)
      const done = log.at(-1)!
      assert.strictEqual(done.type, "run:completed")
      assert.deepStrictEqual(done.outputs, { out: "alpha and beta" })
      // Each answered call is priced once: 100/200/300 prompt tokens at $0.15, 20/20/10 out at $0.60 per MTok.
      const costs = log.filter((e) => e.type === "cost:updated").map((e) => e.costMicrocents)
      assert.deepStrictEqual(costs, [100 * 15 + 20 * 60, 200 * 15 + 20 * 60, 300 * 15 + 10 * 60])
      assert.strictEqual(done.totalCostMicrocents, 100 * 15 + 20 * 60 + 200 * 15 + 20 * 60 + 300 * 15 + 10 * 60)
      const completed = log.find((e) => e.type === "node:completed" && e.nodeId === "read")!
      assert.deepStrictEqual(completed.tokensUsed, { input: 600, output: 50, model: "gpt-4o-mini" })
      // The tools of the checkpointed turns ran once.
      assert.strictEqual(log.filter((e) => e.type === "agent:tool_call").length, 2)
    } finally {
      model.close()
    }
  })
})

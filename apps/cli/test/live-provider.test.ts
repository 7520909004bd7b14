/**
 * `relavium run` against a local server speaking OpenAI's streaming wire format:
 * the example agent calls a tool through the daemon, costs are reported, a budget
 * stops a run, and the key never shows up in output or in the stored events.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startServer } from "../../../packages/llm/test/fixtures/server.js"
import { ndjson, relaviumAsync, root } from "./relavium.js"

const KEY = "sk-test-relavium-0123456789abcdef"

const chunk = (choices: ReadonlyArray<unknown>, usage?: unknown) =>
  `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1731000000, model: "gpt-4o-mini", choices, ...(usage ? { usage } : {}) })}\n\n`

const toolCallReply = [
  chunk([{ index: 0, delta: { role: "assistant", content: null, tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "read_file", arguments: "" } }] }, finish_reason: null }]),
  chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: "{\"path\":\"notes.txt\"}" } }] }, finish_reason: null }]),
  chunk([{ index: 0, delta: {}, finish_reason: "tool_calls" }]),
  chunk([], { prompt_tokens: 120, completion_tokens: 20, total_tokens: 140 }),
  "data: [DONE]\n\n"
]
const answerReply = [
  chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]),
  chunk([{ index: 0, delta: { content: "v0.2: offline cassette replay is done." }, finish_reason: null }]),
  chunk([{ index: 0, delta: {}, finish_reason: "stop" }]),
  chunk([], { prompt_tokens: 200, completion_tokens: 12, total_tokens: 212 }),
  "data: [DONE]\n\n"
]

describe("relavium run with a live provider (local OpenAI-wire server)", () => {
  it.live("runs the example agent with a tool call, reports cost, and keeps the key out of everything", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: toolCallReply }, { frames: answerReply }])
      const dataDir = mkdtempSync(join(tmpdir(), "relavium-live-"))
      const env = { RELAVIUM_OPENAI_BASE_URL: `${server.url}/v1`, RELAVIUM_OPENAI_API_KEY: KEY, RELAVIUM_DATA_DIR: dataDir }
      const result = yield* Effect.promise(() =>
        relaviumAsync(["run", "examples/openai-agent.relavium.yaml", "--workspace", "examples/workspace", "--json"], { env })
      )
      assert.strictEqual(result.status, 0, result.stderr)
      const events = ndjson(result.stdout)
      const call = events.find((e) => e.type === "agent:tool_call")!
      assert.deepStrictEqual(call.toolInput, { path: "notes.txt" })
      const toolResult = events.find((e) => e.type === "agent:tool_result")!
      assert.isTrue(toolResult.success as boolean)
      assert.include(toolResult.outputSummary as string, "Release checklist for v0.2")
      // gpt-4o-mini: $0.15 in / $0.60 out per MTok = 15,000,000 / 60,000,000 micro-cents.
      const costs = events.filter((e) => e.type === "cost:updated")
      assert.deepStrictEqual(costs.map((c) => c.costMicrocents), [120 * 15 + 20 * 60, 200 * 15 + 12 * 60])
      assert.deepStrictEqual(events.at(-1)!.outputs, { "release-notes": "v0.2: offline cassette replay is done." })
      // The key went to the server as a bearer token, and nowhere else.
      assert.strictEqual(server.requests[0]!.headers.authorization, `Bearer ${KEY}`)
      assert.notInclude(result.stdout + result.stderr, KEY)
      const db = readFileSync(join(dataDir, "relavium.db"))
      assert.strictEqual(db.indexOf(KEY), -1)
      const logs = yield* Effect.promise(() =>
        relaviumAsync(["runs", "logs", events[0]!.runId as string, "--json"], { env: { RELAVIUM_DATA_DIR: dataDir } })
      )
      assert.notInclude(logs.stdout, KEY)
    }).pipe(Effect.scoped))

  it.live("a budget stops the run before a call that could exceed it", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: toolCallReply }, { frames: answerReply }])
      const dir = mkdtempSync(join(tmpdir(), "relavium-budget-"))
      const file = join(dir, "tight.relavium.yaml")
      // 800 max tokens × $0.60/MTok = 48,000 micro-cents per call; the first call spends 3,000.
      writeFileSync(
        file,
        readFileSync(join(root, "examples/openai-agent.relavium.yaml"), "utf8").replace("max_cost_microcents: 2000000", "max_cost_microcents: 50000")
      )
      const env = { RELAVIUM_OPENAI_BASE_URL: `${server.url}/v1`, RELAVIUM_OPENAI_API_KEY: KEY, RELAVIUM_DATA_DIR: dir }
      const result = yield* Effect.promise(() =>
        relaviumAsync(["run", file, "--workspace", join(root, "examples/workspace"), "--json"], { env })
      )
      assert.strictEqual(result.status, 1)
      const done = ndjson(result.stdout).at(-1)!
      assert.strictEqual(done.type, "run:failed")
      assert.strictEqual((done.error as { code: string }).code, "budget_exceeded")
      assert.strictEqual(server.requests.length, 1)
    }).pipe(Effect.scoped))
})

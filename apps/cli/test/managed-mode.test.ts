/**
 * `relavium run --mode managed` (the built CLI as a child process) against a local fake of the
 * Relavium gateway's OpenAI-compatible API, with a second fake standing in for the provider the
 * user's own key would reach: the gateway sees the gateway token and never the user's key, the
 * provider is never called, the run records its mode; a gateway that is down fails the run with
 * the documented message, and a managed run without its settings never starts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startServer } from "../../../packages/llm/test/fixtures/server.js"
import { ndjson, relaviumAsync, tempFile } from "./relavium.js"

const USER_KEY = "sk-test-user-own-key-5b9e21c7d0"
const GATEWAY_TOKEN = "rlv_gw_cli_test_0f4c2a7719e3"

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

const runArgs = (dataDir: string, ...extra: ReadonlyArray<string>) => [
  "run",
  "examples/openai-agent.relavium.yaml",
  "--workspace",
  "examples/workspace",
  "--data-dir",
  dataDir,
  "--json",
  ...extra
]

describe("relavium run --mode managed", () => {
  it.live("sends every model call to the gateway with its token, never the user's key, and records the mode", () =>
    Effect.gen(function* () {
      const gateway = yield* startServer([{ frames: toolCallReply }, { frames: answerReply }])
      const provider = yield* startServer([])
      const dataDir = mkdtempSync(join(tmpdir(), "relavium-managed-"))
      const env = {
        RELAVIUM_OPENAI_BASE_URL: `${provider.url}/v1`,
        RELAVIUM_OPENAI_API_KEY: USER_KEY,
        RELAVIUM_GATEWAY_URL: gateway.url,
        RELAVIUM_GATEWAY_TOKEN: GATEWAY_TOKEN
      }
      const result = yield* Effect.promise(() => relaviumAsync(runArgs(dataDir, "--mode", "managed"), { env }))
      assert.strictEqual(result.status, 0, result.stderr)
      const events = ndjson(result.stdout)
      assert.strictEqual(events[0]!.type, "run:started")
      assert.strictEqual(events[0]!.executionMode, "managed")
      // Priced as in local mode: gpt-4o-mini at $0.15 in / $0.60 out per MTok.
      assert.deepStrictEqual(
        events.filter((e) => e.type === "cost:updated").map((c) => c.costMicrocents),
        [120 * 15 + 20 * 60, 200 * 15 + 12 * 60]
      )
      assert.deepStrictEqual(events.at(-1)!.outputs, { "release-notes": "v0.2: offline cassette replay is done." })
      assert.strictEqual(gateway.requests.length, 2)
      for (const sent of gateway.requests) {
        assert.strictEqual(sent.url, "/v1/chat/completions")
        assert.strictEqual(sent.headers.authorization, `Bearer ${GATEWAY_TOKEN}`)
        assert.strictEqual(sent.body.model, "openai/gpt-4o-mini")
        assert.deepStrictEqual(sent.body.stream_options, { include_usage: true })
        assert.notInclude(JSON.stringify({ headers: sent.headers, body: sent.body }), USER_KEY)
      }
      assert.strictEqual(provider.requests.length, 0)
      for (const secret of [USER_KEY, GATEWAY_TOKEN]) {
        assert.notInclude(result.stdout + result.stderr, secret)
        assert.strictEqual(readFileSync(join(dataDir, "relavium.db")).indexOf(secret), -1)
      }
    }).pipe(Effect.scoped))

  it.live("with the gateway down the run fails with the documented message, and no provider is called", () =>
    Effect.gen(function* () {
      const provider = yield* startServer([])
      const dataDir = mkdtempSync(join(tmpdir(), "relavium-managed-down-"))
      const env = {
        RELAVIUM_OPENAI_BASE_URL: `${provider.url}/v1`,
        RELAVIUM_OPENAI_API_KEY: USER_KEY,
        RELAVIUM_MODE: "managed",
        RELAVIUM_GATEWAY_URL: "http://127.0.0.1:1",
        RELAVIUM_GATEWAY_TOKEN: GATEWAY_TOKEN
      }
      const result = yield* Effect.promise(() => relaviumAsync(runArgs(dataDir), { env }))
      assert.strictEqual(result.status, 1, result.stderr)
      const events = ndjson(result.stdout)
      assert.strictEqual(events[0]!.executionMode, "managed")
      const last = events.at(-1)!
      assert.strictEqual(last.type, "run:failed")
      assert.include(JSON.stringify(last.error), "cannot reach the Relavium gateway at http://127.0.0.1:1")
      assert.strictEqual(provider.requests.length, 0)
      assert.notInclude(result.stdout + result.stderr, GATEWAY_TOKEN)
    }).pipe(Effect.scoped))

  it.live("managed without a gateway token or with a bad mode is refused before the run starts (exit 2)", () =>
    Effect.gen(function* () {
      const provider = yield* startServer([])
      const dataDir = mkdtempSync(join(tmpdir(), "relavium-managed-unset-"))
      const base = { RELAVIUM_OPENAI_BASE_URL: `${provider.url}/v1`, RELAVIUM_OPENAI_API_KEY: USER_KEY, RELAVIUM_GATEWAY_TOKEN: "" }
      const noToken = yield* Effect.promise(() =>
        relaviumAsync(runArgs(dataDir), { env: { ...base, RELAVIUM_MODE: "managed", RELAVIUM_GATEWAY_URL: "http://127.0.0.1:1" } })
      )
      assert.strictEqual(noToken.status, 2)
      assert.include(noToken.stderr, "managed mode needs RELAVIUM_GATEWAY_TOKEN")
      assert.strictEqual(noToken.stdout.trim(), "")
      const badMode = yield* Effect.promise(() => relaviumAsync(runArgs(dataDir), { env: { ...base, RELAVIUM_MODE: "turbo" } }))
      assert.strictEqual(badMode.status, 2)
      assert.include(badMode.stderr, "RELAVIUM_MODE must be local or managed, not 'turbo'")
      const noUrl = yield* Effect.promise(() =>
        relaviumAsync(runArgs(dataDir, "--mode", "managed"), { env: { ...base, RELAVIUM_GATEWAY_URL: "", RELAVIUM_GATEWAY_TOKEN: GATEWAY_TOKEN } })
      )
      assert.strictEqual(noUrl.status, 2)
      assert.include(noUrl.stderr, "managed mode needs RELAVIUM_GATEWAY_URL")
      assert.strictEqual(provider.requests.length, 0)
    }).pipe(Effect.scoped))

  it.live("a managed run continued after its gate stays managed: without the gateway settings it is refused, never run on the user's key", () =>
    Effect.gen(function* () {
      const gateway = yield* startServer([{ frames: answerReply }])
      const provider = yield* startServer([])
      const dataDir = mkdtempSync(join(tmpdir(), "relavium-managed-gate-"))
      const file = tempFile("managed-gate.relavium.yaml", gatedWorkflow)
      const userOnly = { RELAVIUM_OPENAI_BASE_URL: `${provider.url}/v1`, RELAVIUM_OPENAI_API_KEY: USER_KEY, RELAVIUM_MODE: "" }
      const managed = { ...userOnly, RELAVIUM_GATEWAY_URL: gateway.url, RELAVIUM_GATEWAY_TOKEN: GATEWAY_TOKEN }
      const paused = yield* Effect.promise(() =>
        relaviumAsync(["run", file, "--mode", "managed", "--data-dir", dataDir, "--json"], { env: managed })
      )
      assert.strictEqual(paused.status, 3, paused.stderr)
      const runId = ndjson(paused.stdout)[0]!.runId as string
      const refused = yield* Effect.promise(() =>
        relaviumAsync(["gate", runId, "--approve", "--data-dir", dataDir, "--json"], { env: userOnly })
      )
      assert.strictEqual(refused.status, 2)
      assert.include(refused.stderr, `run ${runId} was started in managed mode and continues in it: managed mode needs RELAVIUM_GATEWAY_URL`)
      const approved = yield* Effect.promise(() =>
        relaviumAsync(["gate", runId, "--approve", "--data-dir", dataDir, "--json"], { env: managed })
      )
      assert.strictEqual(approved.status, 0, approved.stderr)
      assert.deepStrictEqual(ndjson(approved.stdout).at(-1)!.outputs, { result: "v0.2: offline cassette replay is done." })
      assert.strictEqual(gateway.requests.length, 1)
      assert.strictEqual(gateway.requests[0]!.headers.authorization, `Bearer ${GATEWAY_TOKEN}`)
      assert.strictEqual(provider.requests.length, 0)
    }).pipe(Effect.scoped))
})

const gatedWorkflow = `
schema_version: '1.0'
workflow:
  id: managed-gate
  agents:
    - { id: writer, provider: openai, model: gpt-4o-mini, max_tokens: 100, system_prompt: You write release notes. }
  nodes:
    - { id: start, type: input }
    - { id: approve, type: human_gate, gate_type: approval, message_template: 'Write the notes?' }
    - { id: notes, type: agent, agent_ref: writer, prompt_template: Write the release notes. }
    - { id: result, type: output }
  edges:
    - { from: start, to: approve }
    - { from: approve, to: notes }
    - { from: notes, to: result }
`

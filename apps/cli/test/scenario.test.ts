/**
 * `relavium test` on scenario files, and `relavium run --record-cassette`, as a user runs them:
 * the shipped examples pass; a wrong expectation fails with a diff naming the output and both
 * values; a bad file stops everything with exit 2; a cassette that runs out names the node; the
 * JUnit report counts right; a recorded live run replays to the same node results.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startServer } from "../../../packages/llm/test/fixtures/server.js"
import { ndjson, relavium, relaviumAsync, root } from "./relavium.js"

const examples = join(root, "examples")

interface JsonReport {
  readonly total: number
  readonly passed: number
  readonly failed: number
  readonly scenarios: ReadonlyArray<{
    readonly file: string
    readonly name: string
    readonly passed: boolean
    readonly status: string
    readonly nodes: ReadonlyArray<{ readonly id: string; readonly status: string; readonly output?: unknown }>
    readonly failures: ReadonlyArray<{ readonly path: string; readonly message: string }>
  }>
}

/** A directory with copies of example workflows (and cassettes) and the given files. */
const project = (files: Record<string, string>, workflows: ReadonlyArray<string> = ["linear-chain", "code-review"]) => {
  const dir = mkdtempSync(join(tmpdir(), "relavium-scenarios-"))
  for (const name of workflows) copyFileSync(join(examples, `${name}.relavium.yaml`), join(dir, `${name}.relavium.yaml`))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

const wrongBranch = `schema_version: '1.0'
workflow: linear-chain.relavium.yaml
scenarios:
  - name: the branch name is right
    expect:
      ran: [slug]
  - name: the branch name is wrong
    expect:
      outputs_match:
        result: { branch: "fix/something-else" }
`

describe("relavium test", () => {
  it.live("passes every shipped example's scenarios with `relavium test examples/`", () =>
    Effect.gen(function* () {
      const result = yield* Effect.promise(() => relaviumAsync(["test", "examples/", "--json"]))
      assert.strictEqual(result.status, 0, result.stdout + result.stderr)
      const report = JSON.parse(result.stdout) as JsonReport
      const files = new Set(report.scenarios.map((s) => s.file))
      for (const name of ["approval-gate", "code-review", "conditional-triage", "linear-chain", "openai-agent", "parallel-merge", "tool-agent"]) {
        assert.isTrue(files.has(`examples/${name}.scenario.yaml`), `no scenario ran for ${name}`)
      }
      assert.strictEqual(report.failed, 0)
      assert.strictEqual(report.passed, report.total)
      // The recorded review really ran through both agents; the approving script skipped the changelog.
      const review = report.scenarios.filter((s) => s.file === "examples/code-review.scenario.yaml")
      assert.deepStrictEqual(review.map((s) => s.nodes.filter((n) => n.status === "skipped").map((n) => n.id)), [["approved"], ["changelog"]])
    }), 180_000)

  it("fails a wrong expectation with a diff naming the output and both values (exit 1)", () => {
    const dir = project({ "branch.scenario.yaml": wrongBranch })
    // No path: the scenario files under the current directory.
    const result = relavium(["test"], { cwd: dir })
    assert.strictEqual(result.status, 1, result.stderr)
    assert.match(result.stdout, /✓ the branch name is right/)
    assert.match(result.stdout, /✗ the branch name is wrong/)
    assert.include(result.stdout, "outputs.result.branch: differs")
    assert.include(result.stdout, `- expected: "fix/something-else"`)
    assert.include(result.stdout, `+ actual:   "fix/fix-the-off-by-one-in-sumarray"`)
    assert.include(result.stdout, "2 scenarios: 1 passed, 1 failed")
  }, 120_000)

  it("refuses a file with an unknown key at its line and column, and runs nothing (exit 2)", () => {
    const dir = project({
      "good.scenario.yaml": wrongBranch,
      "typo.scenario.yaml": `schema_version: '1.0'\nworkflow: linear-chain.relavium.yaml\nscenarios:\n  - name: typo\n    expect:\n      stauts: completed\n`,
      "missing.scenario.yaml": `schema_version: '1.0'\nworkflow: nowhere.relavium.yaml\nscenarios:\n  - name: lost\n`
    })
    const result = relavium(["test", dir])
    assert.strictEqual(result.status, 2)
    assert.strictEqual(result.stdout, "")
    assert.include(result.stderr, "nothing was run")
    assert.include(result.stderr, `typo.scenario.yaml:6:7 scenarios[0].expect.stauts: unknown key "stauts" — did you mean "status"?`)
    assert.match(result.stderr, /missing\.scenario\.yaml:2:11 workflow: cannot read the workflow .*nowhere\.relavium\.yaml/)
    assert.notInclude(result.stderr + result.stdout, "✓")
  }, 120_000)

  it("fails a scenario whose cassette runs out, naming the node", () => {
    const cassette = JSON.parse(readFileSync(join(examples, "cassettes/code-review.cassette.json"), "utf8")) as { calls: Array<unknown> }
    const dir = project({
      "short.cassette.json": JSON.stringify({ ...cassette, calls: cassette.calls.slice(0, 1) }),
      "review.scenario.yaml": `schema_version: '1.0'\nworkflow: code-review.relavium.yaml\nscenarios:\n  - name: one call recorded\n    cassette: short.cassette.json\n`
    })
    const result = relavium(["test", dir, "--json"])
    assert.strictEqual(result.status, 1, result.stderr)
    const scenario = (JSON.parse(result.stdout) as JsonReport).scenarios[0]!
    assert.isFalse(scenario.passed)
    assert.strictEqual(scenario.status, "failed")
    assert.include(scenario.failures[0]!.message, "cassette ran out of calls at node changelog")
    assert.deepStrictEqual(scenario.nodes.map((n) => `${n.id}:${n.status}`).slice(0, 3), ["start:completed", "review:completed", "needs-changes:completed"])
  }, 120_000)

  it("writes a JUnit report with the right counts", () => {
    const dir = project({ "branch.scenario.yaml": wrongBranch, "chain.scenario.yaml": wrongBranch.replace("is wrong", "is also wrong") })
    const xml = join(dir, "report.xml")
    const result = relavium(["test", dir, "--junit", xml])
    assert.strictEqual(result.status, 1, result.stderr)
    const text = readFileSync(xml, "utf8")
    assert.match(text, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="relavium test" tests="4" failures="2" errors="0"/)
    assert.strictEqual(text.match(/<testsuite /g)?.length, 2)
    assert.strictEqual(text.match(/<testcase /g)?.length, 4)
    assert.strictEqual(text.match(/<failure /g)?.length, 2)
    assert.include(text, `name="the branch name is wrong"`)
    assert.include(text, "&quot;fix/something-else&quot;")
    // Well formed: every element that opens closes, in order.
    const stack: Array<string> = []
    for (const [, close, name, selfClosing] of text.replace(/<\?xml[^>]*\?>/, "").matchAll(/<(\/?)([a-z]+)[^>]*?(\/?)>/g)) {
      if (selfClosing === "/") continue
      if (close === "/") assert.strictEqual(stack.pop(), name)
      else stack.push(name!)
    }
    assert.deepStrictEqual(stack, [])
  }, 120_000)
})

const KEY = "sk-test-relavium-record-0123456789"

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
  chunk([{ index: 0, delta: { content: "v0.2: the replay " }, finish_reason: null }]),
  chunk([{ index: 0, delta: { content: "is done." }, finish_reason: null }]),
  chunk([{ index: 0, delta: {}, finish_reason: "stop" }]),
  chunk([], { prompt_tokens: 200, completion_tokens: 12, total_tokens: 212 }),
  "data: [DONE]\n\n"
]

describe("relavium run --record-cassette", () => {
  it.live("records a live run without its key, and the scenario replaying it gives the same node results", () =>
    Effect.gen(function* () {
      const server = yield* startServer([{ frames: toolCallReply }, { frames: answerReply }])
      const dir = mkdtempSync(join(tmpdir(), "relavium-record-"))
      const cassette = join(dir, "notes.cassette.json")
      const env = { RELAVIUM_OPENAI_BASE_URL: `${server.url}/v1`, RELAVIUM_OPENAI_API_KEY: KEY, RELAVIUM_DATA_DIR: dir }
      const live = yield* Effect.promise(() =>
        relaviumAsync(
          ["run", "examples/openai-agent.relavium.yaml", "--workspace", "examples/workspace", "--json", "--record-cassette", cassette],
          { env }
        )
      )
      assert.strictEqual(live.status, 0, live.stderr)
      assert.strictEqual(server.requests[0]!.headers.authorization, `Bearer ${KEY}`)

      const recorded = readFileSync(cassette, "utf8")
      assert.notInclude(recorded, KEY)
      assert.notMatch(recorded, /authorization|bearer|api[-_]?key/i)
      const parsed = JSON.parse(recorded) as { provider: string; model: string; calls: ReadonlyArray<ReadonlyArray<{ type: string }>> }
      assert.strictEqual(parsed.provider, "openai")
      assert.strictEqual(parsed.calls.length, 2)
      assert.deepStrictEqual(parsed.calls.map((call) => call.at(-1)!.type), ["stop", "stop"])

      writeFileSync(
        join(dir, "notes.scenario.yaml"),
        [
          "schema_version: '1.0'",
          `workflow: ${JSON.stringify(join(examples, "openai-agent.relavium.yaml"))}`,
          `workspace: ${JSON.stringify(join(examples, "workspace"))}`,
          "scenarios:",
          "  - name: the recorded run",
          "    cassette: notes.cassette.json",
          ""
        ].join("\n")
      )
      const replay = relavium(["test", join(dir, "notes.scenario.yaml"), "--json"], { env: { RELAVIUM_DATA_DIR: dir } })
      assert.strictEqual(replay.status, 0, replay.stdout + replay.stderr)
      const scenario = (JSON.parse(replay.stdout) as JsonReport).scenarios[0]!
      assert.isTrue(scenario.passed)
      const liveNodes = ndjson(live.stdout)
        .filter((e) => e.type === "node:completed" || e.type === "node:failed" || e.type === "node:skipped")
        .map((e) => ({ id: e.nodeId as string, status: (e.type as string).slice("node:".length), ...(e.type === "node:completed" ? { output: e.output } : {}) }))
      assert.deepStrictEqual(scenario.nodes, liveNodes)
      assert.deepStrictEqual(liveNodes.at(-1), { id: "release-notes", status: "completed", output: "v0.2: the replay is done." })
      // The replay made no request: the server answered the live run's two calls only.
      assert.strictEqual(server.requests.length, 2)
      assert.isTrue(existsSync(cassette))
    }).pipe(Effect.scoped), 180_000)
})

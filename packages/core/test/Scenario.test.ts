/**
 * Scenario files: decoding with located problems, the checks against the workflow, the
 * expectation matcher, and the runner on the in-memory engine (scripted model per node, gates,
 * a script that runs out).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { Scenario } from "../src/index.js"
import { compile, engineLayer } from "./harness.js"

const workflow = `schema_version: '1.0'
workflow:
  id: review
  agents:
    - { id: a, provider: anthropic, model: claude-sonnet-4, system_prompt: "Write." }
  nodes:
    - { id: draft, type: agent, agent_ref: a, prompt_template: "Draft" }
    - { id: polish, type: agent, agent_ref: a, prompt_template: "Polish {{ run.outputs.draft }}" }
    - { id: ok, type: human_gate, gate_type: approval }
    - { id: result, type: output }
  edges:
    - { from: draft, to: polish }
    - { from: polish, to: ok }
    - { from: ok, to: result }
`

const scenarioFile = (scenarios: string) => `schema_version: '1.0'\nworkflow: review.relavium.yaml\nscenarios:\n${scenarios}`

const parse = (text: string) => Scenario.parseScenarioFile(text, "review.scenario.yaml")

describe("scenario files", () => {
  it("decode with their defaults and shorthands", () => {
    const parsed = parse(
      scenarioFile(`  - name: ok
    model: ["first", { node: polish, text: "second", usage: { input_tokens: 3, output_tokens: 4 } }]
    gates: { ok: approve }
    expect: { status: completed, ran: [draft] }
`)
    )
    assert.isTrue(Either.isRight(parsed))
    const scenario = Either.getOrThrow(parsed).scenarios[0]!
    assert.deepStrictEqual(scenario.model, ["first", { node: "polish", text: "second", usage: { input_tokens: 3, output_tokens: 4 } }])
    assert.strictEqual(scenario.gates?.["ok"], "approve")
  })

  it("report an unknown key at its line and column, with a suggestion", () => {
    const parsed = parse(scenarioFile(`  - name: typo\n    expect:\n      outptus: {}\n`))
    assert.isTrue(Either.isLeft(parsed))
    const message = Either.isLeft(parsed) ? parsed.left.message : ""
    assert.include(message, `review.scenario.yaml:6:7 scenarios[0].expect.outptus: unknown key "outptus"`)
    assert.include(message, `did you mean "outputs"`)
  })

  it("refuse a cassette beside model answers, and two scenarios of one name", () => {
    const parsed = parse(
      scenarioFile(`  - { name: a, cassette: x.json, model: ["hi"] }\n  - { name: a }\n`)
    )
    const message = Either.isLeft(parsed) ? parsed.left.message : ""
    assert.include(message, "review.scenario.yaml:4:")
    assert.include(message, "either a cassette or scripted model answers")
    assert.include(message, `review.scenario.yaml:5:13 scenarios[1].name: another scenario of this file is named "a"`)
  })

  it("name the nodes a workflow does not have, and gates that are not gates", () => {
    const text = scenarioFile(`  - name: a\n    gates: { draft: approve }\n    expect: { skipped: [nope] }\n`)
    const checked = Scenario.checkAgainstWorkflow(Either.getOrThrow(parse(text)), compile(workflow), text, "review.scenario.yaml")
    const message = Either.isLeft(checked) ? checked.left.message : ""
    assert.include(message, `review.scenario.yaml:5:14 scenarios[0].gates.draft: node "draft" is not a human_gate node`)
    assert.include(message, `scenarios[0].expect.skipped[0]: the workflow review has no node "nope"`)
  })
})

describe("the expectation matcher", () => {
  it("compares exactly or as a subset, naming the path of each difference", () => {
    const actual = { result: { count: 2, items: ["a", "b"], extra: true } }
    assert.deepStrictEqual(Scenario.compare("outputs", { result: { count: 2, items: ["a", "b"] } }, actual, true), [])
    assert.deepStrictEqual(Scenario.compare("outputs", { result: { count: 3, items: ["a", "b"] } }, actual, true), [
      { path: "outputs.result.count", message: "differs", expected: 3, actual: 2 }
    ])
    assert.deepStrictEqual(Scenario.compare("outputs", { result: { count: 2, items: ["a", "b"] } }, actual, false), [
      { path: "outputs.result.extra", message: "not expected", actual: true }
    ])
    assert.deepStrictEqual(Scenario.compare("outputs", { "my-node": 1 }, {}, false), [
      { path: `outputs["my-node"]`, message: "missing", expected: 1 }
    ])
  })

  it("writes a diff with both values", () => {
    assert.deepStrictEqual(Scenario.diffLines({ path: "outputs.result", message: "differs", expected: "x", actual: { a: 1 } }), [
      "outputs.result: differs",
      `  - expected: "x"`,
      `  + actual:   {"a":1}`
    ])
  })
})

const runWith = (scenarioText: string) =>
  Effect.gen(function* () {
    const document = Either.getOrThrow(parse(scenarioFile(scenarioText)))
    const scenario = document.scenarios[0]!
    const model = yield* Scenario.makeModel(scenario.model === undefined ? { _tag: "none" } : { _tag: "script", answers: scenario.model })
    return yield* Scenario.runScenario({ scenario, workflow: { id: "review", text: workflow, file: "review.relavium.yaml" }, ranOut: model.ranOut }).pipe(
      Effect.provide(engineLayer({ model: model.layer }))
    )
  })

describe("running a scenario", () => {
  it.live("answers each node from its own script, decides the gate and passes", () =>
    Effect.gen(function* () {
      const result = yield* runWith(`  - name: ok
    model: [{ node: polish, text: "polished" }, "drafted"]
    gates: { ok: approve }
    expect:
      outputs_match: { result: { decision: approved } }
      assert: ['run.outputs["draft"] === "drafted"', 'run.outputs["polish"] === "polished"']
`)
      assert.deepStrictEqual(result.mismatches, [])
      assert.deepStrictEqual(result.outcome.nodes.map((n) => `${n.id}:${n.status}`), ["draft:completed", "polish:completed", "ok:completed", "result:completed"])
    }))

  it.live("fails naming the node where the script ran out, and waits at a gate it does not decide", () =>
    Effect.gen(function* () {
      const ranOut = yield* runWith(`  - name: short\n    model: ["drafted"]\n`)
      assert.strictEqual(ranOut.outcome.status, "failed")
      assert.strictEqual(ranOut.mismatches[0]?.path, "model")
      assert.include(ranOut.mismatches[0]?.message, "ran out of answers at node polish")
      const waiting = yield* runWith(`  - name: wait\n    model: ["a", "b"]\n    expect: { status: waiting, ran: [polish] }\n`)
      assert.deepStrictEqual(waiting.mismatches, [])
    }))
})

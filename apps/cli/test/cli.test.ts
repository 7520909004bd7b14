import { assert, describe, it } from "@effect/vitest"
import { ndjson, relavium, tempFile } from "./relavium.js"

const codeReview = ["run", "examples/code-review.relavium.yaml", "--cassette", "examples/cassettes/code-review.cassette.json"]

describe("relavium run", () => {
  it("runs the README's agent example offline and prints progress and the result", () => {
    const result = relavium(codeReview)
    assert.strictEqual(result.status, 0, result.stderr)
    assert.include(result.stdout, "Running Code review with a changelog note")
    assert.include(result.stdout, "▸ review (agent)")
    assert.include(result.stdout, "off-by-one")
    assert.include(result.stdout, "– approved skipped (branch not taken)")
    assert.include(result.stdout, "Completed")
    assert.match(result.stdout, /result:\n/)
  })

  it("--json prints only NDJSON run events, numbered from 0, ending with run:completed", () => {
    const result = relavium([...codeReview, "--json"])
    assert.strictEqual(result.status, 0, result.stderr)
    const events = ndjson(result.stdout)
    events.forEach((event, i) => assert.strictEqual(event.sequenceNumber, i))
    assert.strictEqual(events[0]!.type, "run:started")
    assert.strictEqual(events.at(-1)!.type, "run:completed")
    assert.strictEqual(events.filter((e) => e.type.startsWith("run:c") || e.type === "run:failed").length, 1)
    // Streamed deltas are coalesced before they are committed: the token events of a node
    // concatenate to exactly the text it answered.
    const tokens = events.filter((e) => e.type === "agent:token")
    assert.isAbove(tokens.length, 0)
    const streamed = new Set(tokens.map((t) => t.nodeId))
    assert.deepStrictEqual([...streamed], ["review", "changelog"])
    for (const done of events.filter((e) => e.type === "node:completed" && streamed.has(e.nodeId))) {
      const text = tokens.filter((t) => t.nodeId === done.nodeId).map((t) => t.token).join("")
      assert.strictEqual(text, done.output)
    }
    assert.strictEqual(events.filter((e) => e.type === "cost:updated").length, 2)
  })

  it("streams a slow model's text as it arrives (one token event per chunk when chunks are 60 ms apart)", () => {
    const result = relavium([...codeReview, "--json", "--token-delay-ms", "60"])
    assert.strictEqual(result.status, 0, result.stderr)
    const events = ndjson(result.stdout)
    assert.isAbove(events.filter((e) => e.type === "agent:token").length, 10)
  })

  it("runs each example and exits as the contract says", () => {
    const linear = relavium(["run", "examples/linear-chain.relavium.yaml", "--json"])
    assert.strictEqual(linear.status, 0, linear.stderr)
    const done = ndjson(linear.stdout).at(-1)!
    assert.deepStrictEqual(done.outputs, {
      result: { title: "Fix the off-by-one in sumArray", branch: "fix/fix-the-off-by-one-in-sumarray" }
    })

    const triage = relavium(["run", "examples/conditional-triage.relavium.yaml", "--input", "severity=2", "--json"])
    assert.strictEqual(triage.status, 0, triage.stderr)
    assert.deepStrictEqual(ndjson(triage.stdout).at(-1)!.outputs, { decision: { action: "ticket", queue: "checkout", severity: 2 } })

    const parallel = relavium(["run", "examples/parallel-merge.relavium.yaml", "--json"])
    assert.strictEqual(parallel.status, 0, parallel.stderr)
    const merged = ndjson(parallel.stdout).at(-1)!.outputs as { result: { count: number } }
    assert.strictEqual(merged.result.count, 3)
  })

  it("exits 3 when the run pauses at a gate", () => {
    const result = relavium(["run", "examples/approval-gate.relavium.yaml"])
    assert.strictEqual(result.status, 3)
    assert.include(result.stdout, "⏸ approve-release approval gate Ship version 1.4.0?")
    assert.include(result.stdout, "Paused at 1 gate")
  })

  it("exits 1 when a node fails, with downstream nodes skipped and one terminal event", () => {
    const file = tempFile(
      "fail.relavium.yaml",
      `schema_version: '1.0'
workflow:
  id: failing
  nodes:
    - { id: a, type: transform, transform: 'null.x' }
    - { id: b, type: transform, transform: '1' }
  edges:
    - { from: a, to: b }
`
    )
    const result = relavium(["run", file, "--json"])
    assert.strictEqual(result.status, 1)
    const events = ndjson(result.stdout)
    assert.deepStrictEqual(
      events.map((e) => e.type),
      ["run:started", "node:started", "node:failed", "node:skipped", "run:failed"]
    )
    const human = relavium(["run", file])
    assert.strictEqual(human.status, 1)
    assert.include(human.stdout, "Failed at a: sandbox_error")
  })
})

describe("relavium: bad input is rejected before anything starts (exit 2)", () => {
  it("invalid YAML names the file, line and column", () => {
    const file = tempFile(
      "bad.relavium.yaml",
      `schema_version: '1.0'
workflow:
  id: bad
  nodes:
    - { id: a, type: transfrom, transform: '1' }
  edges: []
`
    )
    const result = relavium(["run", file])
    assert.strictEqual(result.status, 2)
    assert.strictEqual(result.stdout, "")
    assert.match(result.stderr, /bad\.relavium\.yaml:5:\d+ workflow\.nodes\[0\]\.type/)
  })

  it("--json reports errors as one JSON line on stderr", () => {
    const file = tempFile("unknown-key.relavium.yaml", "schema_version: '1.0'\nworkflow:\n  id: x\n  nodez: []\n  nodes: [{ id: a, type: input }]\n  edges: []\n")
    const result = relavium(["run", file, "--json"])
    assert.strictEqual(result.status, 2)
    assert.strictEqual(result.stdout, "")
    const error = JSON.parse(result.stderr.trim()) as { type: string; code: string; message: string }
    assert.strictEqual(error.type, "error")
    assert.strictEqual(error.code, "validation")
    assert.match(error.message, /nodez/)
  })

  it("an input of the wrong type, an unknown input and a bad value are named", () => {
    const wrongType = relavium(["run", "examples/conditional-triage.relavium.yaml", "--input", "severity=high"])
    assert.strictEqual(wrongType.status, 2)
    assert.match(wrongType.stderr, /inputs\.severity/)
    const unknown = relavium(["run", "examples/linear-chain.relavium.yaml", "--input", "titel=x"])
    assert.strictEqual(unknown.status, 2)
    assert.match(unknown.stderr, /inputs\.titel: unknown input/)
    const outOfRange = relavium(["run", "examples/conditional-triage.relavium.yaml", "--input", "severity=11"])
    assert.strictEqual(outOfRange.status, 2)
    assert.match(outOfRange.stderr, /inputs\.severity/)
  })

  it("a missing required input is named", () => {
    const file = tempFile(
      "required.relavium.yaml",
      "schema_version: '1.0'\nworkflow:\n  id: req\n  inputs: [{ name: who, type: string, required: true }]\n  nodes: [{ id: a, type: input }]\n  edges: []\n"
    )
    const result = relavium(["run", file])
    assert.strictEqual(result.status, 2)
    assert.match(result.stderr, /inputs\.who: missing required/)
  })

  it("an agent workflow without a model says how to get one; a bad cassette is located", () => {
    const noModel = relavium(["run", "examples/code-review.relavium.yaml"])
    assert.strictEqual(noModel.status, 2)
    assert.match(noModel.stderr, /no API key for anthropic: run `relavium keys set anthropic` or set RELAVIUM_ANTHROPIC_API_KEY/)
    const cassette = tempFile("bad.cassette.json", '{"schema_version":"1.0","provider":"x","calls":[[{"type":"text_delta"}]]}')
    const bad = relavium(["run", "examples/code-review.relavium.yaml", "--cassette", cassette])
    assert.strictEqual(bad.status, 2)
    assert.match(bad.stderr, /bad\.cassette\.json.*calls\[0\]\[0\]/)
  })

  it("a missing file and a bad flag exit 2", () => {
    const missing = relavium(["run", "nope.relavium.yaml"])
    assert.strictEqual(missing.status, 2)
    assert.match(missing.stderr, /nope\.relavium\.yaml/)
    const flag = relavium(["run", "examples/linear-chain.relavium.yaml", "--frobnicate"])
    assert.strictEqual(flag.status, 2)
  })
})

describe("relavium validate and --help", () => {
  it("validate reports a valid workflow and rejects an invalid one", () => {
    const ok = relavium(["validate", "examples/parallel-merge.relavium.yaml"])
    assert.strictEqual(ok.status, 0, ok.stderr)
    assert.include(ok.stdout, "valid")
    const json = relavium(["validate", "examples/parallel-merge.relavium.yaml", "--json"])
    assert.deepInclude(JSON.parse(json.stdout), { valid: true, workflow: "parallel-merge" })
    const file = tempFile("cycle.relavium.yaml", "schema_version: '1.0'\nworkflow:\n  id: c\n  nodes: [{ id: a, type: input }, { id: b, type: output }]\n  edges: [{ from: a, to: b }, { from: b, to: a }]\n")
    const bad = relavium(["validate", file])
    assert.strictEqual(bad.status, 2)
    assert.match(bad.stderr, /cycle/i)
  })

  it("--help explains each command", () => {
    const top = relavium(["--help"])
    assert.strictEqual(top.status, 0)
    assert.include(top.stdout, "run")
    assert.include(top.stdout, "validate")
    const run = relavium(["run", "--help"])
    assert.strictEqual(run.status, 0)
    assert.include(run.stdout, "--input")
    assert.include(run.stdout, "--json")
    assert.include(run.stdout, "--cassette")
  })
})

/**
 * `relavium run` starts the QuickJS worker with the local layers when the workflow has an expression
 * that needs it: the run uses it, and a run that stops before any expression (here, an invalid input
 * given on the command line) still exits at once with its own error, with no unhandled rejection.
 */
import { assert, describe, it } from "@effect/vitest"
import { ndjson, relavium, tempFile } from "./relavium.js"

const workflow = tempFile(
  "warm.relavium.yaml",
  `schema_version: '1.0'
workflow:
  id: warm-up
  inputs:
    - { name: n, type: number, default: 20 }
  nodes:
    - { id: start, type: input }
    - { id: double, type: transform, transform: 'inputs.n * 2 + 2' }
    - { id: result, type: output }
  edges:
    - { from: start, to: double }
    - { from: double, to: result }
`
)

describe("relavium run with an expression for the QuickJS worker", () => {
  it("evaluates it", () => {
    const run = relavium(["run", workflow, "--json"])
    assert.strictEqual(run.status, 0, run.stderr)
    const events = ndjson(run.stdout)
    assert.deepStrictEqual(events.at(-1)?.["outputs"], { result: 42 })
  })

  it("exits with the input's error when the run never starts", () => {
    const run = relavium(["run", workflow, "--input", "n=abc", "--json"])
    assert.strictEqual(run.status, 2, run.stderr)
    assert.include(run.stdout + run.stderr, '"code":"validation"')
    assert.notInclude(run.stdout + run.stderr, "nhandled")
  })
})

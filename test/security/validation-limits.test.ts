/**
 * Issue 14, finding 9: `relavium validate` on a list nested ~800 levels deep reported "Maximum
 * call stack size exceeded", and a 70,000-character tool name was accepted. Workflow files now
 * have a nesting limit and every string a length limit, each reported at file:line:column with a
 * message a person can act on — checked here in the domain loader and through the built CLI.
 */
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { Limits, WorkflowYaml } from "@relavium/domain"
import { relavium, tempFile } from "../../apps/cli/test/relavium.js"

const { MAX_DESCRIPTION_LENGTH, MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_NESTING_DEPTH } = Limits

/** A valid workflow whose `metadata.x` holds `value` (written on line 4) and one agent with `tools`. */
const workflow = (options: { metadata?: string; tool?: string; nodeId?: string; description?: string } = {}) =>
  `schema_version: '1.0'
workflow:
  id: limits
  metadata: { x: ${options.metadata ?? "1"} }
  description: ${JSON.stringify(options.description ?? "checks limits")}
  agents:
    - { id: writer, model: m, provider: anthropic, system_prompt: hi, tools: [${options.tool ?? "read_file"}] }
  nodes:
    - { id: start, type: input }
    - { id: ${options.nodeId ?? "write"}, type: agent, agent_ref: writer }
  edges:
    - { from: start, to: ${options.nodeId ?? "write"} }
`

const flowNest = (levels: number) => "[".repeat(levels) + "]".repeat(levels)

const load = (text: string) => WorkflowYaml.parseWorkflow(text, "flow.yaml")

const rejection = (text: string) => {
  const result = load(text)
  if (Either.isRight(result)) return assert.fail("expected the workflow to be rejected")
  return result.left
}

const tooDeep = new RegExp(`nested more than ${MAX_NESTING_DEPTH} levels deep`)

describe("nesting depth", () => {
  it("refuses a list nested 800 levels deep with a located message, not a stack overflow", () => {
    const error = rejection(workflow({ metadata: flowNest(800) }))
    assert.notMatch(error.message, /call stack|Maximum/i)
    assert.lengthOf(error.issues, 1)
    const issue = error.issues[0]!
    assert.match(issue.message, tooDeep)
    assert.strictEqual(issue.line, 4)
    // `  metadata: { x: ` is 17 characters; the scan stops inside the run of brackets.
    assert.isAbove(issue.column, 17)
    assert.isBelow(issue.column, 17 + 2 * MAX_NESTING_DEPTH + 3)
  })

  it("refuses a 2 MiB file of brackets promptly", () => {
    const levels = Math.floor((WorkflowYaml.MAX_WORKFLOW_BYTES - 400) / 2)
    const started = Date.now()
    const error = rejection(workflow({ metadata: flowNest(levels) }))
    assert.isBelow(Date.now() - started, 2_000)
    assert.match(error.issues[0]!.message, tooDeep)
  })

  it("refuses deep block nesting (compact sequences and indented mappings)", () => {
    const compact = `schema_version: '1.0'\nworkflow:\n  metadata:\n    x: ${"- ".repeat(800)}a\n`
    assert.match(rejection(compact).issues[0]!.message, tooDeep)
    const indented = `schema_version: '1.0'\nworkflow:\n  metadata:\n` +
      Array.from({ length: 300 }, (_, i) => `${" ".repeat(4 + i)}k${i}:`).join("\n") + " end\n"
    const issue = rejection(indented).issues[0]!
    assert.match(issue.message, tooDeep)
    assert.isAbove(issue.line, 3)
  })

  it("points at the first value past the limit with its document path", () => {
    // Root (1) → workflow (2) → metadata (3) → x's outer list (4): level 65 is the 62nd bracket.
    const error = rejection(workflow({ metadata: flowNest(70) }))
    const issue = error.issues[0]!
    assert.match(issue.message, tooDeep)
    assert.strictEqual(issue.path, `workflow.metadata.x${"[0]".repeat(MAX_NESTING_DEPTH - 3)}`)
    assert.strictEqual(issue.line, 4)
    assert.strictEqual(issue.column, 18 + MAX_NESTING_DEPTH - 3)
  })

  it("accepts nesting up to the limit", () => {
    // Root, workflow, metadata, then lists up to level 64.
    assert.isTrue(Either.isRight(load(workflow({ metadata: flowNest(MAX_NESTING_DEPTH - 3) }))))
    assert.isTrue(Either.isLeft(load(workflow({ metadata: flowNest(MAX_NESTING_DEPTH - 2) }))))
    const examples = Array.from({ length: 20 }, (_, i) => `${"  ".repeat(i + 2)}k${i}:`).join("\n") + " end\n"
    assert.isTrue(Either.isRight(load(`${workflow()}`.replace("  metadata: { x: 1 }\n", `  metadata:\n${examples}`))))
  })
})

describe("string lengths", () => {
  it("refuses a 70,000-character tool name, and says so briefly", () => {
    const error = rejection(workflow({ tool: "x".repeat(70_000) }))
    assert.lengthOf(error.issues, 1)
    const issue = error.issues[0]!
    assert.strictEqual(issue.path, "workflow.agents[0].tools[0]")
    assert.strictEqual(issue.line, 7)
    assert.match(issue.message, new RegExp(`must be at most ${MAX_NAME_LENGTH} characters \\(this one has 70000\\)`))
    assert.isBelow(error.message.length, 300)
  })

  it("limits ids to 128 characters", () => {
    const longest = "a".repeat(MAX_ID_LENGTH)
    assert.isTrue(Either.isRight(load(workflow({ nodeId: longest }))))
    const error = rejection(workflow({ nodeId: `${longest}b` }))
    const issue = error.issues.find((i) => i.path === "workflow.nodes[1].id")
    assert.isDefined(issue, error.message)
    assert.match(issue!.message, /must be at most 128 characters \(this one has 129\)/)
    assert.isTrue(error.issues.some((i) => i.path === "workflow.edges[0].to"))
  })

  it("limits descriptions", () => {
    assert.isTrue(Either.isRight(load(workflow({ description: "d".repeat(MAX_DESCRIPTION_LENGTH) }))))
    const issue = rejection(workflow({ description: "d".repeat(MAX_DESCRIPTION_LENGTH + 1) })).issues[0]!
    assert.strictEqual(issue.path, "workflow.description")
    assert.match(issue.message, /must be at most 10000 characters/)
  })
})

describe("relavium validate", () => {
  it("exits 2 with a located nesting message for a deeply nested file", () => {
    const file = tempFile("deep.relavium.yaml", workflow({ metadata: flowNest(800) }))
    const result = relavium(["validate", file])
    assert.strictEqual(result.status, 2, result.stderr)
    assert.match(result.stderr, new RegExp(`deep\\.relavium\\.yaml:4:\\d+ .*nested more than ${MAX_NESTING_DEPTH} levels`))
    assert.notMatch(result.stderr, /call stack/i)
  })

  it("exits 2 for a 70,000-character tool name, naming where it is", () => {
    const file = tempFile("long.relavium.yaml", workflow({ tool: "x".repeat(70_000) }))
    const result = relavium(["validate", file])
    assert.strictEqual(result.status, 2, result.stderr)
    assert.match(result.stderr, /long\.relavium\.yaml:7:\d+ workflow\.agents\[0\]\.tools\[0\]: must be at most 128 characters/)
    assert.isBelow(result.stderr.length, 400)
    assert.strictEqual(result.stdout, "")
  })

  it("still validates an honest workflow", () => {
    const file = tempFile("ok.relavium.yaml", workflow())
    const result = relavium(["validate", file])
    assert.strictEqual(result.status, 0, result.stderr)
    assert.match(result.stdout, /valid — workflow limits, 2 nodes/)
  })
})

describe("messages stay short", () => {
  it("shortens long keys in the path of a too-deep value", () => {
    const key = "k".repeat(5_000)
    const nested = Array.from({ length: 70 }, () => `{ ${key}: `).join("") + "1" + " }".repeat(70)
    const error = rejection(workflow({ metadata: nested }))
    assert.match(error.issues[0]!.message, tooDeep)
    assert.isBelow(error.message.length, 4_000)
    assert.include(error.issues[0]!.path, `${"k".repeat(37)}...`)
  })
})

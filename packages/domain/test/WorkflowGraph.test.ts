import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import type { PlanEdge, WorkflowPlan } from "../src/Plan.js"
import type { WorkflowDocument } from "../src/Workflow.js"
import { compileWorkflow, expressionReads, formatPath } from "../src/WorkflowGraph.js"
import { parseWorkflow } from "../src/WorkflowYaml.js"

const plan = (text: string): WorkflowPlan => {
  const result = parseWorkflow(text, "flow.yaml")
  if (Either.isLeft(result)) assert.fail(`unexpected load errors:\n${result.left.message}`)
  return result.right
}

const show = (edge: PlanEdge) =>
  `${edge.from}${edge.handle === undefined ? "" : `:${edge.handle}`} -${edge.kind}-> ${edge.to}${
    edge.condition === undefined ? "" : ` if ${edge.condition}`
  }`
const incoming = (p: WorkflowPlan, id: string) => (p.incoming.get(id) ?? []).map(show)

const CODE_REVIEW = `schema_version: '1.0'
workflow:
  id: code-review
  inputs:
    - name: file_path
      type: file_path
      required: true
    - name: reviewer_email
      type: string
      default: team@example.com
  context:
    - key: code
      value: '{{ inputs.file_path | read_file }}'
  agents:
    - id: scanner
      model: claude-sonnet-4-6
      provider: anthropic
      system_prompt: You review code.
  nodes:
    - id: input
      type: input
    - id: fan-out
      type: parallel
      parallel_of: [security, style]
    - id: security
      type: agent
      agent_ref: scanner
      prompt_template: "Review {{ ctx.code }}"
    - id: style
      type: agent
      agent_ref: scanner
      prompt_template: "Style of {{ ctx.code }}"
    - id: merge
      type: merge
      merge_strategy: object_merge
    - id: gate
      type: condition
      expression: 'run.outputs["security"].score < 7'
      branches:
        - when: true
          target_node: approval
        - when: false
          target_node: report
    - id: approval
      type: human_gate
      gate_type: approval
      assignee: '{{ inputs.reviewer_email }}'
      message_template: 'Score {{ run.outputs["security"].score }}'
    - id: report
      type: agent
      agent_ref: scanner
      prompt_template: >-
        {{ run.outputs["security"] | json }}
        {{ run.outputs["approval"].decision | default("n/a") }}
    - id: output
      type: output
  edges:
    - from: input
      to: fan-out
    - from: fan-out
      to: security
    - from: fan-out
      to: style
    - from: security
      to: merge
    - from: style
      to: merge
    - from: merge
      to: gate
    - from: gate:true
      to: approval
    - from: approval
      to: report
    - from: report
      to: output
`

describe("WorkflowGraph.compileWorkflow", () => {
  it("orders the upstream-style code review workflow", () => {
    const p = plan(CODE_REVIEW)
    assert.deepStrictEqual(p.order, [
      "input",
      "fan-out",
      "security",
      "style",
      "merge",
      "gate",
      "approval",
      "report",
      "output"
    ])
    assert.strictEqual(p.spec.id, "code-review")
    assert.deepStrictEqual([...p.agents.keys()], ["scanner"])
    assert.strictEqual(p.nodes.get("gate")?.type, "condition")
  })

  it("adds flow edges for branches (with handles), parallel_of and authored edges, without duplicates", () => {
    const p = plan(CODE_REVIEW)
    assert.deepStrictEqual(incoming(p, "security"), ["fan-out -flow-> security"])
    assert.deepStrictEqual(incoming(p, "merge"), ["security -flow-> merge", "style -flow-> merge"])
    assert.deepStrictEqual(incoming(p, "approval"), ["gate:true -flow-> approval", "security -data-> approval"])
    assert.deepStrictEqual(incoming(p, "report"), [
      "gate:false -flow-> report",
      "approval -flow-> report",
      "security -data-> report"
    ])
    assert.deepStrictEqual((p.outgoing.get("gate") ?? []).map(show), ["gate:true -flow-> approval", "gate:false -flow-> report"])
    assert.deepStrictEqual(incoming(p, "input"), [])
    assert.deepStrictEqual(p.outgoing.get("output"), [])
  })

  it("records which outputs each node reads", () => {
    const p = plan(CODE_REVIEW)
    assert.deepStrictEqual(Object.fromEntries(p.outputRefs), {
      security: [],
      style: [],
      gate: ["security"],
      approval: ["security"],
      report: ["security", "approval"]
    })
  })

  const small = (nodes: string, edges = "[]") =>
    `schema_version: '1.0'
workflow:
  id: small
  agents:
    - { id: writer, model: m, provider: anthropic, system_prompt: "Prior: {{ run.outputs['first'] }}" }
  nodes:
${nodes}
  edges: ${edges}
`

  it("adds data edges from an agent's system_prompt to every node using it", () => {
    const p = plan(small(`    - { id: first, type: input }\n    - { id: second, type: agent, agent_ref: writer }`))
    assert.deepStrictEqual(incoming(p, "second"), ["first -data-> second"])
    assert.deepStrictEqual(p.outputRefs.get("second"), ["first"])
  })

  it("marks expressions that read run.outputs dynamically as reading all outputs", () => {
    const p = plan(
      small(
        `    - { id: first, type: input }\n    - { id: t, type: transform, transform: "Object.keys(run.outputs).length" }\n    - { id: m, type: merge, merge_strategy: custom, merge_fn: "branches.concat(run.outputs.first)" }`
      )
    )
    assert.strictEqual(p.outputRefs.get("t"), "all")
    assert.deepStrictEqual(p.outputRefs.get("m"), ["first"])
    assert.deepStrictEqual(incoming(p, "m"), ["first -data-> m"])
  })

  it("keeps edge conditions and makes what they read settle before the edge's source completes", () => {
    const p = plan(
      small(
        `    - { id: first, type: input }\n    - { id: a, type: transform, transform: "1" }\n    - { id: b, type: transform, transform: "2" }`,
        `[{ from: a, to: b, condition: "run.outputs['first'] !== null && run.outputs['a'] === 1" }]`
      )
    )
    assert.deepStrictEqual(incoming(p, "b"), [`a -flow-> b if run.outputs['first'] !== null && run.outputs['a'] === 1`])
    // The condition is evaluated when `a` completes: `first` must settle before `a`; `a` reading itself adds nothing.
    assert.deepStrictEqual(incoming(p, "a"), ["first -data-> a"])
    assert.deepStrictEqual(p.outputRefs.get("a"), ["first"])
  })

  it("puts a handled edge's condition on its branch edge", () => {
    const p = plan(
      small(
        `    - { id: first, type: input }\n    - id: c\n      type: condition\n      expression: "1"\n      branches: [{ when: 1, target_node: one }]\n      default: other\n    - { id: one, type: output }\n    - { id: other, type: output }`,
        `[{ from: "c:1", to: one, condition: "true" }, { from: "c:default", to: other }]`
      )
    )
    assert.deepStrictEqual(incoming(p, "one"), ["c:1 -flow-> one if true"])
    assert.deepStrictEqual(incoming(p, "other"), ["c:default -flow-> other"])
  })

  it("breaks ties by authored order", () => {
    const p = plan(
      small(
        `    - { id: first, type: input }\n    - { id: z, type: transform, transform: "1" }\n    - { id: y, type: transform, transform: "1" }\n    - { id: x, type: transform, transform: "1" }`,
        `[{ from: x, to: z }]`
      )
    )
    assert.deepStrictEqual(p.order, ["first", "y", "x", "z"])
  })

  it("returns a WorkflowGraphError with document paths when called directly", () => {
    const doc: WorkflowDocument = {
      schema_version: "1.0",
      workflow: {
        id: "direct",
        nodes: [
          { id: "a", type: "transform", transform: "run.outputs['b']" },
          { id: "b", type: "transform", transform: "run.outputs['a']" }
        ],
        edges: [{ from: "a", to: "ghost" }]
      }
    }
    const result = compileWorkflow(doc)
    if (Either.isRight(result)) assert.fail("expected graph errors")
    assert.strictEqual(result.left._tag, "WorkflowGraphError")
    assert.strictEqual(
      result.left.message,
      [
        `workflow.edges[0].to: no node "ghost" in workflow.nodes`,
        // The closing edge b → a exists because a's transform reads b.
        `workflow.nodes[0].transform: the workflow has a cycle: a → b → a`
      ].join("\n")
    )
  })
})

describe("WorkflowGraph.expressionReads", () => {
  it("finds bracket, quoted and dotted reads", () => {
    const reads = expressionReads(`run.outputs["a"].x + run.outputs['b-c'] + run.outputs.d + run.outputs?.["e"]`)
    assert.deepStrictEqual(reads.nodes.map((r) => r.nodeId), ["a", "b-c", "d", "e"])
    assert.isFalse(reads.dynamic)
  })

  it("ignores text inside strings and comments", () => {
    const reads = expressionReads(`ctx.mode === "run.outputs['x']" /* run */ // run.outputs.y`)
    assert.deepStrictEqual(reads, { nodes: [], dynamic: false })
  })

  it("finds reads inside template literal substitutions", () => {
    assert.deepStrictEqual(expressionReads("`score: ${run.outputs['a'].score}`").nodes.map((r) => r.nodeId), ["a"])
  })

  it("reports any other use of run.outputs as dynamic", () => {
    for (const expression of ["run.outputs[id]", "Object.values(run.outputs)", "JSON.stringify(run)", "const { a } = run.outputs"]) {
      assert.isTrue(expressionReads(expression).dynamic, expression)
    }
    assert.isFalse(expressionReads("inputs.run + rerun.outputs").dynamic)
  })
})

describe("WorkflowGraph.formatPath", () => {
  it("writes indices in brackets and odd keys quoted", () => {
    assert.strictEqual(formatPath(["workflow", "nodes", 2, "branches", 0, "when"]), "workflow.nodes[2].branches[0].when")
    assert.strictEqual(formatPath(["workflow", "<<"]), `workflow["<<"]`)
  })
})

import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { type LoadIssue, MAX_WORKFLOW_BYTES, parseWorkflow, type WorkflowLoadError } from "../src/WorkflowYaml.js"

/** A document whose body starts on line 4, below `id: demo` on line 3. */
const wf = (body: string) => `schema_version: '1.0'\nworkflow:\n  id: demo\n${body}`

const AGENT = `  agents:
    - id: writer
      model: claude-sonnet-4-6
      provider: anthropic
      system_prompt: You write.
`

const failure = (text: string): WorkflowLoadError => {
  const result = parseWorkflow(text, "flow.yaml")
  if (Either.isRight(result)) assert.fail("expected the workflow to be rejected")
  return result.left
}

/** The one issue the text produces, checked for location and message. */
const expectIssue = (
  text: string,
  expected: { line: number; column: number; path: string; message: string | RegExp }
): LoadIssue => {
  const error = failure(text)
  const issue = error.issues.find((i) => i.line === expected.line && i.column === expected.column)
  assert.isDefined(issue, `no issue at ${expected.line}:${expected.column}; got:\n${error.message}`)
  assert.strictEqual(issue!.path, expected.path)
  if (typeof expected.message === "string") assert.strictEqual(issue!.message, expected.message)
  else assert.match(issue!.message, expected.message)
  return issue!
}

describe("WorkflowYaml.parseWorkflow — YAML level", () => {
  it("reports a syntax error with its position", () => {
    const error = failure(`schema_version: '1.0'\nworkflow:\n  id: [a, b\n  nodes: x\n`)
    assert.strictEqual(error._tag, "WorkflowLoadError")
    assert.strictEqual(error.file, "flow.yaml")
    assert.strictEqual(error.issues[0]!.line, 4)
    assert.strictEqual(error.issues[0]!.column, 3)
    assert.match(error.message, /^flow\.yaml:4:3 YAML syntax error: Flow sequence/)
  })

  it("rejects a duplicate key at the second occurrence", () => {
    expectIssue(wf(`  nodes: []\n  id: other\n`), {
      line: 5,
      column: 3,
      path: "workflow.id",
      message: `duplicate key "id" — each key may appear once in a mapping`
    })
  })

  it("rejects anchors and aliases", () => {
    const text = `schema_version: '1.0'\nworkflow:\n  id: &name demo\n  name: *name\n`
    expectIssue(text, {
      line: 3,
      column: 7,
      path: "workflow.id",
      message: "anchors (&name) are not supported — write the value out in full"
    })
    expectIssue(text, {
      line: 4,
      column: 9,
      path: "workflow.name",
      message: "aliases (*name) are not supported — write the value out in full"
    })
  })

  it("rejects merge keys", () => {
    expectIssue(`schema_version: '1.0'\nworkflow:\n  <<: { id: demo }\n`, {
      line: 3,
      column: 3,
      path: `workflow["<<"]`,
      message: "merge keys (<<) are not supported — write the keys out in full"
    })
  })

  it("rejects custom tags", () => {
    expectIssue(wf(`  name: !shout hello\n`), {
      line: 4,
      column: 9,
      path: "workflow.name",
      message: "the tag !shout is not supported — YAML tags are not part of the workflow format"
    })
  })

  it("reads YAML 1.2 core: yes is a string, not a boolean", () => {
    expectIssue(
      wf(`  inputs:\n    - name: topic\n      type: string\n      required: yes\n  nodes: [{ id: a, type: input }]\n  edges: []\n`),
      { line: 7, column: 17, path: "workflow.inputs[0].required", message: `expected true or false, got the string "yes"` }
    )
  })

  it("rejects files over 2 MiB before parsing", () => {
    const error = failure(wf(`  description: "${"x".repeat(MAX_WORKFLOW_BYTES)}"\n`))
    assert.strictEqual(error.message, "flow.yaml:1:1 the file is larger than 2 MiB; workflow files must be smaller")
  })

  it("counts bytes, not characters, against the limit", () => {
    const text = wf(`  description: "${"é".repeat(MAX_WORKFLOW_BYTES / 2 + 10)}"\n`)
    assert.isBelow(text.length, MAX_WORKFLOW_BYTES)
    assert.match(failure(text).message, /larger than 2 MiB/)
  })

  it("explains an empty file", () => {
    assert.strictEqual(
      failure("\n  \n").message,
      "flow.yaml:1:1 the file is empty — a workflow needs schema_version: '1.0' and workflow:"
    )
  })
})

describe("WorkflowYaml.parseWorkflow — schema", () => {
  it("suggests quoting an unquoted schema_version", () => {
    expectIssue(`schema_version: 1.0\nworkflow:\n  id: demo\n  nodes: [{ id: a, type: input }]\n  edges: []\n`, {
      line: 1,
      column: 17,
      path: "schema_version",
      message: `expected the string "1.0", got the number 1 — quote it: '1.0'`
    })
  })

  it("rejects an unknown key at the root, naming the allowed keys", () => {
    expectIssue(wf(`  nodes: [{ id: a, type: input }]\n  edges: []\nworkflows: {}\n`), {
      line: 6,
      column: 1,
      path: "workflows",
      message: `unknown key "workflows" — did you mean "workflow"? (the top level allows: schema_version, workflow)`
    })
  })

  it("rejects an unknown key in workflow", () => {
    expectIssue(wf(`  nodes: [{ id: a, type: input }]\n  edges: []\n  memory: none\n`), {
      line: 6,
      column: 3,
      path: "workflow.memory",
      message:
        `unknown key "memory" (workflow allows: id, version, name, description, tags, metadata, trigger, inputs, context, agents, tools, budget, timeout_ms, max_parallel, nodes, edges)`
    })
  })

  it("rejects an unknown key on a node, pointing at the key", () => {
    expectIssue(
      wf(`${AGENT}  nodes:\n    - id: a\n      type: agent\n      agent_ref: writer\n      promt_template: hi\n  edges: []\n`),
      {
        line: 13,
        column: 7,
        path: "workflow.nodes[0].promt_template",
        message: /^unknown key "promt_template" — did you mean "prompt_template"\? \(an agent node allows: id, type, agent_ref, system_prompt_append, prompt_template,/
      }
    )
  })

  it("rejects an unknown key on an agent", () => {
    expectIssue(
      wf(`${AGENT}      temprature: 0.2\n  nodes: [{ id: a, type: agent, agent_ref: writer }]\n  edges: []\n`),
      {
        line: 9,
        column: 7,
        path: "workflow.agents[0].temprature",
        message: /^unknown key "temprature" — did you mean "temperature"\? \(an agent allows: id, name, description, model,/
      }
    )
  })

  it("rejects an unknown key on an edge", () => {
    expectIssue(
      wf(`  nodes:\n    - { id: a, type: input }\n    - { id: b, type: output }\n  edges:\n    - from: a\n      to: b\n      when: x\n`),
      {
        line: 10,
        column: 7,
        path: "workflow.edges[0].when",
        message: `unknown key "when" (an edge allows: from, to, label, condition)`
      }
    )
  })

  it("names the node types for an unknown node type", () => {
    const issue = expectIssue(wf(`  nodes:\n    - id: a\n      type: agnet\n  edges: []\n`), {
      line: 6,
      column: 13,
      path: "workflow.nodes[0].type",
      message:
        `unknown node type "agnet" (expected one of input, agent, human_gate, condition, transform, parallel, merge, output) — did you mean "agent"?`
    })
    assert.strictEqual(
      failure(wf(`  nodes:\n    - id: a\n      type: agnet\n  edges: []\n`)).message,
      `flow.yaml:6:13 workflow.nodes[0].type: ${issue.message}`
    )
  })

  it("reports a missing required field at the mapping that lacks it", () => {
    expectIssue(wf(`${AGENT}  nodes:\n    - id: a\n      type: agent\n  edges: []\n`), {
      line: 10,
      column: 7,
      path: "workflow.nodes[0]",
      message: `missing required key "agent_ref" for an agent node`
    })
    expectIssue(wf(`  nodes: [{ id: a, type: input }]\n`), {
      line: 3,
      column: 3,
      path: "workflow",
      message: `missing required key "edges"`
    })
  })

  it("reports a value of the wrong type", () => {
    expectIssue(wf(`  timeout_ms: soon\n  nodes: [{ id: a, type: input }]\n  edges: []\n`), {
      line: 4,
      column: 15,
      path: "workflow.timeout_ms",
      message: `expected a number, got the string "soon"`
    })
    expectIssue(wf(`  nodes: [{ id: a, type: input }]\n  edges: none\n`), {
      line: 5,
      column: 10,
      path: "workflow.edges",
      message: `expected a list, got the string "none"`
    })
  })

  it("reports a branch when of the wrong type deep in the tree", () => {
    expectIssue(
      wf(
        `  nodes:\n    - id: c\n      type: condition\n      expression: "true"\n      branches:\n        - when: { a: 1 }\n          target_node: c\n  edges: []\n`
      ),
      {
        line: 9,
        column: 17,
        path: "workflow.nodes[0].branches[0].when",
        message: "expected true or false, a string or a number, got a mapping"
      }
    )
  })

  it("rejects an id that is not kebab-case", () => {
    expectIssue(`schema_version: '1.0'\nworkflow:\n  id: My_Flow\n  nodes: [{ id: a, type: input }]\n  edges: []\n`, {
      line: 3,
      column: 7,
      path: "workflow.id",
      message: `must be kebab-case (lowercase letters and digits separated by single dashes), got "My_Flow"`
    })
  })

  it("rejects an invalid enum value with a suggestion", () => {
    expectIssue(wf(`  inputs:\n    - { name: topic, type: strng }\n  nodes: [{ id: a, type: input }]\n  edges: []\n`), {
      line: 5,
      column: 28,
      path: "workflow.inputs[0].type",
      message:
        `invalid value "strng" (expected one of string, number, boolean, file_path, code_diff, secret) — did you mean "string"?`
    })
  })

  it("rejects an empty node list", () => {
    expectIssue(wf(`  nodes: []\n  edges: []\n`), {
      line: 4,
      column: 10,
      path: "workflow.nodes",
      message: "must list at least 1 item"
    })
  })

  it("reports every schema problem at once, in file order", () => {
    const error = failure(wf(`  timeout_ms: 0\n  nodes:\n    - { id: A, type: input }\n  edges: [{ from: A, to: b, x: 1 }]\n`))
    assert.deepStrictEqual(
      error.issues.map((i) => `${i.line}:${i.column} ${i.path}`),
      [
        "4:15 workflow.timeout_ms",
        "6:13 workflow.nodes[0].id",
        "7:19 workflow.edges[0].from",
        "7:29 workflow.edges[0].x"
      ]
    )
  })

  it("rejects $ref agents with a clear message", () => {
    expectIssue(wf(`  agents:\n    - $ref: ./writer.agent.yaml\n  nodes: [{ id: a, type: agent, agent_ref: writer }]\n  edges: []\n`), {
      line: 5,
      column: 7,
      path: "workflow.agents[0].$ref",
      message:
        `"$ref" agents are not supported here — inline the agent (id, model, provider, system_prompt) in workflow.agents`
    })
    // Mixed with agent keys the schema would complain about both shapes; the message stays the same.
    const error = failure(
      wf(`  agents:\n    - $ref: ./writer.agent.yaml\n      id: writer\n  nodes: [{ id: a, type: input }]\n  edges: []\n`)
    )
    assert.strictEqual(error.issues.length, 1)
    assert.match(error.message, /^flow\.yaml:5:7 workflow\.agents\[0\]\.\$ref: "\$ref" agents are not supported here/)
  })

  it("applies the save_to rules from the schema", () => {
    expectIssue(wf(`  nodes:\n    - id: out\n      type: output\n      save_to: ../out/{{ run.id }}.png\n  edges: []\n`), {
      line: 7,
      column: 16,
      path: "workflow.nodes[0].save_to",
      message: `save_to must not contain a '..' segment, got "../out/{{ run.id }}.png"`
    })
  })
})

describe("WorkflowYaml.parseWorkflow — semantic checks", () => {
  it("rejects duplicate node ids at the second one", () => {
    expectIssue(wf(`  nodes:\n    - id: a\n      type: input\n    - id: a\n      type: output\n  edges: []\n`), {
      line: 7,
      column: 11,
      path: "workflow.nodes[1].id",
      message: `duplicate node id "a" (already used by workflow.nodes[0])`
    })
  })

  it("rejects duplicate input names, context keys and agent ids", () => {
    const error = failure(
      wf(
        `  inputs:\n    - { name: x, type: string }\n    - { name: x, type: number }\n  context:\n    - { key: k, value: a }\n    - { key: k, value: b }\n${AGENT}    - id: writer\n      model: m\n      provider: openai\n      system_prompt: s\n  nodes: [{ id: a, type: input }]\n  edges: []\n`
      )
    )
    assert.deepStrictEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`), [
      `6:15 workflow.inputs[1].name: duplicate input name "x" (already used by workflow.inputs[0])`,
      `9:14 workflow.context[1].key: duplicate context key "k" (already used by workflow.context[0])`,
      `15:11 workflow.agents[1].id: duplicate agent id "writer" (already used by workflow.agents[0])`
    ])
  })

  it("rejects an agent_ref naming no agent", () => {
    expectIssue(wf(`${AGENT}  nodes:\n    - id: a\n      type: agent\n      agent_ref: writr\n  edges: []\n`), {
      line: 12,
      column: 18,
      path: "workflow.nodes[0].agent_ref",
      message: `no agent "writr" in workflow.agents — did you mean "writer"? (declared: writer)`
    })
  })

  it("rejects merge_strategy custom without merge_fn", () => {
    expectIssue(wf(`  nodes:\n    - id: m\n      type: merge\n      merge_strategy: custom\n  edges: []\n`), {
      line: 7,
      column: 23,
      path: "workflow.nodes[0].merge_strategy",
      message: `merge_strategy "custom" needs a merge_fn expression`
    })
  })

  it("rejects a secret input in a prompt, pointing at the reference", () => {
    expectIssue(
      wf(
        `  inputs:\n    - { name: api_key, type: secret }\n${AGENT}  nodes:\n    - id: a\n      type: agent\n      agent_ref: writer\n      prompt_template: |\n        Use the key\n        now {{ inputs.api_key }} please\n  edges: []\n`
      ),
      {
        line: 17,
        column: 13,
        path: "workflow.nodes[0].prompt_template",
        message:
          `secret input "api_key" cannot be interpolated into text sent to a model — secrets may only feed tool credentials`
      }
    )
  })

  it("rejects secrets in system prompts, gate messages and context values", () => {
    const error = failure(
      wf(
        `  inputs:\n    - { name: key, type: secret }\n  context:\n    - { key: auth, value: "Bearer {{ inputs.key }}" }\n  agents:\n    - id: writer\n      model: m\n      provider: anthropic\n      system_prompt: "key={{inputs.key}}"\n  nodes:\n    - { id: a, type: agent, agent_ref: writer, system_prompt_append: "{{ inputs.key }}" }\n    - { id: g, type: human_gate, gate_type: approval, message_template: "k {{ inputs.key }}" }\n  edges: []\n`
      )
    )
    assert.deepStrictEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.path}`), [
      "7:35 workflow.context[0].value",
      "12:27 workflow.agents[0].system_prompt",
      "14:71 workflow.nodes[0].system_prompt_append",
      "15:76 workflow.nodes[1].message_template"
    ])
    assert.match(error.issues[0]!.message, /secret input "key" cannot be read by a context value/)
    assert.match(error.issues[3]!.message, /sent to a person/)
  })

  it("locates template syntax errors inside the string", () => {
    expectIssue(
      wf(`${AGENT}  nodes:\n    - id: a\n      type: agent\n      agent_ref: writer\n      prompt_template: "Hi {{ inputs.name | upper }}"\n  edges: []\n`),
      {
        line: 13,
        column: 45,
        path: "workflow.nodes[0].prompt_template",
        message: `template error: unknown filter "upper" (expected one of json, length, default, read_file)`
      }
    )
    expectIssue(
      wf(`${AGENT}  nodes:\n    - id: a\n      type: agent\n      agent_ref: writer\n      prompt_template: "Hi {{ inputs.name"\n  edges: []\n`),
      {
        line: 13,
        column: 28,
        path: "workflow.nodes[0].prompt_template",
        message: `template error: "{{" is never closed with "}}"`
      }
    )
  })

  it("rejects template references to unknown nodes, inputs and context keys", () => {
    const error = failure(
      wf(
        `  inputs:\n    - { name: topic, type: string }\n${AGENT}  nodes:\n    - id: a\n      type: agent\n      agent_ref: writer\n      prompt_template: >-\n        {{ inputs.topc }} {{ ctx.tone }}\n        {{ run.outputs["summary"].text }}\n    - { id: summarize, type: input }\n  edges: []\n`
      )
    )
    assert.deepStrictEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.message}`), [
      `16:9 {{ inputs.topc }}: no input "topc" in workflow.inputs — did you mean "topic"?`,
      `16:27 {{ ctx.tone }}: this workflow declares no context`,
      `17:9 {{ run.outputs["summary"].text }}: no node "summary" in workflow.nodes`
    ])
  })

  it("rejects run.outputs in a context value and context read before it is declared", () => {
    const error = failure(
      wf(
        `  context:\n    - key: first\n      value: "{{ ctx.second }}"\n    - key: second\n      value: "{{ run.outputs['a'] }}"\n  nodes: [{ id: a, type: input }]\n  edges: []\n`
      )
    )
    assert.deepStrictEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`), [
      `6:15 workflow.context[0].value: {{ ctx.second }} is declared later (workflow.context[1]) — context entries are resolved in order`,
      `8:15 workflow.context[1].value: a context value cannot read run.outputs — context is resolved before any node runs`
    ])
  })

  it("rejects input validation rules that do not fit the type, and bad defaults", () => {
    const error = failure(
      wf(
        `  inputs:\n    - name: n\n      type: number\n      validation: { min: 5, max: 1, max_length: 3 }\n    - name: s\n      type: string\n      default: 42\n      validation: { format: phone }\n  nodes: [{ id: a, type: input }]\n  edges: []\n`
      )
    )
    assert.deepStrictEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`), [
      `7:21 workflow.inputs[0].validation.min: min (5) is greater than max (1)`,
      `7:37 workflow.inputs[0].validation.max_length: "max_length" does not apply to a number input (allowed: min, max, enum)`,
      `11:21 workflow.inputs[1].validation.format: unknown format "phone" (expected one of email, url, uri)`
    ])
    expectIssue(
      wf(`  inputs:\n    - name: n\n      type: number\n      default: "ten"\n  nodes: [{ id: a, type: input }]\n  edges: []\n`),
      { line: 7, column: 16, path: "workflow.inputs[0].default", message: `default must be a number, got "ten"` }
    )
  })
})

describe("WorkflowYaml.parseWorkflow — graph errors", () => {
  const nodes = `${AGENT}  nodes:
    - { id: a, type: agent, agent_ref: writer }
    - { id: b, type: agent, agent_ref: writer }
    - { id: c, type: agent, agent_ref: writer }
    - id: check
      type: condition
      expression: run.outputs["a"].ok
      branches:
        - { when: true, target_node: b }
      default: c
`
  // nodes end on line 18; edges start on line 19

  it("names the nodes of a cycle and points at the edge closing it", () => {
    expectIssue(wf(`${nodes}  edges:\n    - { from: b, to: a }\n    - { from: a, to: check }\n`), {
      line: 20,
      column: 7,
      path: "workflow.edges[0]",
      message: "the workflow has a cycle: a → check → b → a"
    })
  })

  it("finds cycles made by template references", () => {
    expectIssue(
      wf(
        `${AGENT}  nodes:\n    - { id: a, type: agent, agent_ref: writer, prompt_template: "{{ run.outputs['b'] }}" }\n    - { id: b, type: agent, agent_ref: writer, prompt_template: "{{ run.outputs['a'] }}" }\n  edges: []\n`
      ),
      {
        line: 10,
        column: 66,
        path: "workflow.nodes[0].prompt_template",
        message: "the workflow has a cycle: a → b → a"
      }
    )
  })

  it("rejects an edge to or from an unknown node", () => {
    const error = failure(wf(`${nodes}  edges:\n    - { from: a, to: d }\n    - from: x\n      to: a\n`))
    assert.deepStrictEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`), [
      `20:22 workflow.edges[0].to: no node "d" in workflow.nodes`,
      `21:13 workflow.edges[1].from: no node "x" in workflow.nodes`
    ])
  })

  it("rejects a plain edge out of a condition node", () => {
    expectIssue(wf(`${nodes}  edges:\n    - from: check\n      to: b\n`), {
      line: 20,
      column: 13,
      path: "workflow.edges[0].from",
      message:
        `a plain edge cannot leave condition node "check" — write from: "check:<when>" (one of "check:true", "check:default"), or rely on its branches`
    })
  })

  it("rejects an unknown handle and a handle on a non-condition node", () => {
    const error = failure(wf(`${nodes}  edges:\n    - { from: "check:false", to: c }\n    - { from: "a:true", to: b }\n`))
    assert.deepStrictEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.message}`), [
      `20:15 condition node "check" has no branch "false" (handles: "check:true", "check:default")`,
      `21:15 only condition nodes have output handles; "a" is an agent node — write from: "a"`
    ])
  })

  it("rejects a handled edge that disagrees with its branch target", () => {
    expectIssue(wf(`${nodes}  edges:\n    - { from: "check:true", to: c }\n`), {
      line: 20,
      column: 33,
      path: "workflow.edges[0].to",
      message: `branch "true" of condition "check" goes to "b", not "c" — change the branch's target_node or this edge`
    })
  })

  it("rejects unknown branch, default and parallel_of targets", () => {
    const error = failure(
      wf(
        `  nodes:\n    - id: check\n      type: condition\n      expression: "1"\n      branches: [{ when: 1, target_node: one }]\n      default: other\n    - { id: fan, type: parallel, parallel_of: [check, ghost] }\n  edges: []\n`
      )
    )
    assert.deepStrictEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`), [
      `8:42 workflow.nodes[0].branches[0].target_node: no node "one" in workflow.nodes`,
      `9:16 workflow.nodes[0].default: no node "other" in workflow.nodes`,
      `10:55 workflow.nodes[1].parallel_of[1]: no node "ghost" in workflow.nodes`
    ])
  })

  it("rejects an edge out of a parallel node to a node outside parallel_of", () => {
    expectIssue(
      wf(`  nodes:\n    - { id: fan, type: parallel, parallel_of: [one] }\n    - { id: one, type: input }\n    - { id: two, type: input }\n  edges:\n    - { from: fan, to: two }\n`),
      {
        line: 9,
        column: 24,
        path: "workflow.edges[0].to",
        message: `"two" is not in parallel_of of parallel node "fan" (one) — add it there`
      }
    )
  })

  it("rejects duplicate edges and duplicate branch values", () => {
    const error = failure(
      wf(
        `  nodes:\n    - id: c\n      type: condition\n      expression: "1"\n      branches:\n        - { when: "a", target_node: x }\n        - { when: "a", target_node: y }\n    - { id: x, type: input }\n    - { id: y, type: input }\n    - { id: z, type: input }\n  edges:\n    - { from: x, to: z }\n    - { from: x, to: z }\n`
      )
    )
    assert.deepStrictEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`), [
      `10:19 workflow.nodes[0].branches[1].when: duplicate branch when: "a" (already used by branches[0]) — this branch can never be taken`,
      `16:7 workflow.edges[1]: duplicate edge from "x" to "z" (same as workflow.edges[0])`
    ])
  })

  it("rejects an expression reading an unknown node", () => {
    expectIssue(
      wf(`  nodes:\n    - id: t\n      type: transform\n      transform: 'run.outputs["nope"] ?? 1'\n  edges: []\n`),
      {
        line: 7,
        column: 19,
        path: "workflow.nodes[0].transform",
        message: `run.outputs["nope"]: no node "nope" in workflow.nodes`
      }
    )
  })
})

/**
 * The names a workflow declares: nodes, inputs, context keys and agents, each unique; `$ref`
 * agents refused; input validation rules and defaults checked. Later checks look names up here.
 */
import * as Inputs from "../Inputs.js"
import { didYouMean } from "../internal/text.js"
import type { Agent, WorkflowInput, WorkflowNode, WorkflowSpec } from "../Workflow.js"
import { type Issues, W } from "./Issues.js"

export interface Declarations {
  readonly spec: WorkflowSpec
  readonly inputs: ReadonlyArray<WorkflowInput>
  readonly inputsByName: ReadonlyMap<string, WorkflowInput>
  readonly context: WorkflowSpec["context"] & {}
  /** The first index of each context key. */
  readonly contextIndex: ReadonlyMap<string, number>
  readonly agentEntries: WorkflowSpec["agents"] & {}
  /** Inline agents by id (the first of duplicates), and where each is authored. */
  readonly agents: Map<string, Agent>
  readonly agentIndex: ReadonlyMap<string, number>
  /** Nodes by id (the first of duplicates), and where each is authored. */
  readonly nodes: Map<string, WorkflowNode>
  readonly authoredIndex: ReadonlyMap<string, number>
  readonly nodeIds: ReadonlyArray<string>
  /** The message for a reference to a node that does not exist. */
  readonly unknownNode: (id: string) => string
}

export const declarations = (spec: WorkflowSpec, issues: Issues): Declarations => {
  const { report, reportAtKey } = issues
  // --- unique names --------------------------------------------------------
  const reportDuplicates = (
    collection: string,
    field: string,
    label: string,
    items: ReadonlyArray<{ readonly name: string | undefined }>
  ) => {
    const seen = new Map<string, number>()
    items.forEach(({ name }, i) => {
      if (name === undefined) return
      const first = seen.get(name)
      if (first === undefined) seen.set(name, i)
      else report(W(collection, i, field), `duplicate ${label} "${name}" (already used by workflow.${collection}[${first}])`)
    })
  }
  const inputs = spec.inputs ?? []
  const context = spec.context ?? []
  const agentEntries = spec.agents ?? []
  reportDuplicates("nodes", "id", "node id", spec.nodes.map((n) => ({ name: n.id })))
  reportDuplicates("inputs", "name", "input name", inputs.map((i) => ({ name: i.name })))
  reportDuplicates("context", "key", "context key", context.map((c) => ({ name: c.key })))
  reportDuplicates("agents", "id", "agent id", agentEntries.map((a) => ({ name: "id" in a ? a.id : undefined })))

  // --- agents --------------------------------------------------------------
  const agents = new Map<string, Agent>()
  const agentIndex = new Map<string, number>()
  agentEntries.forEach((entry, i) => {
    if ("$ref" in entry) {
      reportAtKey(
        W("agents", i, "$ref"),
        `"$ref" agents are not supported here — inline the agent (id, model, provider, system_prompt) in workflow.agents`
      )
    } else if (!agents.has(entry.id)) {
      agents.set(entry.id, entry)
      agentIndex.set(entry.id, i)
    }
  })

  // --- inputs --------------------------------------------------------------
  const inputsByName = new Map(inputs.map((input) => [input.name, input]))
  inputs.forEach((input, i) => {
    const problems = Inputs.validationRuleProblems(input)
    for (const problem of problems) reportAtKey(W("inputs", i, "validation", problem.key), problem.message)
    if (problems.length === 0 && input.default !== undefined) {
      for (const message of Inputs.valueProblems(input, input.default)) {
        report(W("inputs", i, "default"), `default ${message}`)
      }
    }
  })

  // --- nodes ---------------------------------------------------------------
  const nodes = new Map<string, WorkflowNode>()
  const authoredIndex = new Map<string, number>()
  spec.nodes.forEach((node, i) => {
    if (!nodes.has(node.id)) {
      nodes.set(node.id, node)
      authoredIndex.set(node.id, i)
    }
  })
  const nodeIds = [...nodes.keys()]
  const unknownNode = (id: string) => `no node "${id}" in workflow.nodes${didYouMean(id, nodeIds)}`

  const contextIndex = new Map<string, number>()
  context.forEach((entry, i) => {
    if (!contextIndex.has(entry.key)) contextIndex.set(entry.key, i)
  })
  return { spec, inputs, inputsByName, context, contextIndex, agentEntries, agents, agentIndex, nodes, authoredIndex, nodeIds, unknownNode }
}

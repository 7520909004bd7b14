/**
 * Data edges and output reads: a node that reads another node's output (a template's
 * `{{ run.outputs.x }}`, an expression's `run.outputs["x"]`) depends on it; an edge condition's
 * reads must settle before the edge's source runs. Reads of unknown nodes are reported.
 */
import type { PlanEdge } from "../Plan.js"
import { expressionReads } from "../ExpressionReads.js"
import type { IssuePath, PathSegment } from "../WorkflowGraph.js"
import type { Declarations } from "./Declarations.js"
import type { EdgeSet } from "./FlowEdges.js"
import { type Issues, W } from "./Issues.js"
import type { CheckTemplate, NodeRead } from "./Templates.js"

/** Adds the data edges to `edges`; returns what each node reads ("all" for dynamic reads). */
export const dataEdges = (
  declared: Declarations,
  issues: Issues,
  edges: EdgeSet,
  checkTemplate: CheckTemplate,
  agentPromptReads: ReadonlyMap<string, ReadonlyArray<NodeRead>>
): Map<string, Array<string> | "all"> => {
  const { report } = issues
  const { spec, nodes, agents, agentIndex, authoredIndex, unknownNode } = declared
  const traced = edges.traced
  const addEdge = (edge: PlanEdge, origin: IssuePath, offset?: number) => edges.add(edge, origin, offset)
  // A flow edge already orders its ends, so a data edge alongside it would add nothing.
  // Built on the first read: most nodes read no other node's output.
  let flowPairs: Set<string> | undefined
  const outputRefs = new Map<string, Array<string> | "all">()
  const noteReads = (
    nodeId: string,
    reads: ReadonlyArray<{ readonly nodeId: string; readonly offset: number }>,
    origin: IssuePath,
    dynamic = false
  ) => {
    const current = outputRefs.get(nodeId) ?? []
    const next = dynamic || current === "all" ? "all" : current
    for (const read of reads) {
      if (next !== "all" && !next.includes(read.nodeId)) next.push(read.nodeId)
      flowPairs ??= new Set(traced.map((t) => `${t.edge.from}\u0000${t.edge.to}`))
      if (!flowPairs.has(`${read.nodeId}\u0000${nodeId}`)) addEdge({ from: read.nodeId, to: nodeId, kind: "data" }, origin, read.offset)
    }
    outputRefs.set(nodeId, next)
  }
  const checkExpression = (nodeId: string, path: IssuePath, expression: string) => {
    const reads = expressionReads(expression)
    const known = reads.nodes.filter((read) => {
      if (nodes.has(read.nodeId)) return true
      report(path, `run.outputs["${read.nodeId}"]: ${unknownNode(read.nodeId)}`, read.offset)
      return false
    })
    noteReads(nodeId, known, path, reads.dynamic)
  }

  spec.nodes.forEach((node, i) => {
    if (authoredIndex.get(node.id) !== i) return
    const at = (...rest: Array<PathSegment>) => W("nodes", i, ...rest)
    switch (node.type) {
      case "agent": {
        const prompt = agents.get(node.agent_ref)
        const reads = [...(prompt === undefined ? [] : agentPromptReads.get(node.agent_ref) ?? [])]
        const promptOrigin = W("agents", agentIndex.get(node.agent_ref) ?? 0, "system_prompt")
        noteReads(node.id, reads, promptOrigin)
        if (node.system_prompt_append !== undefined) {
          noteReads(node.id, checkTemplate(at("system_prompt_append"), node.system_prompt_append, "model-text"), at("system_prompt_append"))
        }
        if (node.prompt_template !== undefined) {
          noteReads(node.id, checkTemplate(at("prompt_template"), node.prompt_template, "model-text"), at("prompt_template"))
        }
        break
      }
      case "human_gate":
        if (node.assignee !== undefined) {
          noteReads(node.id, checkTemplate(at("assignee"), node.assignee, "human-text"), at("assignee"))
        }
        if (node.message_template !== undefined) {
          noteReads(node.id, checkTemplate(at("message_template"), node.message_template, "human-text"), at("message_template"))
        }
        break
      case "condition":
        checkExpression(node.id, at("expression"), node.expression)
        break
      case "transform":
        checkExpression(node.id, at("transform"), node.transform)
        break
      case "merge":
        if (node.merge_fn !== undefined) checkExpression(node.id, at("merge_fn"), node.merge_fn)
        break
      default:
        break
    }
  })
  // An edge condition is evaluated when `from` completes (the engine records which targets it
  // chose), so what it reads, other than `from`'s own output, must settle before `from` runs.
  spec.edges.forEach((edge, j) => {
    const fromId = edge.from.split(":")[0] ?? edge.from
    if (edge.condition === undefined || !nodes.has(fromId)) return
    const path = W("edges", j, "condition")
    const reads = expressionReads(edge.condition)
    const known = reads.nodes.filter((read) => {
      if (!nodes.has(read.nodeId)) {
        report(path, `run.outputs["${read.nodeId}"]: ${unknownNode(read.nodeId)}`, read.offset)
        return false
      }
      return read.nodeId !== fromId
    })
    noteReads(fromId, known, path, reads.dynamic)
  })
  return outputRefs
}

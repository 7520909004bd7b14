/**
 * Turns a decoded workflow document into the `WorkflowPlan` the orchestrator executes, after the
 * checks a schema cannot express: unique names, agent references, input validation rules, template
 * syntax and what templates may read (no secrets in model or human text, no node outputs before
 * any node runs), and the graph itself (edge endpoints, condition handles, parallel membership,
 * cycles). Every issue carries a path into the document, so the YAML loader can point at the line.
 */
import { Either, Schema } from "effect"
import { dataEdges } from "./compile/DataEdges.js"
import { declarations } from "./compile/Declarations.js"
import { EdgeSet, flowEdges } from "./compile/FlowEdges.js"
import { Issues, W } from "./compile/Issues.js"
import { checkDeclaredTemplates, templateChecker } from "./compile/Templates.js"
import type { PlanEdge, WorkflowPlan } from "./Plan.js"
import type { WorkflowDocument } from "./Workflow.js"
import { findCycle, kahn } from "./GraphOrder.js"

export { type ExpressionReads, expressionReads } from "./ExpressionReads.js"

export type PathSegment = string | number
export type IssuePath = ReadonlyArray<PathSegment>

export interface GraphIssue {
  /** From the document root, e.g. `["workflow", "edges", 3, "to"]`. */
  readonly path: IssuePath
  readonly message: string
  /** For a problem inside a string (a template or expression): the offset in that string. */
  readonly offset?: number | undefined
  /** Point at the mapping key named by the last path segment rather than at its value. */
  readonly at?: "key" | "value" | undefined
}

export class WorkflowGraphError extends Schema.TaggedError<WorkflowGraphError>()("WorkflowGraphError", {
  issues: Schema.Array(Schema.Struct({
    path: Schema.Array(Schema.Union(Schema.String, Schema.Number)),
    message: Schema.String,
    offset: Schema.optional(Schema.Number),
    at: Schema.optional(Schema.Literal("key", "value"))
  }))
}) {
  override get message(): string {
    return this.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`).join("\n")
  }
}

/** `["workflow", "nodes", 2, "when"]` → `workflow.nodes[2].when`. */
export const formatPath = (path: IssuePath): string =>
  path.reduce<string>(
    (out, segment) =>
      typeof segment === "number"
        ? `${out}[${segment}]`
        : /^[A-Za-z0-9_$-]+$/.test(segment)
        ? out === "" ? segment : `${out}.${segment}`
        : `${out}[${JSON.stringify(segment)}]`,
    ""
  )

// ---------------------------------------------------------------------------
// Compiling: each concept's checks are in compile/ (names, templates, flow edges, data edges)
// ---------------------------------------------------------------------------

export const compileWorkflow = (doc: WorkflowDocument): Either.Either<WorkflowPlan, WorkflowGraphError> => {
  const spec = doc.workflow
  const issues = new Issues()
  const declared = declarations(spec, issues)
  const checkTemplate = templateChecker(declared, issues)
  const agentPromptReads = checkDeclaredTemplates(declared, checkTemplate)
  const edges = new EdgeSet(declared.nodes)
  flowEdges(declared, issues, edges)
  const outputRefs = dataEdges(declared, issues, edges, checkTemplate, agentPromptReads)
  const { nodes, nodeIds, authoredIndex, agents } = declared
  const { report } = issues
  const traced = edges.traced

  // --- order ---------------------------------------------------------------
  const incoming = new Map<string, Array<PlanEdge>>(nodeIds.map((id) => [id, []]))
  const outgoing = new Map<string, Array<PlanEdge>>(nodeIds.map((id) => [id, []]))
  for (const { edge } of traced) {
    incoming.get(edge.to)?.push(edge)
    outgoing.get(edge.from)?.push(edge)
  }
  const order = kahn(nodeIds, incoming, outgoing)
  if (order.length < nodeIds.length) {
    const cycle = findCycle(nodeIds, new Set(order), incoming)
    const closing = traced.find((t) => t.edge.from === cycle[cycle.length - 2] && t.edge.to === cycle[cycle.length - 1])
    report(
      closing?.origin ?? W("nodes", authoredIndex.get(cycle[0] ?? "") ?? 0, "id"),
      `the workflow has a cycle: ${cycle.join(" → ")}`,
      closing?.offset
    )
  }

  if (issues.list.length > 0) return Either.left(new WorkflowGraphError({ issues: issues.list }))
  return Either.right({
    document: doc,
    spec,
    order,
    nodes,
    incoming,
    outgoing,
    agents,
    outputRefs
  })
}

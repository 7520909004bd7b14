/**
 * Turns a decoded workflow document into the `WorkflowPlan` the orchestrator executes, after the
 * checks a schema cannot express: unique names, agent references, input validation rules, template
 * syntax and what templates may read (no secrets in model or human text, no node outputs before
 * any node runs), and the graph itself (edge endpoints, condition handles, parallel membership,
 * cycles). Every issue carries a path into the document, so the YAML loader can point at the line.
 */
import { Either, Schema } from "effect"
import * as Inputs from "./Inputs.js"
import { didYouMean, withArticle } from "./internal/text.js"
import type { PlanEdge, WorkflowPlan } from "./Plan.js"
import * as Template from "./Template.js"
import type { Agent, BranchValue, NodeOf, WorkflowDocument, WorkflowNode } from "./Workflow.js"
import { expressionReads } from "./ExpressionReads.js"
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
// Compiling
// ---------------------------------------------------------------------------

/** A plan edge plus where it was authored, so a cycle can be pointed at in the file. */
interface TracedEdge {
  edge: PlanEdge
  readonly origin: IssuePath
  readonly offset?: number | undefined
}

type TemplateField = "context" | "model-text" | "human-text"

export const compileWorkflow = (doc: WorkflowDocument): Either.Either<WorkflowPlan, WorkflowGraphError> => {
  const spec = doc.workflow
  const issues: Array<GraphIssue> = []
  const report = (path: IssuePath, message: string, offset?: number) =>
    issues.push(offset === undefined ? { path, message } : { path, message, offset })
  const reportAtKey = (path: IssuePath, message: string) => issues.push({ path, message, at: "key" })
  const W = (...rest: Array<PathSegment>): IssuePath => ["workflow", ...rest] // "W" keeps the many paths short

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

  // --- templates -----------------------------------------------------------
  const contextIndex = new Map<string, number>()
  context.forEach((entry, i) => {
    if (!contextIndex.has(entry.key)) contextIndex.set(entry.key, i)
  })

  /** Parse and check one template field; returns the node ids it reads when it is valid. */
  const checkTemplate = (
    path: IssuePath,
    text: string,
    field: TemplateField,
    contextPosition?: number
  ): ReadonlyArray<{ readonly nodeId: string; readonly offset: number }> => {
    const parsed = Template.parseTemplate(text)
    if (Either.isLeft(parsed)) {
      report(path, `template error: ${parsed.left.message}`, parsed.left.offset)
      return []
    }
    const reads: Array<{ nodeId: string; offset: number }> = []
    for (const ref of Template.references(parsed.right)) {
      switch (ref.root) {
        case "inputs": {
          const input = inputsByName.get(ref.name)
          if (input === undefined) {
            report(
              path,
              inputs.length === 0
                ? `{{ inputs.${ref.name} }}: this workflow declares no inputs`
                : `{{ inputs.${ref.name} }}: no input "${ref.name}" in workflow.inputs${
                  didYouMean(ref.name, inputsByName.keys())
                }`,
              ref.offset
            )
          } else if (input.type === "secret") {
            report(
              path,
              field === "context"
                ? `secret input "${ref.name}" cannot be read by a context value — context values end up in prompts`
                : `secret input "${ref.name}" cannot be interpolated into text sent to a ${
                  field === "human-text" ? "person" : "model"
                } — secrets may only feed tool credentials`,
              ref.offset
            )
          }
          break
        }
        case "ctx": {
          const at = contextIndex.get(ref.name)
          if (at === undefined) {
            report(
              path,
              context.length === 0
                ? `{{ ctx.${ref.name} }}: this workflow declares no context`
                : `{{ ctx.${ref.name} }}: no context key "${ref.name}" in workflow.context${
                  didYouMean(ref.name, contextIndex.keys())
                }`,
              ref.offset
            )
          } else if (contextPosition !== undefined && at >= contextPosition) {
            report(
              path,
              at === contextPosition
                ? `a context value cannot read itself ({{ ctx.${ref.name} }})`
                : `{{ ctx.${ref.name} }} is declared later (workflow.context[${at}]) — context entries are resolved in order`,
              ref.offset
            )
          }
          break
        }
        case "run.outputs":
          if (field === "context") {
            report(
              path,
              `a context value cannot read run.outputs — context is resolved before any node runs`,
              ref.offset
            )
          } else if (!nodes.has(ref.nodeId)) {
            report(path, `${ref.source}: ${unknownNode(ref.nodeId)}`, ref.offset)
          } else {
            reads.push({ nodeId: ref.nodeId, offset: ref.offset })
          }
          break
        case "run.id":
          report(path, `{{ run.id }} is only available in an output node's save_to`, ref.offset)
          break
      }
    }
    return reads
  }

  context.forEach((entry, i) => {
    checkTemplate(W("context", i, "value"), entry.value, "context", contextIndex.get(entry.key) === i ? i : undefined)
  })
  const agentPromptReads = new Map<string, ReadonlyArray<{ readonly nodeId: string; readonly offset: number }>>()
  agentEntries.forEach((entry, i) => {
    if ("$ref" in entry) return
    const reads = checkTemplate(W("agents", i, "system_prompt"), entry.system_prompt, "model-text")
    if (!agentPromptReads.has(entry.id)) agentPromptReads.set(entry.id, reads)
  })

  // --- edges ---------------------------------------------------------------
  const traced: Array<TracedEdge> = []
  const edgeIndex = new Map<string, TracedEdge>()
  const edgeKey = (e: PlanEdge) => `${e.from}\u0000${e.to}\u0000${e.kind}\u0000${e.handle ?? ""}`
  const addEdge = (edge: PlanEdge, origin: IssuePath, offset?: number): TracedEdge | undefined => {
    if (!nodes.has(edge.from) || !nodes.has(edge.to)) return undefined
    const key = edgeKey(edge)
    const existing = edgeIndex.get(key)
    if (existing !== undefined) return existing
    const entry: TracedEdge = { edge, origin, offset }
    traced.push(entry)
    edgeIndex.set(key, entry)
    return entry
  }
  const withCondition = (entry: TracedEdge | undefined, condition: string | undefined) => {
    if (entry !== undefined && condition !== undefined) entry.edge = { ...entry.edge, condition }
  }

  const handlesOf = (node: NodeOf<"condition">): ReadonlyArray<string> => [
    ...node.branches.map((b) => String(b.when)),
    ...(node.default === undefined ? [] : ["default"])
  ]

  // Branches and parallel membership first, so explicit edges can be matched against them.
  spec.nodes.forEach((node, i) => {
    if (authoredIndex.get(node.id) !== i) return
    switch (node.type) {
      case "condition": {
        const firstBranch = new Map<BranchValue, number>()
        node.branches.forEach((branch, j) => {
          const earlier = firstBranch.get(branch.when) ?? j
          if (!firstBranch.has(branch.when)) firstBranch.set(branch.when, j)
          if (earlier < j) {
            report(
              W("nodes", i, "branches", j, "when"),
              `duplicate branch when: ${JSON.stringify(branch.when)} (already used by branches[${earlier}]) — this branch can never be taken`
            )
          }
          if (!nodes.has(branch.target_node)) {
            report(W("nodes", i, "branches", j, "target_node"), unknownNode(branch.target_node))
          }
          addEdge(
            { from: node.id, to: branch.target_node, kind: "flow", handle: String(branch.when) },
            W("nodes", i, "branches", j, "target_node")
          )
        })
        if (node.default !== undefined) {
          if (!nodes.has(node.default)) report(W("nodes", i, "default"), unknownNode(node.default))
          addEdge({ from: node.id, to: node.default, kind: "flow", handle: "default" }, W("nodes", i, "default"))
        }
        break
      }
      case "parallel": {
        const members = new Set<string>()
        node.parallel_of.forEach((member, j) => {
          if (members.has(member)) {
            report(W("nodes", i, "parallel_of", j), `"${member}" is listed twice in parallel_of`)
          } else if (!nodes.has(member)) {
            report(W("nodes", i, "parallel_of", j), unknownNode(member))
          }
          members.add(member)
          addEdge({ from: node.id, to: member, kind: "flow" }, W("nodes", i, "parallel_of", j))
        })
        break
      }
      case "agent":
        // With "$ref" agents present the missing agent is most likely one of them, already reported.
        if (!agents.has(node.agent_ref) && !agentEntries.some((a) => "$ref" in a)) {
          const declared = [...agents.keys()]
          report(
            W("nodes", i, "agent_ref"),
            declared.length === 0
              ? `no agent "${node.agent_ref}" — this workflow declares no agents; add one under workflow.agents`
              : `no agent "${node.agent_ref}" in workflow.agents${didYouMean(node.agent_ref, declared)} (declared: ${
                declared.join(", ")
              })`
          )
        }
        break
      case "merge":
        if (node.merge_strategy === "custom" && node.merge_fn === undefined) {
          report(W("nodes", i, "merge_strategy"), `merge_strategy "custom" needs a merge_fn expression`)
        }
        break
      default:
        break
    }
  })

  // from → to → the first authored edge between them (nested maps: no key strings to build per edge).
  const seenAuthored = new Map<string, Map<string, number>>()
  spec.edges.forEach((edge, j) => {
    const colon = edge.from.indexOf(":")
    const fromId = colon === -1 ? edge.from : edge.from.slice(0, colon)
    const handle = colon === -1 ? undefined : edge.from.slice(colon + 1)
    const from = nodes.get(fromId)
    const targets = seenAuthored.get(edge.from) ?? new Map<string, number>()
    const duplicateOf = targets.get(edge.to)
    if (duplicateOf !== undefined) {
      report(W("edges", j), `duplicate edge from "${edge.from}" to "${edge.to}" (same as workflow.edges[${duplicateOf}])`)
      return
    }
    if (targets.size === 0) seenAuthored.set(edge.from, targets)
    targets.set(edge.to, j)
    if (from === undefined) report(W("edges", j, "from"), unknownNode(fromId))
    if (!nodes.has(edge.to)) report(W("edges", j, "to"), unknownNode(edge.to))
    if (from === undefined || !nodes.has(edge.to)) return

    if (from.type === "condition") {
      const handles = handlesOf(from)
      const choices = handles.map((h) => `"${fromId}:${h}"`).join(", ")
      if (handle === undefined) {
        report(
          W("edges", j, "from"),
          `a plain edge cannot leave condition node "${fromId}" — write from: "${fromId}:<when>" (one of ${choices}), or rely on its branches`
        )
        return
      }
      const branch = handle === "default"
        ? undefined
        : from.branches.find((b) =>
          String(b.when) === handle || (typeof b.when === "number" && handle.trim() !== "" && Number(handle) === b.when)
        )
      const target = handle === "default" ? from.default : branch?.target_node
      if (target === undefined) {
        report(W("edges", j, "from"), `condition node "${fromId}" has no branch "${handle}" (handles: ${choices})`)
        return
      }
      if (target !== edge.to) {
        report(
          W("edges", j, "to"),
          `branch "${handle}" of condition "${fromId}" goes to "${target}", not "${edge.to}" — change the branch's target_node or this edge`
        )
        return
      }
      const branchHandle = branch === undefined ? "default" : String(branch.when)
      withCondition(edgeIndex.get(edgeKey({ from: fromId, to: edge.to, kind: "flow", handle: branchHandle })), edge.condition)
      return
    }
    if (handle !== undefined) {
      report(
        W("edges", j, "from"),
        `only condition nodes have output handles; "${fromId}" is ${withArticle(from.type)} node — write from: "${fromId}"`
      )
      return
    }
    if (from.type === "parallel" && !from.parallel_of.includes(edge.to)) {
      report(
        W("edges", j, "to"),
        `"${edge.to}" is not in parallel_of of parallel node "${fromId}" (${from.parallel_of.join(", ")}) — add it there`
      )
      return
    }
    withCondition(addEdge({ from: fromId, to: edge.to, kind: "flow" }, W("edges", j)), edge.condition)
  })

  // --- data edges and outputRefs -------------------------------------------
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

  if (issues.length > 0) return Either.left(new WorkflowGraphError({ issues }))
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

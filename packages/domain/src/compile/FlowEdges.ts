/**
 * The flow edges of a workflow: condition branches and parallel membership first, then the
 * authored edges, each checked against them (endpoints exist, a condition's edges leave through a
 * handle that goes where its branch goes, a parallel node's only to its members); agent references
 * and custom merges are checked on the way.
 */
import type { PlanEdge } from "../Plan.js"
import { didYouMean, withArticle } from "../internal/text.js"
import type { BranchValue, NodeOf } from "../Workflow.js"
import type { IssuePath } from "../WorkflowGraph.js"
import type { Declarations } from "./Declarations.js"
import { type Issues, W } from "./Issues.js"

/** A plan edge plus where it was authored, so a cycle can be pointed at in the file. */
export interface TracedEdge {
  edge: PlanEdge
  readonly origin: IssuePath
  readonly offset?: number | undefined
}

/** The plan's edges, each kept once (same ends, kind and handle), in the order first added. */
export class EdgeSet {
  readonly traced: Array<TracedEdge> = []
  private readonly index = new Map<string, TracedEdge>()
  constructor(private readonly nodes: ReadonlyMap<string, unknown>) {}

  static key(e: PlanEdge): string {
    return `${e.from}\u0000${e.to}\u0000${e.kind}\u0000${e.handle ?? ""}`
  }

  /** Adds the edge unless one of its ends does not exist; returns the edge kept for it. */
  add(edge: PlanEdge, origin: IssuePath, offset?: number): TracedEdge | undefined {
    if (!this.nodes.has(edge.from) || !this.nodes.has(edge.to)) return undefined
    const key = EdgeSet.key(edge)
    const existing = this.index.get(key)
    if (existing !== undefined) return existing
    const entry: TracedEdge = { edge, origin, offset }
    this.traced.push(entry)
    this.index.set(key, entry)
    return entry
  }

  get(edge: PlanEdge): TracedEdge | undefined {
    return this.index.get(EdgeSet.key(edge))
  }
}

export const flowEdges = (declared: Declarations, issues: Issues, edges: EdgeSet): void => {
  const { report } = issues
  const { spec, nodes, agents, agentEntries, authoredIndex, unknownNode } = declared
  const addEdge = (edge: PlanEdge, origin: IssuePath, offset?: number) => edges.add(edge, origin, offset)
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
      withCondition(edges.get({ from: fromId, to: edge.to, kind: "flow", handle: branchHandle }), edge.condition)
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
}

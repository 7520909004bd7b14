/**
 * A workflow after parsing and graph checks: what the orchestrator executes.
 * Built by `compileWorkflow` (WorkflowGraph.ts); never constructed by hand elsewhere.
 */
import type { Agent, WorkflowDocument, WorkflowNode, WorkflowSpec } from "./Workflow.js"

/**
 * A dependency of `to` on `from`.
 * - `flow`: an authored edge, a condition branch, or a parallel membership. At least one live
 *   flow edge is needed for a node with flow in-edges to run.
 * - `data`: added because `to` references `run.outputs["from"]` in a template or expression;
 *   `from` must settle first, but a data edge never makes `to` live or dead.
 */
export interface PlanEdge {
  readonly from: string
  readonly to: string
  readonly kind: "flow" | "data"
  /** For edges out of a condition node: the branch handle (`String(when)` or `"default"`). */
  readonly handle?: string | undefined
  /** An authored edge `condition` expression (JS), evaluated when `from` completes. */
  readonly condition?: string | undefined
}

export interface WorkflowPlan {
  readonly document: WorkflowDocument
  readonly spec: WorkflowSpec
  /** Node ids in a topological (Kahn) order, ties broken by authored order. */
  readonly order: ReadonlyArray<string>
  readonly nodes: ReadonlyMap<string, WorkflowNode>
  /** Incoming dependencies of each node (every node has an entry, maybe empty). */
  readonly incoming: ReadonlyMap<string, ReadonlyArray<PlanEdge>>
  /** Outgoing dependencies of each node (every node has an entry, maybe empty). */
  readonly outgoing: ReadonlyMap<string, ReadonlyArray<PlanEdge>>
  /** Inline agents by id (`$ref` agents are resolved before compiling or rejected). */
  readonly agents: ReadonlyMap<string, Agent>
  /**
   * For each node with templates or expressions: the node ids whose outputs it reads,
   * or "all" when an expression reads `run.outputs` dynamically.
   */
  readonly outputRefs: ReadonlyMap<string, ReadonlyArray<string> | "all">
}

/**
 * What a node handler sees: its node, the run's state, resolved inputs and
 * context, and a way to emit events while it works.
 */
import type { Effect } from "effect"
import type { Plan, RunEvent as RE, Workflow } from "@relavium/domain"
import type { RunState } from "./RunState.js"
import { nodeState } from "./RunState.js"

export interface NodeContext<N extends Workflow.WorkflowNode = Workflow.WorkflowNode> {
  readonly runId: string
  readonly node: N
  readonly attempt: number
  readonly plan: Plan.WorkflowPlan
  readonly state: RunState
  /** Input values as given (secrets included; never written to an event). */
  readonly inputs: Readonly<Record<string, unknown>>
  readonly ctx: Readonly<Record<string, unknown>>
  /** Commits events for this run; a closed run interrupts the node. */
  readonly emit: (drafts: ReadonlyArray<RE.RunEventDraft>) => Effect.Effect<void>
  /** The time on the Clock of the fiber running the node, for the events it writes. */
  readonly timestamp: () => string
}

export type NodeOutcome =
  | {
      readonly _tag: "Completed"
      readonly output: unknown
      readonly tokensUsed?: RE.TokensUsed | undefined
      /** Set by condition nodes: the targets of the branch taken. */
      readonly selected?: ReadonlyArray<string> | undefined
    }
  | { readonly _tag: "Suspended" }

export const completed = (output: unknown, extra?: Omit<Extract<NodeOutcome, { _tag: "Completed" }>, "_tag" | "output">): NodeOutcome => ({
  _tag: "Completed",
  output,
  ...extra
})
export const suspended: NodeOutcome = { _tag: "Suspended" }

/** The outputs a node may read: only those it references, unless it reads them dynamically. */
export const outputsFor = (context: NodeContext, extra?: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const refs = context.plan.outputRefs.get(context.node.id)
  const outputs: Record<string, unknown> = {}
  const ids =
    refs === "all"
      ? [...context.state.nodes.keys()].sort()
      : refs ?? []
  for (const id of ids) {
    const s = nodeState(context.state, id)
    if (s.status === "completed") outputs[id] = s.output
  }
  return extra ? { ...outputs, ...extra } : outputs
}

/**
 * The node catalog: one handler per authored node type. Handlers are plain
 * effects over a NodeContext; the worker decides what their outcome commits.
 */
import { FileSystem, Path } from "@effect/platform"
import { Effect } from "effect"
import type { Workflow } from "@relavium/domain"
import { RunError } from "@relavium/domain"
import { runAgent } from "./AgentNode.js"
import { ExpressionSandbox } from "@relavium/ports"
import { interpolate } from "./Interpolate.js"
import { validateJson } from "./JsonValidation.js"
import { completed, type NodeContext, type NodeOutcome, outputsFor, suspended } from "./NodeContext.js"
import { nodeState } from "./RunState.js"
import { Ids } from "@relavium/domain"
import { RunQueue } from "@relavium/ports"

type Handler<T extends Workflow.NodeType> = (
  context: NodeContext<Workflow.NodeOf<T>>
) => Effect.Effect<NodeOutcome, RunError.NodeFailure, NodeRequirements>

export type NodeRequirements =
  | ExpressionSandbox
  | FileSystem.FileSystem
  | Path.Path
  | RunQueue
  | import("@relavium/ports").LlmProvider
  | import("@relavium/ports").ModelPricing
  | import("@relavium/ports").DaemonRouter

const scopeOf = (context: NodeContext, extra?: Readonly<Record<string, unknown>>) => ({
  inputs: context.inputs,
  ctx: context.ctx,
  outputs: outputsFor(context, extra)
})

const evaluate = (context: NodeContext, source: string, branches?: ReadonlyArray<unknown>) =>
  Effect.flatMap(ExpressionSandbox, (sandbox) => sandbox.evaluate(source, { ...scopeOf(context), branches }))

const checkSchema = (schema: Readonly<Record<string, unknown>> | undefined, value: unknown, what: string) =>
  schema === undefined
    ? Effect.void
    : Effect.suspend(() => {
        const problems = validateJson(schema, value)
        return problems.length === 0
          ? Effect.void
          : Effect.fail(RunError.nodeFailure("validation", `${what} does not match output_schema: ${problems.join("; ")}`))
      })

const input: Handler<"input"> = (context) => Effect.succeed(completed(context.state.inputs))

const transform: Handler<"transform"> = (context) =>
  evaluate(context, context.node.transform).pipe(
    Effect.tap((value) => checkSchema(context.node.output_schema, value, "transform result")),
    Effect.map((value) => completed(value))
  )

const condition: Handler<"condition"> = (context) =>
  Effect.gen(function* () {
    const value = yield* evaluate(context, context.node.expression)
    if (typeof value !== "boolean" && typeof value !== "string" && typeof value !== "number") {
      return yield* RunError.nodeFailure("validation", `condition must evaluate to a boolean, string or number, got ${describe(value)}`)
    }
    const branch = context.node.branches.find((b) => b.when === value)
    const handle = branch !== undefined ? String(branch.when) : context.node.default !== undefined ? "default" : undefined
    if (handle === undefined) {
      return yield* RunError.nodeFailure("validation", `condition value ${JSON.stringify(value)} matches no branch and there is no default`)
    }
    const selected = [
      ...new Set(
        (context.plan.outgoing.get(context.node.id) ?? [])
          .filter((e) => e.kind === "flow" && e.handle === handle)
          .map((e) => e.to)
      )
    ]
    return completed({}, { selected })
  })

const parallel: Handler<"parallel"> = () => Effect.succeed(completed(null))

/** Values of the branches that completed, in `parallel_of` order where a parallel node feeds them. */
const branchValues = (context: NodeContext<Workflow.NodeOf<"merge">>): ReadonlyArray<unknown> => {
  const sources = [
    ...new Set((context.plan.incoming.get(context.node.id) ?? []).filter((e) => e.kind === "flow").map((e) => e.from))
  ]
  const memberOrder = new Map<string, number>()
  for (const node of context.plan.nodes.values()) {
    if (node.type === "parallel") node.parallel_of.forEach((id, i) => memberOrder.has(id) || memberOrder.set(id, i))
  }
  const authored = new Map(context.plan.order.map((id, i) => [id, i]))
  const rank = (id: string) => memberOrder.get(id) ?? Number.MAX_SAFE_INTEGER
  return sources
    .sort((a, b) => rank(a) - rank(b) || authored.get(a)! - authored.get(b)!)
    .map((id) => nodeState(context.state, id))
    .filter((s) => s.status === "completed")
    .map((s) => s.output)
}

const merge: Handler<"merge"> = (context) =>
  Effect.gen(function* () {
    const values = branchValues(context)
    switch (context.node.merge_strategy) {
      case "concat":
        return completed(values.flatMap((v) => (Array.isArray(v) ? v : [v])))
      case "first":
        return completed(values[0] ?? null)
      case "object_merge": {
        const merged: Record<string, unknown> = {}
        for (const v of values) {
          if (v === null || typeof v !== "object" || Array.isArray(v)) {
            return yield* RunError.nodeFailure("validation", `object_merge needs object branch values, got ${describe(v)}`)
          }
          Object.assign(merged, v)
        }
        return completed(merged)
      }
      case "custom":
        return completed(yield* evaluate(context, context.node.merge_fn ?? "branches", values))
    }
  })

const humanGate: Handler<"human_gate"> = (context) =>
  Effect.gen(function* () {
    const { node } = context
    const message =
      node.message_template !== undefined
        ? yield* interpolate(node.message_template, { ...scopeOf(context), runId: context.runId })
        : defaultGateMessage(node.gate_type, node.id)
    const gateId = Ids.gateIdFor(context.runId, node.id)
    const timestamp = context.timestamp()
    const timeoutAction = node.timeout_ms !== undefined ? (node.timeout_action ?? "reject") : node.timeout_action
    yield* context.emit([
      {
        type: "human_gate:paused",
        runId: context.runId,
        timestamp,
        nodeId: node.id,
        gateId,
        gateType: node.gate_type,
        message,
        assignee: node.assignee,
        timeoutMs: node.timeout_ms,
        timeoutAction,
        expiresAt: node.timeout_ms !== undefined ? new Date(Date.parse(timestamp) + node.timeout_ms).toISOString() : undefined
      }
    ])
    if (node.timeout_ms !== undefined) {
      const queue = yield* RunQueue
      yield* queue
        .offer([{ _tag: "GateTimeout", runId: context.runId, gateId }], { delayMs: node.timeout_ms })
        .pipe(Effect.orDie)
    }
    return suspended
  })

const defaultGateMessage = (gateType: Workflow.GateType, nodeId: string) =>
  gateType === "input"
    ? `Input needed at '${nodeId}'`
    : gateType === "review"
      ? `Review needed at '${nodeId}'`
      : `Approval needed at '${nodeId}'`

const output: Handler<"output"> = (context) =>
  Effect.gen(function* () {
    const feeders = [
      ...new Set((context.plan.incoming.get(context.node.id) ?? []).filter((e) => e.kind === "flow").map((e) => e.from))
    ]
      .filter((id) => nodeState(context.state, id).status === "completed")
      .sort()
    const value =
      feeders.length === 0
        ? null
        : feeders.length === 1
          ? nodeState(context.state, feeders[0]!).output
          : Object.fromEntries(feeders.map((id) => [id, nodeState(context.state, id).output]))
    if (context.node.save_to !== undefined) {
      const target = yield* interpolate(context.node.save_to, { ...scopeOf(context), runId: context.runId })
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const content = typeof value === "string" ? value : `${JSON.stringify(value, null, 2)}\n`
      yield* fs.makeDirectory(path.dirname(target), { recursive: true }).pipe(
        Effect.zipRight(fs.writeFileString(target, content)),
        Effect.mapError((e) => RunError.nodeFailure("tool_failed", `could not write save_to file ${target}: ${e.message}`))
      )
    }
    return completed(value)
  })

export const describe = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : typeof value

const handlers: { readonly [T in Workflow.NodeType]: Handler<T> } = {
  input,
  agent: (context) => runAgent(context),
  condition,
  transform,
  parallel,
  merge,
  human_gate: humanGate,
  output
}

export const runNode = (context: NodeContext): Effect.Effect<NodeOutcome, RunError.NodeFailure, NodeRequirements> =>
  (handlers[context.node.type] as Handler<Workflow.NodeType>)(context as never)

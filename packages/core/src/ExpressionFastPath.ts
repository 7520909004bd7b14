/**
 * Expressions that are trivially safe to answer on the main thread: a plain dotted lookup into the
 * scope (`inputs.a.b`, `ctx.x`, `run.outputs.n1.text`, `branches`) or a JSON literal (`1`, `-2.5`,
 * `true`, `null`). They cannot loop or allocate beyond copying a value that is already in memory,
 * and long chains of such nodes stay as fast as before the sandbox moved to worker threads.
 *
 * The answer must be exactly what the VM would give, so anything less than certain falls back to
 * the VM (returns undefined): a missing or null step (the VM's TypeError message), a step into
 * something that is not plain JSON data (a string's `length`, a Date), `__proto__`.
 */
import type { Plan } from "@relavium/domain"
import type { ExpressionScope } from "@relavium/ports"

const LOOKUP = /^(inputs|ctx|run|branches)((?:\.[A-Za-z_$][\w$]*)*)$/u
const LITERAL = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)$/u

const isPlainData = (value: unknown): value is Record<string, unknown> => {
  if (value === null || typeof value !== "object") return false
  if (Array.isArray(value)) return true
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

/** The VM sees the scope through JSON, and its result comes back through JSON. */
const throughJson = (value: unknown): unknown => {
  const json = JSON.stringify(value)
  return json === undefined ? null : (JSON.parse(json) as unknown)
}

const rootOf = (name: string, scope: ExpressionScope): unknown => {
  switch (name) {
    case "inputs":
      return scope.inputs
    case "ctx":
      return scope.ctx
    case "run":
      return { outputs: scope.outputs }
    default:
      return scope.branches
  }
}

/**
 * Whether the expression can only ever be answered by the VM (whatever the scope): it is neither a
 * plain lookup nor a literal. A lookup may still reach the VM (a missing key), so this is a hint.
 */
export const needsVm = (source: string): boolean => {
  const text = source.replace(/[\s;]+$/u, "").trim()
  return text.length > 1000 || !(LITERAL.test(text) || LOOKUP.test(text))
}

/** `{ value }` when the expression is answered here, undefined when the VM must evaluate it. */
export const fastPath = (source: string, scope: ExpressionScope): { readonly value: unknown } | undefined => {
  const text = source.replace(/[\s;]+$/u, "").trim()
  if (text.length > 1000) return undefined
  if (LITERAL.test(text)) return { value: throughJson(JSON.parse(text)) }
  const match = LOOKUP.exec(text)
  if (match === null) return undefined
  const root = match[1]!
  if (root === "branches" && scope.branches === undefined) return undefined
  let current: unknown = rootOf(root, scope)
  const path = match[2]!
  if (path !== "") {
    for (const key of path.slice(1).split(".")) {
      if (key === "__proto__" || !isPlainData(current) || !Object.hasOwn(current, key)) return undefined
      current = current[key]
    }
  }
  try {
    return { value: throughJson(current) }
  } catch {
    // Not JSON-serialisable (a cycle, a BigInt): the VM path reports it with its own message.
    return undefined
  }
}

/** The JS expressions a plan may evaluate: transforms, conditions, merge functions and edge conditions. */
export const planExpressions = (plan: Plan.WorkflowPlan): Array<string> => {
  const sources: Array<string> = []
  for (const node of plan.nodes.values()) {
    if (node.type === "transform") sources.push(node.transform)
    else if (node.type === "condition") sources.push(node.expression)
    else if (node.type === "merge" && node.merge_fn !== undefined) sources.push(node.merge_fn)
  }
  for (const edges of plan.outgoing.values()) {
    for (const edge of edges) if (edge.condition !== undefined) sources.push(edge.condition)
  }
  return sources
}

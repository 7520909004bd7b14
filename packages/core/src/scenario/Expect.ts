/**
 * What a scenario expected against what its run did: each difference is a `Mismatch` naming the
 * path it is about (`outputs.result.count`, `status`, `nodes.ran`) with both values, so a report
 * can show a readable diff.
 */
import { Effect } from "effect"
import type { ExpressionScope } from "@relavium/ports"
import type { Expectations, RunStatus } from "./ScenarioFile.js"

export interface NodeTrace {
  readonly id: string
  readonly status: "completed" | "failed" | "skipped"
  readonly output?: unknown
}

/** What a scenario's run did, as the matcher and the reports see it. */
export interface Outcome {
  readonly runId: string
  readonly status: RunStatus
  readonly error?: { readonly code: string; readonly message: string; readonly nodeId?: string | undefined } | undefined
  /** The run's outputs (its partial outputs when it did not complete). */
  readonly outputs: Readonly<Record<string, unknown>>
  /** Every node's output by id, for `assert` expressions. */
  readonly nodeOutputs: Readonly<Record<string, unknown>>
  /** The nodes that ended, in the order they ended. */
  readonly nodes: ReadonlyArray<NodeTrace>
  readonly costMicrocents: number
  readonly inputs: Readonly<Record<string, unknown>>
}

export interface Mismatch {
  /** What the difference is about: `status`, `outputs.result.count`, `nodes.ran`, `assert[0]`, … */
  readonly path: string
  readonly message: string
  readonly expected?: unknown
  readonly actual?: unknown
}

/** Evaluates an `assert` expression; the workflow engine's sandbox in practice. */
export type Evaluate = (source: string, scope: ExpressionScope) => Effect.Effect<unknown, { readonly message: string }>

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const key = (path: string, name: string | number): string =>
  typeof name === "number" ? `${path}[${name}]` : /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? `${path}.${name}` : `${path}[${JSON.stringify(name)}]`

export const deepEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]))
  if (isObject(a)) {
    if (!isObject(b)) return false
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]))
  }
  return false
}

/**
 * The differences between `expected` and `actual` at `path`: objects key by key, lists element by
 * element. With `subset`, keys the expectation leaves out are not compared.
 */
export const compare = (path: string, expected: unknown, actual: unknown, subset: boolean): Array<Mismatch> => {
  if (isObject(expected) && isObject(actual)) {
    const out: Array<Mismatch> = []
    for (const [name, value] of Object.entries(expected)) {
      if (!Object.hasOwn(actual, name)) out.push({ path: key(path, name), message: "missing", expected: value })
      else out.push(...compare(key(path, name), value, actual[name], subset))
    }
    if (!subset) {
      for (const [name, value] of Object.entries(actual)) {
        if (!Object.hasOwn(expected, name)) out.push({ path: key(path, name), message: "not expected", actual: value })
      }
    }
    return out
  }
  if (Array.isArray(expected) && Array.isArray(actual) && expected.length === actual.length) {
    return expected.flatMap((value, i) => compare(key(path, i), value, actual[i], subset))
  }
  return deepEqual(expected, actual) ? [] : [{ path, message: "differs", expected, actual }]
}

/** Every expectation of a scenario checked against its run's outcome. */
export const check = (expect: Expectations | undefined, outcome: Outcome, evaluate: Evaluate): Effect.Effect<Array<Mismatch>> =>
  Effect.gen(function* () {
    const out: Array<Mismatch> = []
    const status = expect?.status ?? "completed"
    if (status !== outcome.status) {
      out.push({
        path: "status",
        message: outcome.error === undefined ? "differs" : `differs — ${outcome.error.code}: ${outcome.error.message}`,
        expected: status,
        actual: outcome.status
      })
    }
    if (expect?.error !== undefined && expect.error !== outcome.error?.code) {
      out.push({ path: "error", message: "differs", expected: expect.error, actual: outcome.error?.code ?? null })
    }
    if (expect?.outputs !== undefined) out.push(...compare("outputs", expect.outputs, outcome.outputs, false))
    if (expect?.outputs_match !== undefined) out.push(...compare("outputs", expect.outputs_match, outcome.outputs, true))
    const ran = new Set(outcome.nodes.filter((n) => n.status !== "skipped").map((n) => n.id))
    const skipped = new Set(outcome.nodes.filter((n) => n.status === "skipped").map((n) => n.id))
    const notRan = (expect?.ran ?? []).filter((id) => !ran.has(id))
    if (notRan.length > 0) {
      out.push({ path: "ran", message: `${notRan.join(", ")} did not run`, expected: expect?.ran, actual: [...ran] })
    }
    const notSkipped = (expect?.skipped ?? []).filter((id) => !skipped.has(id))
    if (notSkipped.length > 0) {
      out.push({ path: "skipped", message: `${notSkipped.join(", ")} was not skipped`, expected: expect?.skipped, actual: [...skipped] })
    }
    if (expect?.max_cost_microcents !== undefined && outcome.costMicrocents > expect.max_cost_microcents) {
      out.push({
        path: "max_cost_microcents",
        message: "the run cost more",
        expected: `at most ${expect.max_cost_microcents}`,
        actual: outcome.costMicrocents
      })
    }
    const scope: ExpressionScope = { inputs: outcome.inputs, ctx: {}, outputs: outcome.nodeOutputs }
    for (const [i, source] of (expect?.assert ?? []).entries()) {
      const value = yield* evaluate(source, scope).pipe(Effect.either)
      if (value._tag === "Left") out.push({ path: `assert[${i}]`, message: `${source} — could not be evaluated: ${value.left.message}` })
      else if (value.right !== true) out.push({ path: `assert[${i}]`, message: source, expected: true, actual: value.right })
    }
    return out
  })

/** A value for a diff line: JSON, cut short when long. */
export const show = (value: unknown): string => {
  const text = value === undefined ? "(nothing)" : JSON.stringify(value) ?? String(value)
  return text.length > 300 ? `${text.slice(0, 297)}...` : text
}

/** The lines of a readable diff: the path, then what was expected and what the run gave. */
export const diffLines = (mismatch: Mismatch): Array<string> => {
  const lines = [`${mismatch.path}: ${mismatch.message}`]
  // A mismatch with no values (a model call nothing answered, an expression that threw) is its sentence alone.
  if (!("expected" in mismatch) && !("actual" in mismatch)) return lines
  if (mismatch.message !== "not expected") lines.push(`  - expected: ${show(mismatch.expected)}`)
  if (mismatch.message !== "missing") lines.push(`  + actual:   ${show(mismatch.actual)}`)
  return lines
}

/**
 * Which node outputs a JS expression (condition, transform, merge_fn, edge condition) reads:
 * `run.outputs["x"]`, `run.outputs.x`, or all of them (`run.outputs` used whole). The workflow
 * compiler (WorkflowGraph.ts) uses it to check that an expression reads only nodes that ran before.
 */
export interface ExpressionReads {
  /** Node ids read as `run.outputs["x"]`, `run.outputs['x']` or `run.outputs.x`, in order. */
  readonly nodes: ReadonlyArray<{ readonly nodeId: string; readonly offset: number }>
  /** The expression touches `run.outputs` (or `run`) some other way, e.g. `Object.keys(run.outputs)`. */
  readonly dynamic: boolean
}

/** Blank out string contents and comments so that only code is searched for `run`. */
const codeOnly = (source: string): string => {
  const out = source.split("")
  // Each frame is a quote we are inside, or "${" for code nested in a template literal.
  const stack: Array<string> = []
  let braces = 0
  const braceStack: Array<number> = []
  let i = 0
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " "
  }
  while (i < source.length) {
    const top = stack[stack.length - 1]
    const ch = source[i] as string
    if (top === "\"" || top === "'" || top === "`") {
      if (ch === "\\") {
        blank(i, i + 2)
        i += 2
        continue
      }
      if (ch === top) {
        stack.pop()
        i++
        continue
      }
      if (top === "`" && ch === "$" && source[i + 1] === "{") {
        stack.push("${")
        braceStack.push(braces)
        braces = 0
        i += 2
        continue
      }
      blank(i, i + 1)
      i++
      continue
    }
    if (ch === "/" && source[i + 1] === "/") {
      const end = source.indexOf("\n", i)
      const stop = end === -1 ? source.length : end
      blank(i, stop)
      i = stop
      continue
    }
    if (ch === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2)
      const stop = end === -1 ? source.length : end + 2
      blank(i, stop)
      i = stop
      continue
    }
    if (ch === "\"" || ch === "'" || ch === "`") stack.push(ch)
    else if (ch === "{") braces++
    else if (ch === "}") {
      if (top === "${" && braces === 0) {
        stack.pop()
        braces = braceStack.pop() ?? 0
      } else braces--
    }
    i++
  }
  return out.join("")
}

const RUN = /(?<![\w$.])run(?![\w$])/g
const OUTPUTS_AFTER_RUN = /^\s*(?:\?\.|\.)\s*outputs(?![\w$])/
const ID_AFTER_RUN = /^\s*(?:\?\.|\.)\s*id(?![\w$])/
const BRACKET_KEY = /^\s*(?:\?\.)?\s*\[\s*(["'`])([^"'`\\$]*)\1\s*\]/
const DOT_KEY = /^\s*(?:\?\.|\.)\s*([A-Za-z_$][\w$]*)/

const NO_READS: ExpressionReads = { nodes: [], dynamic: false }

/** The node outputs a JS expression (condition, transform, merge_fn, edge condition) reads. */
export const expressionReads = (expression: string): ExpressionReads => {
  // Most expressions (`'1'`, `inputs.x + 1`) never mention `run`: nothing to scan for.
  if (!expression.includes("run")) return NO_READS
  const code = codeOnly(expression)
  const nodes: Array<{ nodeId: string; offset: number }> = []
  let dynamic = false
  for (const match of code.matchAll(RUN)) {
    const start = match.index
    const afterRun = code.slice(start + 3)
    const outputs = OUTPUTS_AFTER_RUN.exec(afterRun)
    if (outputs === null) {
      if (ID_AFTER_RUN.test(afterRun)) continue
      dynamic = true
      continue
    }
    const keyAt = start + 3 + outputs[0].length
    // Read the key from the original text: the masked copy has blanked the string contents.
    const bracket = BRACKET_KEY.exec(code.slice(keyAt)) !== null ? BRACKET_KEY.exec(expression.slice(keyAt)) : null
    if (bracket !== null) {
      nodes.push({ nodeId: bracket[2] as string, offset: start })
      continue
    }
    const dot = DOT_KEY.exec(code.slice(keyAt))
    if (dot !== null) {
      nodes.push({ nodeId: dot[1] as string, offset: start })
      continue
    }
    dynamic = true
  }
  return { nodes, dynamic }
}

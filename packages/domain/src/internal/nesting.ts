/**
 * How deeply a YAML text nests, measured before the YAML library builds a document from it: its
 * composer recurses once per level (a list nested ~800 levels deep overflows the stack) and its
 * parser slows down quadratically with depth, so a deep file must be refused from the tokens.
 *
 * The scan is linear and stops at the first token past the limit. It over-estimates rather than
 * under-estimates: every bracket counts, every indentation step counts, and so does every block
 * indicator (`-`, `?`, `:`) on a line — at most about twice the real depth. `documentDepth`
 * then measures the composed document exactly.
 */
import { CST, isMap, isNode, isPair, isSeq, Lexer } from "yaml"
import type { Document } from "yaml"

export interface TooDeep {
  /** Offset in the text of the token that went past the limit. */
  readonly offset: number
}

/** The first place where the estimated depth exceeds `limit`, or undefined. */
export const scanNesting = (text: string, limit: number): TooDeep | undefined => {
  let offset = 0
  let flowDepth = 0
  const indents: Array<number> = []
  let lineIndicators = 0
  let atLineStart = true
  let scalarNext = false
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token)
    if (type === "doc-mode" || type === "flow-error-end") continue
    if (type === "scalar") {
      scalarNext = true
      continue
    }
    const start = offset
    offset += token.length
    if (scalarNext) {
      // A scalar's source, possibly spanning lines (a block scalar's body ends with its newline).
      scalarNext = false
      if (atLineStart && flowDepth === 0) enterLine(indents, start - lineStartOf(text, start))
      atLineStart = token.endsWith("\n")
      if (atLineStart) lineIndicators = 0
      continue
    }
    if (type === "newline") {
      atLineStart = true
      lineIndicators = 0
      continue
    }
    if (type === "space" || type === "comment") continue
    if (type === "doc-start") {
      indents.length = 0
      atLineStart = false
      continue
    }
    if (atLineStart && flowDepth === 0) enterLine(indents, start - lineStartOf(text, start))
    atLineStart = false
    if (type === "flow-map-start" || type === "flow-seq-start") flowDepth++
    else if (type === "flow-map-end" || type === "flow-seq-end") flowDepth = Math.max(0, flowDepth - 1)
    else if (
      flowDepth === 0 && (type === "seq-item-ind" || type === "explicit-key-ind" || type === "map-value-ind")
    ) lineIndicators++
    if (indents.length + lineIndicators + flowDepth > limit) return { offset: start }
  }
  return undefined
}

/** The offset where the line holding `offset` starts. */
const lineStartOf = (text: string, offset: number): number => text.lastIndexOf("\n", offset - 1) + 1

/** A line's first token at column `indent`: close the deeper block levels, open a new one. */
const enterLine = (indents: Array<number>, indent: number): void => {
  while (indents.length > 0 && (indents[indents.length - 1] as number) > indent) indents.pop()
  if (indents.length === 0 || (indents[indents.length - 1] as number) < indent) indents.push(indent)
}

export interface DeepNode {
  /** From the document root, e.g. `["workflow", "metadata", "a", 0]`. */
  readonly path: ReadonlyArray<string | number>
  readonly offset: number
}

/** The first mapping or list nested deeper than `limit` levels (the root mapping is level 1). */
export const documentDepth = (doc: Document.Parsed, limit: number): DeepNode | undefined => {
  const stack: Array<{ node: unknown; depth: number; path: ReadonlyArray<string | number> }> = [
    { node: doc.contents, depth: 1, path: [] }
  ]
  while (stack.length > 0) {
    const { depth, node, path } = stack.pop() as (typeof stack)[number]
    if (!isMap(node) && !isSeq(node)) continue
    if (depth > limit) return { path, offset: node.range?.[0] ?? 0 }
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue
        const name = isNode(pair.key) && "value" in pair.key ? String(pair.key.value) : "?"
        // The path goes into the message: keep a long key from making it unreadable.
        const key = name.length > 40 ? `${name.slice(0, 37)}...` : name
        stack.push({ node: pair.key, depth: depth + 1, path: [...path, key] })
        stack.push({ node: pair.value, depth: depth + 1, path: [...path, key] })
      }
    } else {
      node.items.forEach((item, i) => stack.push({ node: item, depth: depth + 1, path: [...path, i] }))
    }
  }
  return undefined
}

/**
 * Schema decode issues of a workflow document turned into messages a person can act on ("unknown
 * key "modle" — did you mean "model"?", "missing required key "to" for an edge"), each with the
 * document path it is about and whether it points at a key, a value or the mapping lacking a key.
 */
import { ParseResult, SchemaAST } from "effect"
import { didYouMean, kindOf, orList, showValue, withArticle } from "./text.js"
import type { IssuePath, PathSegment } from "../WorkflowGraph.js"
import { formatPath } from "../WorkflowGraph.js"

/** Where in the YAML an issue points: a mapping key, a value, or the mapping that lacks a key. */
export type Target = "key" | "value" | "container"

export interface RawIssue {
  readonly path: IssuePath
  readonly message: string
  readonly at: Target
}

const toSegment = (key: PropertyKey): PathSegment => (typeof key === "number" ? key : String(key))

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const subIssues = (composite: ParseResult.Composite): ReadonlyArray<ParseResult.ParseIssue> =>
  Array.isArray(composite.issues) ? composite.issues : [composite.issues as ParseResult.ParseIssue]

const propertyNames = (ast: SchemaAST.AST): ReadonlyArray<string> =>
  SchemaAST.isTypeLiteral(ast) ? ast.propertySignatures.map((p) => String(p.name)) : []

/** "an agent node", "a condition node": how to name the mapping at `path` in a message. */
const containerLabel = (path: IssuePath, actual: unknown): string | undefined => {
  const parent = path[path.length - 2]
  if (parent === "nodes" && isRecord(actual) && typeof actual["type"] === "string") {
    return `${withArticle(actual["type"])} node`
  }
  if (parent === "agents") return "an agent"
  if (parent === "edges") return "an edge"
  if (parent === "inputs") return "an input"
  if (parent === "context") return "a context entry"
  return undefined
}

const literalList = (ast: SchemaAST.AST): ReadonlyArray<SchemaAST.LiteralValue> | undefined => {
  if (SchemaAST.isLiteral(ast)) return [ast.literal]
  if (SchemaAST.isUnion(ast)) {
    const values: Array<SchemaAST.LiteralValue> = []
    for (const member of ast.types) {
      if (!SchemaAST.isLiteral(member)) return undefined
      values.push(member.literal)
    }
    return values
  }
  return undefined
}

/** How to name what a schema expects, e.g. "a string", "one of manual, webhook". */
const expectation = (ast: SchemaAST.AST): string => {
  const literals = literalList(ast)
  if (literals !== undefined) {
    return literals.length === 1 ? JSON.stringify(literals[0]) : `one of ${literals.map(String).join(", ")}`
  }
  switch (ast._tag) {
    case "StringKeyword":
      return "a string"
    case "NumberKeyword":
      return "a number"
    case "BooleanKeyword":
      return "true or false"
    case "TypeLiteral":
      return "a mapping (key: value)"
    case "TupleType":
      return "a list"
    case "Refinement":
      return expectation(ast.from)
    case "Transformation":
      return expectation(ast.to)
    case "Union":
      return orList(ast.types.filter((t) => t._tag !== "UndefinedKeyword").map(expectation))
    default:
      return String(ast)
  }
}

const typeMessage = (ast: SchemaAST.AST, actual: unknown, path: IssuePath): string => {
  const last = path[path.length - 1]
  const literals = literalList(ast)
  if (literals !== undefined && last === "type" && path[path.length - 3] === "nodes") {
    return `unknown node type ${showValue(actual)} (expected one of ${literals.join(", ")})${
      typeof actual === "string" ? didYouMean(actual, literals.map(String)) : ""
    }`
  }
  if (literals !== undefined && literals.length === 1 && typeof literals[0] === "string" && typeof actual === "number") {
    return `expected the string ${JSON.stringify(literals[0])}, got the number ${actual} — quote it: '${literals[0]}'`
  }
  if (literals !== undefined && literals.length > 1) {
    return `invalid value ${showValue(actual)} (expected one of ${literals.map(String).join(", ")})${
      typeof actual === "string" ? didYouMean(actual, literals.map(String)) : ""
    }`
  }
  if (ast._tag === "TupleType" && Array.isArray(actual)) {
    const required = ast.elements.filter((e) => !e.isOptional).length
    return `must list at least ${required} item${required === 1 ? "" : "s"}`
  }
  return `expected ${expectation(ast)}, got ${kindOf(actual)}`
}

/** A refinement's own message (e.g. "must be kebab-case …"), followed by the offending value. */
const refinementMessage = (issue: ParseResult.Refinement): string => {
  const formatted = ParseResult.ArrayFormatter.formatIssueSync(issue)[0]?.message ?? "invalid value"
  const actual = issue.actual
  return /^Expected /.test(formatted) ? formatted : `${formatted}, got ${showValue(actual)}`
}

/** Which union member the author most likely meant: most keys in common, then fewest problems. */
const pickMember = (
  members: ReadonlyArray<ParseResult.ParseIssue>,
  actual: unknown
): ParseResult.ParseIssue | undefined => {
  if (!isRecord(actual)) return undefined
  const keys = Object.keys(actual)
  let best: ParseResult.ParseIssue | undefined
  let bestScore = -Infinity
  for (const member of members) {
    if (member._tag !== "Composite" || !SchemaAST.isTypeLiteral(member.ast)) continue
    const names = propertyNames(member.ast)
    const overlap = keys.filter((k) => names.includes(k)).length
    const score = overlap * 1000 - subIssues(member).length
    if (score > bestScore) {
      best = member
      bestScore = score
    }
  }
  return best
}

export const schemaIssues = (issue: ParseResult.ParseIssue, path: IssuePath): Array<RawIssue> => {
  switch (issue._tag) {
    case "Pointer": {
      const keys: ReadonlyArray<PropertyKey> = Array.isArray(issue.path) ? issue.path : [issue.path as PropertyKey]
      return schemaIssues(issue.issue, [...path, ...keys.map(toSegment)])
    }
    case "Composite": {
      const children = subIssues(issue)
      if (SchemaAST.isTypeLiteral(issue.ast)) {
        const allowed = propertyNames(issue.ast)
        const label = containerLabel(path, issue.actual)
        return children.flatMap((child): Array<RawIssue> => {
          if (child._tag === "Pointer" && (child.issue._tag === "Unexpected" || child.issue._tag === "Missing")) {
            const key = String(child.path)
            return child.issue._tag === "Unexpected"
              ? [{
                path: [...path, key],
                at: "key",
                message: `unknown key "${key}"${didYouMean(key, allowed)} (${label ?? (path.length === 0 ? "the top level" : formatPath(path))} allows: ${
                  allowed.join(", ")
                })`
              }]
              : [{ path, at: "container", message: `missing required key "${key}"${label ? ` for ${label}` : ""}` }]
          }
          return schemaIssues(child, path)
        })
      }
      if (SchemaAST.isUnion(issue.ast)) {
        // Optional fields decode as `T | undefined`; the undefined branch only adds noise.
        const members = children.filter((c) => !(c._tag === "Type" && c.ast._tag === "UndefinedKeyword"))
        if (members.length === 1) return schemaIssues(members[0] as ParseResult.ParseIssue, path)
        const chosen = pickMember(members, issue.actual)
        if (chosen !== undefined) return schemaIssues(chosen, path)
        return [{ path, at: "value", message: typeMessage(issue.ast, issue.actual, path) }]
      }
      return children.flatMap((child) => schemaIssues(child, path))
    }
    case "Refinement":
      return issue.kind === "From"
        ? schemaIssues(issue.issue, path)
        : [{ path, at: "value", message: refinementMessage(issue) }]
    case "Transformation":
      return schemaIssues(issue.issue, path)
    case "Type":
      return [{
        path,
        at: "value",
        message: issue.message ?? typeMessage(issue.ast, issue.actual, path)
      }]
    case "Missing": {
      const last = path[path.length - 1]
      return [{
        path: path.slice(0, -1),
        at: "container",
        message: typeof last === "number"
          ? `must list at least ${last + 1} item${last === 0 ? "" : "s"}`
          : `missing required key "${String(last)}"`
      }]
    }
    case "Unexpected":
      return [{ path, at: "key", message: `unknown key "${String(path[path.length - 1])}"` }]
    case "Forbidden":
      return [{ path, at: "value", message: ParseResult.TreeFormatter.formatIssueSync(issue) }]
  }
}

/**
 * Loads a `*.relavium.yaml` workflow from its text: YAML 1.2 core with no anchors, aliases, merge
 * keys, custom tags or duplicate keys; strict schema decoding (unknown keys are errors); then the
 * semantic and graph checks of `compileWorkflow`. Every problem is reported at `file:line:column`
 * with a document path, because a workflow file is the thing users edit by hand and a parse error
 * is the first thing they see.
 */
import { Either, ParseResult, Schema, SchemaAST } from "effect"
import { isAlias, isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, Scalar } from "yaml"
import type { Document } from "yaml"
import { documentDepth, scanNesting } from "./internal/nesting.js"
import { didYouMean, kindOf, orList, showValue, withArticle } from "./internal/text.js"
import { MAX_NESTING_DEPTH } from "./Limits.js"
import type { WorkflowPlan } from "./Plan.js"
import { WorkflowDocument } from "./Workflow.js"
import { compileWorkflow, formatPath } from "./WorkflowGraph.js"
import type { IssuePath, PathSegment } from "./WorkflowGraph.js"

/** Larger files are rejected before parsing: workflows are small, and YAML parsing is not free. */
export const MAX_WORKFLOW_BYTES = 2 * 1024 * 1024

export const LoadIssue = Schema.Struct({
  /** e.g. `workflow.nodes[2].branches[0].when`; empty for problems with the file as a whole. */
  path: Schema.String,
  line: Schema.Number,
  column: Schema.Number,
  message: Schema.String
})
export type LoadIssue = typeof LoadIssue.Type

export class WorkflowLoadError extends Schema.TaggedError<WorkflowLoadError>()("WorkflowLoadError", {
  file: Schema.String,
  issues: Schema.Array(LoadIssue)
}) {
  /** One line per issue: `file:line:column path: message`. */
  override get message(): string {
    return this.issues
      .map((issue) =>
        `${this.file}:${issue.line}:${issue.column} ${issue.path === "" ? "" : `${issue.path}: `}${issue.message}`
      )
      .join("\n")
  }
}

/** Parse, decode and compile a workflow file. */
export const parseWorkflow = (text: string, file: string): Either.Either<WorkflowPlan, WorkflowLoadError> =>
  Either.flatMap(loadDocument(text, file), ({ document, yaml, lines }) =>
    Either.mapLeft(compileWorkflow(document), (error) =>
      failure(
        file,
        error.issues.map((issue) =>
          locate(text, yaml, lines, issue.path, issue.at ?? "value", issue.message, issue.offset)
        )
      ))
  )

/** Parse and decode only — no semantic or graph checks. For tools that inspect broken workflows. */
export const decodeWorkflow = (text: string, file: string): Either.Either<WorkflowDocument, WorkflowLoadError> =>
  Either.map(loadDocument(text, file), ({ document }) => document)

// ---------------------------------------------------------------------------
// Stages
// ---------------------------------------------------------------------------

interface Loaded {
  readonly document: WorkflowDocument
  readonly yaml: Document.Parsed
  readonly lines: LineCounter
}

const failure = (file: string, issues: ReadonlyArray<LoadIssue>): WorkflowLoadError => {
  const seen = new Set<string>()
  const unique = issues.filter((issue) => {
    const key = `${issue.line}:${issue.column}:${issue.path}:${issue.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
  return new WorkflowLoadError({
    file,
    issues: [...unique].sort((a, b) => a.line - b.line || a.column - b.column)
  })
}

const utf8Length = (text: string): number => {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 4
      i++
    } else bytes += 3
  }
  return bytes
}

const decode = Schema.decodeUnknownEither(WorkflowDocument, { errors: "all", onExcessProperty: "error" })

const loadDocument = (text: string, file: string): Either.Either<Loaded, WorkflowLoadError> => {
  const at1 = (message: string): LoadIssue => ({ path: "", line: 1, column: 1, message })
  if (text.length > MAX_WORKFLOW_BYTES || utf8Length(text) > MAX_WORKFLOW_BYTES) {
    return Either.left(
      failure(file, [at1(`the file is larger than ${MAX_WORKFLOW_BYTES / 1024 / 1024} MiB; workflow files must be smaller`)])
    )
  }
  if (text.trim() === "") {
    return Either.left(failure(file, [at1(`the file is empty — a workflow needs schema_version: '1.0' and workflow:`)]))
  }
  // Before parsing: the YAML library recurses once per level and slows down with depth.
  const deep = scanNesting(text, 2 * MAX_NESTING_DEPTH + 1)
  if (deep !== undefined) {
    return Either.left(failure(file, [{ path: "", ...lineColumn(text, deep.offset), message: tooDeep }]))
  }
  const lines = new LineCounter()
  const yaml = parseDocument(text, {
    version: "1.2",
    schema: "core",
    merge: false,
    uniqueKeys: true,
    stringKeys: true,
    resolveKnownTags: false,
    prettyErrors: false,
    logLevel: "error",
    lineCounter: lines
  })
  const position = (offset: number) => {
    const { line, col } = lines.linePos(Math.max(0, offset))
    return { line, column: col }
  }
  // Unknown tags are reported below with their path, so their warning is redundant.
  const yamlProblems = [...yaml.errors, ...yaml.warnings.filter((w) => w.code !== "TAG_RESOLVE_FAILED")].map((
    e
  ): LoadIssue => ({
    path: e.code === "DUPLICATE_KEY" ? formatPath(keyPathAt(yaml, e.pos[0]) ?? []) : "",
    ...position(e.pos[0]),
    message: syntaxMessage(text, e.code, e.message, e.pos[0])
  }))
  if (yamlProblems.length > 0) return Either.left(failure(file, yamlProblems))

  const deepNode = documentDepth(yaml, MAX_NESTING_DEPTH)
  if (deepNode !== undefined) {
    return Either.left(
      failure(file, [{ path: formatPath(deepNode.path), ...position(deepNode.offset), message: tooDeep }])
    )
  }

  const forbidden = forbiddenConstructs(text, yaml).map((problem): LoadIssue => ({
    path: formatPath(problem.path),
    ...position(problem.offset),
    message: problem.message
  }))
  if (forbidden.length > 0) return Either.left(failure(file, forbidden))

  const raw: unknown = yaml.toJS()
  const decoded = decode(raw)
  if (Either.isRight(decoded)) return Either.right({ document: decoded.right, yaml, lines })

  const refAgents = refAgentIndices(raw)
  const issues = schemaIssues(decoded.left.issue, [])
    .filter((issue) => !(issue.path[1] === "agents" && refAgents.has(issue.path[2] as number)))
    .map((issue) => locate(text, yaml, lines, issue.path, issue.at, issue.message))
  for (const i of refAgents) {
    issues.push(
      locate(
        text,
        yaml,
        lines,
        ["workflow", "agents", i, "$ref"],
        "key",
        `"$ref" agents are not supported here — inline the agent (id, model, provider, system_prompt) in workflow.agents`
      )
    )
  }
  return Either.left(failure(file, issues))
}

const tooDeep =
  `mappings and lists are nested more than ${MAX_NESTING_DEPTH} levels deep here — a workflow needs far fewer; flatten this value`

/** 1-based line and column of `offset`, for problems found before the YAML is parsed. */
const lineColumn = (text: string, offset: number): { line: number; column: number } => {
  let line = 1
  let lineStart = 0
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++
    lineStart = i + 1
  }
  return { line, column: offset - lineStart + 1 }
}

const syntaxMessage = (text: string, code: string, message: string, offset: number): string => {
  switch (code) {
    case "DUPLICATE_KEY": {
      const key = /^["']?([^"':\n]*)/.exec(text.slice(offset))?.[1]?.trim()
      return key ? `duplicate key "${key}" — each key may appear once in a mapping` : `duplicate key in a mapping`
    }
    case "MULTIPLE_DOCS":
      return `the file contains more than one YAML document ("---"); a workflow file holds exactly one`
    default:
      return `YAML syntax error: ${message}`
  }
}

/** `agents[i]` entries written as `$ref`, reported once with a clear message instead of union noise. */
const refAgentIndices = (raw: unknown): Set<number> => {
  const out = new Set<number>()
  if (typeof raw !== "object" || raw === null) return out
  const workflow = (raw as Record<string, unknown>)["workflow"]
  if (typeof workflow !== "object" || workflow === null) return out
  const agents = (workflow as Record<string, unknown>)["agents"]
  if (!Array.isArray(agents)) return out
  agents.forEach((agent, i) => {
    if (typeof agent === "object" && agent !== null && Object.hasOwn(agent, "$ref")) out.add(i)
  })
  return out
}

// ---------------------------------------------------------------------------
// YAML features the format leaves out
// ---------------------------------------------------------------------------

const CORE_TAGS = new Set(
  ["str", "int", "float", "bool", "null", "map", "seq"].map((t) => `tag:yaml.org,2002:${t}`)
)

const forbiddenConstructs = (
  text: string,
  doc: Document.Parsed
): Array<{ readonly path: IssuePath; readonly offset: number; readonly message: string }> => {
  const problems: Array<{ path: IssuePath; offset: number; message: string }> = []
  const visit = (node: unknown, path: Array<PathSegment>) => {
    if (!isNode(node)) return
    const start = node.range?.[0] ?? 0
    if (isAlias(node)) {
      problems.push({
        path,
        offset: start,
        message: `aliases (*${node.source}) are not supported — write the value out in full`
      })
      return
    }
    if (node.anchor !== undefined) {
      const anchorAt = text.lastIndexOf(`&${node.anchor}`, start)
      problems.push({
        path,
        offset: anchorAt === -1 ? start : anchorAt,
        message: `anchors (&${node.anchor}) are not supported — write the value out in full`
      })
    }
    if (node.tag !== undefined && !CORE_TAGS.has(node.tag)) {
      const tagAt = text.lastIndexOf("!", start)
      problems.push({
        path,
        offset: tagAt === -1 ? start : tagAt,
        message: `the tag ${node.tag} is not supported — YAML tags are not part of the workflow format`
      })
    }
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = pair.key
        const name = isScalar(key) ? String(key.value) : "?"
        if (isScalar(key) && key.value === "<<" && key.type === Scalar.PLAIN) {
          problems.push({
            path: [...path, name],
            offset: key.range?.[0] ?? start,
            message: `merge keys (<<) are not supported — write the keys out in full`
          })
          continue
        }
        visit(key, [...path, name])
        visit(pair.value, [...path, name])
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, [...path, i]))
    }
  }
  visit(doc.contents, [])
  return problems
}

/** The path of the mapping key that starts at `offset` (for duplicate-key errors). */
const keyPathAt = (doc: Document.Parsed, offset: number): IssuePath | undefined => {
  const search = (node: unknown, path: Array<PathSegment>): IssuePath | undefined => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const name = isScalar(pair.key) ? String(pair.key.value) : "?"
        if (isNode(pair.key) && pair.key.range?.[0] === offset) return [...path, name]
        const found = search(pair.value, [...path, name])
        if (found !== undefined) return found
      }
    } else if (isSeq(node)) {
      for (let i = 0; i < node.items.length; i++) {
        const found = search(node.items[i], [...path, i])
        if (found !== undefined) return found
      }
    }
    return undefined
  }
  return search(doc.contents, [])
}

// ---------------------------------------------------------------------------
// Schema issues → messages
// ---------------------------------------------------------------------------

/** Where in the YAML an issue points: a mapping key, a value, or the mapping that lacks a key. */
type Target = "key" | "value" | "container"

interface RawIssue {
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

const schemaIssues = (issue: ParseResult.ParseIssue, path: IssuePath): Array<RawIssue> => {
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

// ---------------------------------------------------------------------------
// Paths → line:column
// ---------------------------------------------------------------------------

const locate = (
  text: string,
  doc: Document.Parsed,
  lines: LineCounter,
  path: IssuePath,
  at: Target,
  message: string,
  offset?: number
): LoadIssue => {
  let node: unknown = doc.contents
  let position = isNode(node) ? node.range?.[0] ?? 0 : 0
  let reached = true
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]
    const last = i === path.length - 1
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment))
      if (pair === undefined) {
        reached = false
        break
      }
      const keyStart = isNode(pair.key) ? pair.key.range?.[0] : undefined
      if (last && at === "key") {
        position = keyStart ?? position
        node = undefined
        break
      }
      node = pair.value
      position = (isNode(node) ? node.range?.[0] : undefined) ?? keyStart ?? position
    } else if (isSeq(node) && typeof segment === "number") {
      node = node.items[segment]
      if (!isNode(node)) {
        reached = false
        break
      }
      position = node.range?.[0] ?? position
    } else {
      reached = false
      break
    }
  }
  if (reached && offset !== undefined && isScalar(node) && typeof node.value === "string") {
    position = offsetInScalar(text, node as Scalar<string>, offset, lines) ?? position
  }
  const { line, col } = lines.linePos(position)
  return { path: formatPath(path), line, column: col, message }
}

/** Map an offset in a string value back to the source, which quoting and block indentation shift. */
const offsetInScalar = (text: string, node: Scalar<string>, offset: number, lines: LineCounter): number | undefined => {
  const range = node.range
  if (range === undefined || range === null) return undefined
  const value = node.value
  const source = text.slice(range[0], range[1])
  if (node.type === Scalar.BLOCK_LITERAL) {
    const before = value.slice(0, offset)
    const lineIndex = before.split("\n").length - 1
    const column = offset - (before.lastIndexOf("\n") + 1)
    const headerLine = lines.linePos(range[0]).line
    const contentStart = lines.lineStarts[headerLine]
    if (contentStart === undefined) return undefined
    const firstContent = /^( *)\S/m.exec(text.slice(contentStart, range[1]))
    const indent = firstContent?.[1]?.length ?? 0
    const lineStart = lines.lineStarts[headerLine + lineIndex]
    return lineStart === undefined ? undefined : lineStart + indent + column
  }
  const quoted = node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.QUOTE_SINGLE
  const inner = quoted ? source.slice(1, -1) : source
  if (inner.startsWith(value)) return range[0] + (quoted ? 1 : 0) + offset
  // Folded or escaped text: find the text at the offset in the source, trying shorter snippets
  // since folding may have joined the next line.
  const rest = value.slice(offset).split("\n")[0] ?? ""
  const close = rest.indexOf("}}")
  for (const snippet of [rest.slice(0, 24), close === -1 ? "" : rest.slice(0, close + 2), rest.slice(0, 8)]) {
    if (snippet.length < 2) continue
    const found = source.indexOf(snippet)
    if (found !== -1) return range[0] + found
  }
  return undefined
}

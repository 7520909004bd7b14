/**
 * Loads a `*.relavium.yaml` workflow from its text: YAML 1.2 core with no anchors, aliases, merge
 * keys, custom tags or duplicate keys; strict schema decoding (unknown keys are errors); then the
 * semantic and graph checks of `compileWorkflow`. Every problem is reported at `file:line:column`
 * with a document path, because a workflow file is the thing users edit by hand and a parse error
 * is the first thing they see.
 */
import { Either, Schema } from "effect"
import { isAlias, isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, Scalar } from "yaml"
import type { Document } from "yaml"
import { documentDepth, scanNesting } from "./internal/nesting.js"
import { readPlainYaml } from "./internal/plainYaml.js"
import { schemaIssues, type Target } from "./internal/schemaMessages.js"
import { MAX_NESTING_DEPTH } from "./Limits.js"
import type { WorkflowPlan } from "./Plan.js"
import { WorkflowDocument } from "./Workflow.js"
import { compileWorkflow, formatPath } from "./WorkflowGraph.js"
import type { IssuePath, PathSegment } from "./WorkflowGraph.js"

/** Larger files are rejected before parsing: workflows are small, and YAML parsing is not free. */
/** How workflow files are read: YAML 1.2 core schema, no merge keys, no custom tags, unique string keys. */
export const yamlOptions = {
  version: "1.2",
  schema: "core",
  merge: false,
  uniqueKeys: true,
  stringKeys: true,
  resolveKnownTags: false,
  prettyErrors: false
} as const

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

/**
 * Parse, decode and compile a workflow file. A file in the plain shape most workflows have is read
 * by the fast reader first (internal/plainYaml.ts); any problem at all, and any other shape, goes
 * through the full loader, which finds and locates every issue.
 */
export const parseWorkflow = (text: string, file: string): Either.Either<WorkflowPlan, WorkflowLoadError> => {
  const plain = readPlain(text)
  if (plain !== undefined) {
    const plan = compileWorkflow(plain)
    if (Either.isRight(plan)) return Either.right(plan.right)
  }
  return parseFully(text, file)
}

const parseFully = (text: string, file: string): Either.Either<WorkflowPlan, WorkflowLoadError> =>
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
export const decodeWorkflow = (text: string, file: string): Either.Either<WorkflowDocument, WorkflowLoadError> => {
  const plain = readPlain(text)
  return plain !== undefined ? Either.right(plain) : Either.map(loadDocument(text, file), ({ document }) => document)
}

/** The decoded document of a file within the size limit that the fast reader takes and that decodes; else undefined. */
const readPlain = (text: string): WorkflowDocument | undefined => {
  if (tooLarge(text)) return undefined
  const read = readPlainYaml(text)
  if (read === undefined) return undefined
  const decoded = decodeOrGiveUp(read.value)
  return Either.isRight(decoded) ? decoded.right : undefined
}

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

const tooLarge = (text: string): boolean => text.length > MAX_WORKFLOW_BYTES || utf8Length(text) > MAX_WORKFLOW_BYTES

const decode = Schema.decodeUnknownEither(WorkflowDocument, { errors: "all", onExcessProperty: "error" })
/** The same decoding, stopping at the first problem: the full loader then reports them all. */
const decodeOrGiveUp = Schema.decodeUnknownEither(WorkflowDocument, { errors: "first", onExcessProperty: "error" })

interface ParsedYaml {
  readonly yaml: Document.Parsed
  readonly lines: LineCounter
  readonly raw: unknown
}

/**
 * The YAML stage every hand-edited file of ours goes through: size limit, nesting limit, YAML 1.2
 * core syntax, no anchors, aliases, merge keys or custom tags; every problem located. `what` names
 * the document in messages ("a workflow needs …").
 */
const parseYaml = (
  text: string,
  file: string,
  what: { readonly noun: string; readonly needs: string }
): Either.Either<ParsedYaml, WorkflowLoadError> => {
  const at1 = (message: string): LoadIssue => ({ path: "", line: 1, column: 1, message })
  if (tooLarge(text)) {
    return Either.left(
      failure(file, [at1(`the file is larger than ${MAX_WORKFLOW_BYTES / 1024 / 1024} MiB; ${what.noun} files must be smaller`)])
    )
  }
  if (text.trim() === "") {
    return Either.left(failure(file, [at1(`the file is empty — ${what.needs}`)]))
  }
  // Before parsing: the YAML library recurses once per level and slows down with depth.
  const deep = scanNesting(text, 2 * MAX_NESTING_DEPTH + 1)
  if (deep !== undefined) {
    return Either.left(failure(file, [{ path: "", ...lineColumn(text, deep.offset), message: tooDeep(what.noun) }]))
  }
  const lines = new LineCounter()
  const yaml = parseDocument(text, { ...yamlOptions, logLevel: "error", lineCounter: lines })
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
      failure(file, [{ path: formatPath(deepNode.path), ...position(deepNode.offset), message: tooDeep(what.noun) }])
    )
  }

  const forbidden = forbiddenConstructs(text, yaml).map((problem): LoadIssue => ({
    path: formatPath(problem.path),
    ...position(problem.offset),
    message: problem.message
  }))
  if (forbidden.length > 0) return Either.left(failure(file, forbidden))

  return Either.right({ yaml, lines, raw: yaml.toJS() })
}

const loadDocument = (text: string, file: string): Either.Either<Loaded, WorkflowLoadError> =>
  Either.flatMap(parseYaml(text, file, workflowNoun), ({ yaml, lines, raw }) => decodeParsed(text, file, yaml, lines, raw))

const workflowNoun = { noun: "workflow", needs: "a workflow needs schema_version: '1.0' and workflow:" }

const decodeParsed = (
  text: string,
  file: string,
  yaml: Document.Parsed,
  lines: LineCounter,
  raw: unknown
): Either.Either<Loaded, WorkflowLoadError> => {
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

/**
 * Problems found after decoding (a name that is not in the workflow, say), located in `text` the
 * way decoding problems are: `file:line:column path: message`. `text` must already parse.
 */
export const locateIssues = (
  text: string,
  file: string,
  issues: ReadonlyArray<{ readonly path: IssuePath; readonly message: string; readonly at?: "key" | "value" }>
): WorkflowLoadError => {
  const lines = new LineCounter()
  const yaml = parseDocument(text, { ...yamlOptions, logLevel: "silent", lineCounter: lines })
  return failure(file, issues.map((issue) => locate(text, yaml, lines, issue.path, issue.at ?? "value", issue.message)))
}

const tooDeep = (noun: string) =>
  `mappings and lists are nested more than ${MAX_NESTING_DEPTH} levels deep here — a ${noun} needs far fewer; flatten this value`

/**
 * Decodes another YAML document of ours (a scenario file, say) exactly as a workflow is read: the
 * same YAML rules and limits, strict mappings (an unknown key is an error with a "did you mean"),
 * and every problem reported as `file:line:column path: message`.
 */
export const decodeYaml = <A, I>(
  schema: Schema.Schema<A, I>,
  text: string,
  file: string,
  what: { readonly noun: string; readonly needs: string }
): Either.Either<A, WorkflowLoadError> =>
  Either.flatMap(parseYaml(text, file, what), ({ yaml, lines, raw }) => {
    const decoded = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(raw)
    if (Either.isRight(decoded)) return Either.right(decoded.right)
    return Either.left(
      failure(
        file,
        schemaIssues(decoded.left.issue, []).map((issue) => locate(text, yaml, lines, issue.path, issue.at, issue.message))
      )
    )
  })

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

/**
 * The `{{ … }}` template language of workflow text fields (context values, prompts, gate
 * messages, `save_to`): parsing into literal and reference segments, listing what a template
 * reads (so the graph compiler can add data edges and reject dangling references before a run),
 * and rendering against run values. Rendering is an `Effect` only because the `read_file` filter
 * needs the host's file reader; everything else here is pure.
 */
import { Effect, Either, Schema } from "effect"

// ---------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------

/** One step into a value after the reference root: a property name or an array index. */
export type PathSegment = string | number

export type Filter =
  | { readonly name: "json" }
  | { readonly name: "length" }
  | { readonly name: "read_file" }
  | { readonly name: "default"; readonly value: string | number | boolean }

export type FilterName = Filter["name"]
export const FilterNames: ReadonlyArray<FilterName> = ["json", "length", "default", "read_file"]

interface ReferenceBase {
  /** Properties and indices applied to the root value, e.g. `.b[0]` → `["b", 0]`. */
  readonly path: ReadonlyArray<PathSegment>
  /** Applied left to right after the path. */
  readonly filters: ReadonlyArray<Filter>
  /** The whole `{{ … }}` occurrence as written, for error messages. */
  readonly source: string
  /** Offset of the opening `{{` in the template text. */
  readonly offset: number
}

export interface InputReference extends ReferenceBase {
  readonly root: "inputs"
  readonly name: string
}
export interface ContextReference extends ReferenceBase {
  readonly root: "ctx"
  readonly name: string
}
export interface OutputReference extends ReferenceBase {
  readonly root: "run.outputs"
  readonly nodeId: string
}
export interface RunIdReference extends ReferenceBase {
  readonly root: "run.id"
}
export type Reference = InputReference | ContextReference | OutputReference | RunIdReference
export type ReferenceRoot = Reference["root"]

export type Segment =
  | { readonly _tag: "Literal"; readonly text: string }
  | { readonly _tag: "Reference"; readonly reference: Reference }

/** A template that does not parse; `offset` indexes the template text. */
export class TemplateError extends Schema.TaggedError<TemplateError>()("TemplateError", {
  message: Schema.String,
  offset: Schema.Number
}) {}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

const NAME_CHAR = /[A-Za-z0-9_-]/
const WHITESPACE = /\s/
const EXPECTED_ROOTS = `inputs.<name>, ctx.<key>, run.outputs["<node-id>"] or run.id`

/** Signals a syntax error from deep inside the recursive-descent parser; caught in `parseTemplate`. */
interface Failure {
  readonly failure: TemplateError
}
const fail = (message: string, offset: number): Failure => ({
  failure: new TemplateError({ message, offset })
})
const isFailure = (u: unknown): u is Failure =>
  typeof u === "object" && u !== null && "failure" in u && u.failure instanceof TemplateError

/** A cursor over the inner text of one `{{ … }}`; offsets stay absolute so errors point into the field. */
interface Cursor {
  readonly text: string
  pos: number
  readonly end: number
}

const peek = (c: Cursor, ahead = 0): string | undefined =>
  c.pos + ahead < c.end ? c.text[c.pos + ahead] : undefined

const skipSpace = (c: Cursor): void => {
  while (c.pos < c.end && WHITESPACE.test(c.text[c.pos] as string)) c.pos++
}

const describeAt = (c: Cursor): string => {
  const ch = peek(c)
  return ch === undefined ? "the end of the reference" : `"${ch}"`
}

const expectChar = (c: Cursor, ch: string, what: string): void => {
  if (peek(c) !== ch) throw fail(`expected ${what} but found ${describeAt(c)}`, c.pos)
  c.pos++
}

const readName = (c: Cursor, what: string): string => {
  const start = c.pos
  while (c.pos < c.end && NAME_CHAR.test(c.text[c.pos] as string)) c.pos++
  if (c.pos === start) throw fail(`expected ${what} but found ${describeAt(c)}`, start)
  return c.text.slice(start, c.pos)
}

const readWord = (c: Cursor): string => {
  const start = c.pos
  while (c.pos < c.end && /[A-Za-z0-9_$]/.test(c.text[c.pos] as string)) c.pos++
  return c.text.slice(start, c.pos)
}

/** A single- or double-quoted string with backslash escapes for the quote and backslash. */
const readQuoted = (c: Cursor): string => {
  const quote = peek(c)
  const start = c.pos
  c.pos++
  let out = ""
  while (c.pos < c.end) {
    const ch = c.text[c.pos] as string
    if (ch === "\\" && c.pos + 1 < c.end) {
      out += c.text[c.pos + 1]
      c.pos += 2
      continue
    }
    if (ch === quote) {
      c.pos++
      return out
    }
    out += ch
    c.pos++
  }
  throw fail(`unterminated string (missing closing ${quote})`, start)
}

const readBracket = (c: Cursor): PathSegment => {
  const open = c.pos
  c.pos++ // "["
  skipSpace(c)
  const ch = peek(c)
  let segment: PathSegment
  if (ch === "\"" || ch === "'") {
    segment = readQuoted(c)
  } else {
    const start = c.pos
    while (c.pos < c.end && /[0-9]/.test(c.text[c.pos] as string)) c.pos++
    if (c.pos === start) {
      throw fail(`expected an index or a quoted key after "[" but found ${describeAt(c)}`, c.pos)
    }
    segment = Number(c.text.slice(start, c.pos))
  }
  skipSpace(c)
  if (peek(c) !== "]") throw fail(`expected "]" to close the "[" opened here`, open)
  c.pos++
  return segment
}

const readPath = (c: Cursor): Array<PathSegment> => {
  const path: Array<PathSegment> = []
  for (;;) {
    const ch = peek(c)
    if (ch === ".") {
      c.pos++
      path.push(readName(c, "a property name after \".\""))
    } else if (ch === "[") {
      path.push(readBracket(c))
    } else {
      return path
    }
  }
}

type Head =
  | { readonly root: "inputs" | "ctx"; readonly name: string }
  | { readonly root: "run.outputs"; readonly nodeId: string }
  | { readonly root: "run.id" }

const readHead = (c: Cursor): Head => {
  const start = c.pos
  const word = readWord(c)
  if (word === "inputs" || word === "ctx") {
    if (peek(c) !== ".") {
      throw fail(`"${word}" must be followed by ".<${word === "inputs" ? "name" : "key"}>"`, c.pos)
    }
    c.pos++
    return { root: word, name: readName(c, `${word === "inputs" ? "an input name" : "a context key"}`) }
  }
  if (word === "run") {
    expectChar(c, ".", "\"run.outputs\" or \"run.id\"")
    const member = readWord(c)
    if (member === "id") return { root: "run.id" }
    if (member !== "outputs") {
      throw fail(`unknown reference "run.${member}" — expected run.outputs["<node-id>"] or run.id`, start)
    }
    const ch = peek(c)
    if (ch === "[") {
      const open = c.pos
      const key = readBracket(c)
      if (typeof key !== "string") throw fail(`run.outputs[…] needs a quoted node id, e.g. run.outputs["summarize"]`, open)
      return { root: "run.outputs", nodeId: key }
    }
    if (ch === ".") {
      c.pos++
      return { root: "run.outputs", nodeId: readName(c, "a node id after \"run.outputs.\"") }
    }
    throw fail(`run.outputs must name a node, e.g. run.outputs["summarize"]`, c.pos)
  }
  if (word === "secrets") {
    throw fail(`"secrets" is not a template namespace — declare a secret input instead`, start)
  }
  while (c.pos < c.end && !WHITESPACE.test(c.text[c.pos] as string) && c.text[c.pos] !== "|") c.pos++
  const shown = c.text.slice(start, c.pos)
  throw fail(
    shown.length === 0
      ? `empty reference — expected ${EXPECTED_ROOTS}`
      : `unknown reference "${shown}" — expected ${EXPECTED_ROOTS}`,
    start
  )
}

const readLiteral = (c: Cursor): string | number | boolean => {
  const ch = peek(c)
  if (ch === "\"" || ch === "'") return readQuoted(c)
  const start = c.pos
  while (c.pos < c.end && /[A-Za-z0-9_.+-]/.test(c.text[c.pos] as string)) c.pos++
  const word = c.text.slice(start, c.pos)
  if (word === "true") return true
  if (word === "false") return false
  if (/^-?\d+(\.\d+)?$/.test(word)) return Number(word)
  throw fail(`default(…) takes a quoted string, a number, true or false, e.g. default("none")`, start)
}

const readFilter = (c: Cursor): Filter => {
  const start = c.pos
  const name = readWord(c)
  if (name === "json" || name === "length" || name === "read_file") {
    skipSpace(c)
    if (peek(c) === "(") throw fail(`filter "${name}" takes no arguments`, c.pos)
    return { name }
  }
  if (name === "default") {
    skipSpace(c)
    if (peek(c) !== "(") throw fail(`filter "default" needs a value, e.g. default("none")`, c.pos)
    c.pos++
    skipSpace(c)
    const value = readLiteral(c)
    skipSpace(c)
    if (peek(c) === ",") throw fail(`filter "default" takes exactly one value`, c.pos)
    expectChar(c, ")", "\")\"")
    return { name, value }
  }
  throw fail(
    name.length === 0
      ? `expected a filter name after "|" (one of ${FilterNames.join(", ")})`
      : `unknown filter "${name}" (expected one of ${FilterNames.join(", ")})`,
    start
  )
}

const parseReference = (text: string, open: number, close: number): Reference => {
  const c: Cursor = { text, pos: open + 2, end: close }
  skipSpace(c)
  const head = readHead(c)
  const path = readPath(c)
  const filters: Array<Filter> = []
  skipSpace(c)
  while (peek(c) === "|") {
    c.pos++
    skipSpace(c)
    filters.push(readFilter(c))
    skipSpace(c)
  }
  if (c.pos < c.end) {
    throw fail(`unexpected ${describeAt(c)} in reference — separate filters with "|"`, c.pos)
  }
  const base = { path, filters, source: text.slice(open, close + 2), offset: open }
  if (head.root === "run.id" && path.length > 0) {
    throw fail(`run.id is a plain string and has no properties`, open)
  }
  return { ...base, ...head }
}

/** The offset of the `}}` closing the `{{` at `open`, ignoring braces inside quoted strings. */
const findClose = (text: string, open: number): number => {
  let quote: string | undefined
  for (let i = open + 2; i < text.length; i++) {
    const ch = text[i]
    if (quote !== undefined) {
      if (ch === "\\") i++
      else if (ch === quote) quote = undefined
    } else if (ch === "\"" || ch === "'") {
      quote = ch
    } else if (ch === "}" && text[i + 1] === "}") {
      return i
    } else if (ch === "{" && text[i + 1] === "{") {
      return -1 // a second "{{" before any "}}": the first one is the unclosed one
    }
  }
  // Still inside a quote at the end: close at the first "}}" so the parser reports the bad string.
  return quote === undefined ? -1 : text.indexOf("}}", open + 2)
}

/** Split a template into literal text and references, or report the first syntax error. */
export const parseTemplate = (text: string): Either.Either<ReadonlyArray<Segment>, TemplateError> => {
  const segments: Array<Segment> = []
  let pos = 0
  try {
    while (pos < text.length) {
      const open = text.indexOf("{{", pos)
      if (open === -1) {
        segments.push({ _tag: "Literal", text: text.slice(pos) })
        break
      }
      if (open > pos) segments.push({ _tag: "Literal", text: text.slice(pos, open) })
      const close = findClose(text, open)
      if (close === -1) throw fail(`"{{" is never closed with "}}"`, open)
      segments.push({ _tag: "Reference", reference: parseReference(text, open, close) })
      pos = close + 2
    }
  } catch (e) {
    if (isFailure(e)) return Either.left(e.failure)
    throw e
  }
  return Either.right(segments)
}

// ---------------------------------------------------------------------------
// What a template reads
// ---------------------------------------------------------------------------

/** Names a template reads, each listed once in order of first appearance. */
export interface TemplateReads {
  readonly inputs: ReadonlyArray<string>
  readonly ctx: ReadonlyArray<string>
  /** Node ids read through `run.outputs`. */
  readonly outputs: ReadonlyArray<string>
  readonly runId: boolean
}

export const readsOf = (segments: ReadonlyArray<Segment>): TemplateReads => {
  const inputs = new Set<string>()
  const ctx = new Set<string>()
  const outputs = new Set<string>()
  let runId = false
  for (const segment of segments) {
    if (segment._tag === "Literal") continue
    const ref = segment.reference
    switch (ref.root) {
      case "inputs":
        inputs.add(ref.name)
        break
      case "ctx":
        ctx.add(ref.name)
        break
      case "run.outputs":
        outputs.add(ref.nodeId)
        break
      case "run.id":
        runId = true
        break
    }
  }
  return { inputs: [...inputs], ctx: [...ctx], outputs: [...outputs], runId }
}

/** Which inputs, context keys and node outputs a template text reads. */
export const templateReferences = (text: string): Either.Either<TemplateReads, TemplateError> =>
  Either.map(parseTemplate(text), readsOf)

export const references = (segments: ReadonlyArray<Segment>): ReadonlyArray<Reference> =>
  segments.flatMap((s) => (s._tag === "Reference" ? [s.reference] : []))

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

export const RenderErrorCode = Schema.Literal(
  "unresolved_reference",
  "not_text",
  "filter_type",
  "read_file_unavailable"
)
export type RenderErrorCode = typeof RenderErrorCode.Type

/** A reference that could not be turned into text; `reference` is the `{{ … }}` as written. */
export class TemplateRenderError extends Schema.TaggedError<TemplateRenderError>()("TemplateRenderError", {
  code: RenderErrorCode,
  message: Schema.String,
  reference: Schema.String
}) {}

/** The values a template can reach, by root. */
export interface TemplateScope {
  readonly inputs: Readonly<Record<string, unknown>>
  readonly ctx: Readonly<Record<string, unknown>>
  readonly outputs: Readonly<Record<string, unknown>>
  readonly runId?: string | undefined
}

/** The value at a reference's root in `scope` (for `RenderContext.resolve`). */
export const resolveIn = (scope: TemplateScope) => (ref: Reference): unknown => {
  switch (ref.root) {
    case "inputs":
      return scope.inputs[ref.name]
    case "ctx":
      return scope.ctx[ref.name]
    case "run.outputs":
      return scope.outputs[ref.nodeId]
    case "run.id":
      return scope.runId
  }
}

export interface RenderContext<E, R> {
  /**
   * The value at a reference's root — the input, the context entry, the node's output or the
   * run id — or `undefined` when there is none. The path and filters are applied here, not by
   * the caller, so every surface navigates values the same way.
   */
  readonly resolve: (reference: Reference) => unknown
  /** Reads a workspace file for `| read_file`; absent where files must not be read. */
  readonly readFile?: ((path: string) => Effect.Effect<string, E, R>) | undefined
}

/** Own properties and indices only, so a path can never reach `constructor` or a prototype. */
export const valueAt = (value: unknown, path: ReadonlyArray<PathSegment>): unknown => {
  let current = value
  for (const step of path) {
    if (current === null || typeof current !== "object") return undefined
    if (typeof step === "number") {
      if (!Array.isArray(current) || !Object.hasOwn(current, step)) return undefined
      current = current[step]
    } else {
      if (Array.isArray(current) || !Object.hasOwn(current, step)) return undefined
      current = (current as Record<string, unknown>)[step]
    }
  }
  return current
}

const renderError = (code: RenderErrorCode, message: string, ref: Reference) =>
  new TemplateRenderError({ code, message, reference: ref.source })

const unresolved = (ref: Reference) =>
  renderError(
    "unresolved_reference",
    `${ref.source} has no value — check the reference or add | default("…")`,
    ref
  )

const kindOf = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "a list" : typeof value === "object" ? "an object" : `a ${typeof value}`

const applyFilter = <E, R>(
  value: unknown,
  filter: Filter,
  ref: Reference,
  context: RenderContext<E, R>
): Effect.Effect<unknown, TemplateRenderError | E, R> => {
  if (filter.name === "default") {
    return Effect.succeed(value === undefined || value === null ? filter.value : value)
  }
  if (value === undefined || value === null) return Effect.fail(unresolved(ref))
  switch (filter.name) {
    case "json": {
      const text = safeJson(value)
      return text === undefined
        ? Effect.fail(renderError("filter_type", `${ref.source}: the value cannot be written as JSON`, ref))
        : Effect.succeed(text)
    }
    case "length":
      if (typeof value === "string" || Array.isArray(value)) return Effect.succeed(value.length)
      if (typeof value === "object") return Effect.succeed(Object.keys(value).length)
      return Effect.fail(
        renderError("filter_type", `${ref.source}: | length needs a string, list or object, got ${kindOf(value)}`, ref)
      )
    case "read_file": {
      if (typeof value !== "string") {
        return Effect.fail(
          renderError("filter_type", `${ref.source}: | read_file needs a file path string, got ${kindOf(value)}`, ref)
        )
      }
      const readFile = context.readFile
      if (readFile === undefined) {
        return Effect.fail(
          renderError("read_file_unavailable", `${ref.source}: | read_file cannot be used here`, ref)
        )
      }
      return readFile(value)
    }
  }
}

const safeJson = (value: unknown): string | undefined => {
  try {
    return JSON.stringify(value, null, 2)
  } catch {
    return undefined
  }
}

const toText = (value: unknown, ref: Reference): Either.Either<string, TemplateRenderError> => {
  if (value === undefined || value === null) return Either.left(unresolved(ref))
  if (typeof value === "string") return Either.right(value)
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return Either.right(String(value))
  }
  return Either.left(
    renderError("not_text", `${ref.source} is ${kindOf(value)} — add | json to insert it as text`, ref)
  )
}

/** The text of one reference: root value, then path, then filters, then the text rules. */
export const renderReference = <E = never, R = never>(
  ref: Reference,
  context: RenderContext<E, R>
): Effect.Effect<string, TemplateRenderError | E, R> =>
  Effect.gen(function*() {
    let value = valueAt(context.resolve(ref), ref.path)
    for (const filter of ref.filters) {
      value = yield* applyFilter(value, filter, ref, context)
    }
    return yield* toText(value, ref)
  })

/**
 * Render parsed segments. Objects and lists need `| json`; a missing or null value needs
 * `| default(…)`; strings are inserted as they are and numbers and booleans via `String`.
 */
export const renderTemplate = <E = never, R = never>(
  segments: ReadonlyArray<Segment>,
  context: RenderContext<E, R>
): Effect.Effect<string, TemplateRenderError | E, R> =>
  Effect.gen(function*() {
    let out = ""
    for (const segment of segments) {
      out += segment._tag === "Literal" ? segment.text : yield* renderReference(segment.reference, context)
    }
    return out
  })

/** Parse and render in one step, for callers holding the raw field text. */
export const renderText = <E = never, R = never>(
  text: string,
  context: RenderContext<E, R>
): Effect.Effect<string, TemplateError | TemplateRenderError | E, R> =>
  Effect.flatMap(parseTemplate(text), (segments) => renderTemplate(segments, context))

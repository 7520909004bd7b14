/**
 * A fast reader for the plain shape most workflow files have: block mappings and sequences,
 * one-line flow collections, one-line quoted and plain scalars, literal and folded block scalars,
 * comments. It returns what the YAML library's `toJS()` would (YAML 1.2 core schema, string keys)
 * or `undefined` for anything else — anchors, tags, multi-line flow or quoted scalars, duplicate
 * keys, tabs, document markers, deep nesting — and then the full loader (WorkflowYaml.ts) reads
 * the file and reports every problem at its line. It never reports an error itself.
 *
 * The YAML library builds a concrete syntax tree with source ranges for every token, which costs
 * about a second for a 10,000-node workflow; this reader needs none of that when the file is fine.
 */

/** Nesting beyond this goes to the full loader, which measures and limits it (Limits.ts). */
const MAX_DEPTH = 24

interface Line {
  readonly indent: number
  /** The line without its indentation. */
  readonly text: string
}

/** Thrown inside the reader when the text leaves the supported shape; never escapes it. */
class Unsupported {}
const unsupported = (): never => {
  throw new Unsupported()
}

// Characters that make the reader step aside: control characters, tabs, CR, a byte-order mark.
// eslint-disable-next-line no-control-regex
const AWKWARD = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\ufeff]/
const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$./-]*$/
// Keys the core schema would read as something other than a string when it stands alone.
const SPECIAL_KEY = /^(?:[Nn]ull|NULL|[Tt]rue|TRUE|[Ff]alse|FALSE)$/
// A plain scalar may not start with an indicator (nor with "- ", "? ", ": ").
const INDICATOR_START = /^(?:[[\]{},#&*!|>'"%@`?:]|-(?: |$))/

const INT = /^[-+]?[0-9]+$/
const OCT = /^0o[0-7]+$/
const HEX = /^0x[0-9a-fA-F]+$/
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/
const FLOAT_SPECIAL = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/

/** A plain scalar's value under the YAML 1.2 core schema, as the YAML library resolves it. */
const resolvePlain = (s: string): unknown => {
  if (s === "" || s === "~" || s === "null" || s === "Null" || s === "NULL") return null
  if (s === "true" || s === "True" || s === "TRUE") return true
  if (s === "false" || s === "False" || s === "FALSE") return false
  const c = s.charCodeAt(0)
  // Only text starting with a digit, a sign or a dot can be a number.
  if (!((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46)) return s
  if (OCT.test(s)) return parseInt(s.slice(2), 8)
  if (INT.test(s)) return parseInt(s, 10)
  if (HEX.test(s)) return parseInt(s.slice(2), 16)
  if (FLOAT_EXP.test(s) || FLOAT.test(s)) return parseFloat(s)
  if (FLOAT_SPECIAL.test(s)) return s.slice(-3).toLowerCase() === "nan" ? NaN : s[0] === "-" ? -Infinity : Infinity
  return s
}

const ESCAPES: Record<string, string> = {
  "0": "\0",
  a: "\x07",
  b: "\b",
  t: "\t",
  n: "\n",
  v: "\v",
  f: "\f",
  r: "\r",
  e: "\x1b",
  " ": " ",
  "\"": "\"",
  "/": "/",
  "\\": "\\"
}

/** A quoted scalar starting at `at` (on the quote) and ending on the same line: its value and the index after it. */
const quoted = (line: string, at: number): { readonly value: string; readonly end: number } => {
  const quote = line[at]
  let out = ""
  let i = at + 1
  for (;;) {
    if (i >= line.length) return unsupported()
    const ch = line[i] as string
    if (quote === "'") {
      if (ch === "'") {
        if (line[i + 1] === "'") {
          out += "'"
          i += 2
          continue
        }
        return { value: out, end: i + 1 }
      }
      out += ch
      i++
      continue
    }
    if (ch === "\"") return { value: out, end: i + 1 }
    if (ch !== "\\") {
      out += ch
      i++
      continue
    }
    const next = line[i + 1] as string | undefined
    if (next === undefined) return unsupported()
    const simple = ESCAPES[next]
    if (simple !== undefined) {
      out += simple
      i += 2
      continue
    }
    const width = next === "x" ? 2 : next === "u" ? 4 : next === "U" ? 8 : 0
    const hex = line.slice(i + 2, i + 2 + width)
    if (width === 0 || hex.length !== width || !/^[0-9a-fA-F]+$/.test(hex)) return unsupported()
    const code = parseInt(hex, 16)
    // Lone surrogates and code points past Unicode go to the full loader.
    if ((code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) return unsupported()
    out += String.fromCodePoint(code)
    i += 2 + width
  }
}

/** Only spaces, or spaces then a comment, from `at` to the end of the line. */
const restIsBlank = (line: string, at: number): boolean => {
  for (let i = at; i < line.length; i++) {
    const ch = line[i]
    if (ch === "#") return i > at || at === 0 || line[at - 1] === " "
    if (ch !== " ") return false
  }
  return true
}

const skipSpaces = (line: string, at: number): number => {
  while (line[at] === " ") at++
  return at
}

/** A plain scalar inside a flow collection: up to `,`, `]`, `}`; no `: `, no comment. */
const flowPlain = (line: string, at: number): { readonly value: unknown; readonly end: number } => {
  let end = at
  while (end < line.length && !",]}[{".includes(line[end] as string)) {
    if (line[end] === "#" || (line[end] === ":" && " ,]}".includes(line[end + 1] ?? " "))) return unsupported()
    end++
  }
  const source = line.slice(at, end).trim()
  if (source === "" || INDICATOR_START.test(source)) return unsupported()
  return { value: resolvePlain(source), end }
}

/** A flow collection (`[…]` or `{…}`) starting at `at` and closed on the same line. */
const flow = (line: string, at: number, depth: number): { readonly value: unknown; readonly end: number } => {
  if (depth > MAX_DEPTH) return unsupported()
  const isMap = line[at] === "{"
  const close = isMap ? "}" : "]"
  const items: Array<unknown> = []
  const map: Record<string, unknown> = {}
  let i = skipSpaces(line, at + 1)
  const item = (from: number): { readonly value: unknown; readonly end: number } => {
    const ch = line[from]
    if (ch === "{" || ch === "[") return flow(line, from, depth + 1)
    if (ch === "'" || ch === "\"") return quoted(line, from)
    return flowPlain(line, from)
  }
  while (line[i] !== close) {
    if (i >= line.length) return unsupported()
    if (isMap) {
      const ch = line[i]
      let key: string
      if (ch === "'" || ch === "\"") {
        const k = quoted(line, i)
        key = k.value
        i = k.end
      } else {
        const colon = line.indexOf(":", i)
        if (colon === -1) return unsupported()
        key = line.slice(i, colon)
        if (!PLAIN_KEY.test(key) || SPECIAL_KEY.test(key)) return unsupported()
        i = colon
      }
      if (line[i] !== ":" || line[i + 1] !== " " || key === "__proto__" || Object.hasOwn(map, key)) return unsupported()
      const value = item(skipSpaces(line, i + 1))
      map[key] = value.value
      i = value.end
    } else {
      const value = item(i)
      items.push(value.value)
      i = value.end
    }
    i = skipSpaces(line, i)
    if (line[i] === ",") i = skipSpaces(line, i + 1)
    else if (line[i] !== close) return unsupported()
  }
  return { value: isMap ? map : items, end: i + 1 }
}

/** Reads the block structure line by line; `at` is the next line to read. */
class Reader {
  private at = 0
  constructor(
    private readonly lines: Array<Line | undefined>,
    private readonly raw: ReadonlyArray<string>,
    /** Whether the text's last line ends with a newline (`raw` then leaves out the empty tail). */
    private readonly endsWithNewline: boolean
  ) {}

  /** The next line with content (not blank, not only a comment), skipping the others. */
  private peek(): Line | undefined {
    while (this.at < this.lines.length) {
      const line = this.lines[this.at]
      if (line !== undefined) return line
      this.at++
    }
    return undefined
  }

  document(): unknown {
    const first = this.peek()
    if (first === undefined) return unsupported()
    const value = this.node(first.indent, 0)
    if (this.peek() !== undefined) return unsupported()
    return value
  }

  private node(indent: number, depth: number): unknown {
    if (depth > MAX_DEPTH) return unsupported()
    const line = this.peek()!
    return isSeqItem(line.text) ? this.seq(indent, depth) : this.map(indent, depth)
  }

  private map(indent: number, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    for (let line = this.peek(); line !== undefined && line.indent >= indent; line = this.peek()) {
      if (line.indent > indent || isSeqItem(line.text)) return unsupported()
      const { key, rest } = keyOf(line.text)
      if (key === "__proto__" || key === "<<" || Object.hasOwn(out, key)) return unsupported()
      this.at++
      out[key] = this.value(line.text, rest, indent, depth, true)
    }
    return out
  }

  private seq(indent: number, depth: number): Array<unknown> {
    const out: Array<unknown> = []
    for (let line = this.peek(); line !== undefined && line.indent >= indent; line = this.peek()) {
      if (line.indent > indent) return unsupported()
      // A list at its key's indentation ends at the key's next sibling; the caller checks that line.
      if (!isSeqItem(line.text)) break
      const column = skipSpaces(line.text, 1)
      const rest = line.text.slice(column)
      if (rest !== "" && (isSeqItem(rest) || keyAt(rest) !== undefined)) {
        // "- key: value" or "- - item": the rest of the line is a node indented to its column.
        this.lines[this.at] = { indent: indent + column, text: rest }
        out.push(this.node(indent + column, depth + 1))
        continue
      }
      this.at++
      out.push(this.value(line.text, column, indent, depth, false))
    }
    return out
  }

  /** The value after `key:` or `- ` that starts at `from` in `text`; `indent` is the entry's. */
  private value(text: string, from: number, indent: number, depth: number, inMap: boolean): unknown {
    const at = skipSpaces(text, from)
    // Nothing but a comment after `key:` / `- ` (both are followed by a space when anything follows).
    if (at === text.length || text[at] === "#") {
      const next = this.peek()
      if (next === undefined || next.indent < indent) return null
      if (next.indent > indent) return this.node(next.indent, depth + 1)
      // A sequence may sit at its key's own indentation; anything else there is the next entry.
      return inMap && isSeqItem(next.text) ? this.seq(indent, depth + 1) : null
    }
    const ch = text[at]
    if (ch === "|" || ch === ">") return this.blockScalar(text, at, indent)
    let value: unknown
    let end: number
    if (ch === "{" || ch === "[") ({ value, end } = flow(text, at, depth + 1))
    else if (ch === "'" || ch === "\"") ({ value, end } = quoted(text, at))
    else {
      const comment = text.indexOf(" #", at)
      const source = (comment === -1 ? text.slice(at) : text.slice(at, comment)).trim()
      if (INDICATOR_START.test(source) || source.includes(": ") || source.endsWith(":")) return unsupported()
      value = resolvePlain(source)
      end = text.length
    }
    if (!restIsBlank(text, end)) return unsupported()
    // A deeper line right after a one-line value would continue it: not this reader's shape.
    const next = this.peek()
    if (next !== undefined && next.indent > indent) return unsupported()
    return value
  }

  /** `|`, `|-`, `|+`, `>`, `>-`, `>+`: the raw lines after the header, indented past `indent`. */
  private blockScalar(text: string, at: number, indent: number): string {
    const chomp = text[at + 1] === "-" || text[at + 1] === "+" ? text[at + 1] : ""
    if (!restIsBlank(text, at + 1 + chomp.length)) return unsupported()
    const folded = text[at] === ">"
    const body: Array<string> = []
    let contentIndent = -1
    let i = this.at
    for (; i < this.raw.length; i++) {
      const raw = this.raw[i] as string
      const spaces = skipSpaces(raw, 0)
      if (spaces === raw.length) {
        body.push(raw)
        continue
      }
      if (contentIndent === -1) {
        if (spaces <= indent) break
        contentIndent = spaces
      }
      if (spaces < contentIndent) break
      body.push(raw)
    }
    // The last line of the file must end with a newline, and blank lines past the content indent
    // before or after the content (which YAML treats specially) go to the full loader.
    if ((i === this.raw.length && !this.endsWithNewline) || contentIndent === -1) return unsupported()
    let last = body.length
    while (last > 0 && skipSpaces(body[last - 1]!, 0) === body[last - 1]!.length) last--
    let first = 0
    while (skipSpaces(body[first]!, 0) === body[first]!.length) first++
    if (body.some((l, k) => (k < first || k >= last) && l.length > contentIndent)) return unsupported()
    const content = body.slice(first, last).map((l) => l.slice(contentIndent))
    const leading = "\n".repeat(first)
    let value: string
    if (!folded) value = leading + content.join("\n")
    else {
      // Folding: a single line break between text lines becomes a space; n + 1 breaks keep n.
      if (first > 0 || content.some((l) => l.startsWith(" "))) return unsupported()
      value = content[0]!
      let empties = 0
      for (const l of content.slice(1)) {
        if (l === "") empties++
        else {
          value += empties === 0 ? ` ${l}` : `${"\n".repeat(empties)}${l}`
          empties = 0
        }
      }
    }
    const trailing = body.length - last
    value += chomp === "-" ? "" : chomp === "+" ? "\n".repeat(1 + trailing) : "\n"
    this.at = i
    return value
  }
}

const isSeqItem = (text: string): boolean => text[0] === "-" && (text.length === 1 || text[1] === " ")

/** `key: …` or `key:` at the start of `text`: the key and where its value starts; undefined if it is not one. */
const keyAt = (text: string): { readonly key: string; readonly rest: number } | undefined => {
  let key: string
  let i: number
  const first = text[0]
  if (first === "'" || first === "\"") {
    const k = quoted(text, 0)
    key = k.value
    i = k.end
  } else {
    // Cheap refusals first: a flow collection or a scalar in a list is far more common than a key.
    if (first === "{" || first === "[" || first === undefined) return undefined
    i = text.indexOf(":")
    if (i === -1) return undefined
    key = text.slice(0, i)
    if (!PLAIN_KEY.test(key) || SPECIAL_KEY.test(key)) return undefined
  }
  if (text[i] !== ":" || (i + 1 < text.length && text[i + 1] !== " ")) return undefined
  return { key, rest: i + 1 }
}

const keyOf = (text: string): { readonly key: string; readonly rest: number } => keyAt(text) ?? unsupported()

/** The value the YAML library would read from `text`, or undefined when the full loader must read it. */
export const readPlainYaml = (text: string): { readonly value: unknown } | undefined => {
  if (AWKWARD.test(text)) return undefined
  const endsWithNewline = text.endsWith("\n")
  const raw = text.split("\n")
  if (endsWithNewline) raw.pop()
  try {
    const lines = raw.map((line): Line | undefined => {
      const indent = skipSpaces(line, 0)
      const rest = line.slice(indent)
      if (rest === "" || rest[0] === "#") return undefined
      // Directives and document markers: the full loader handles (or refuses) them.
      if (indent === 0 && (rest[0] === "%" || /^(?:---|\.\.\.)(?: |$)/.test(rest))) return unsupported()
      return { indent, text: rest }
    })
    return { value: new Reader(lines, raw, endsWithNewline).document() }
  } catch (error) {
    if (error instanceof Unsupported) return undefined
    throw error
  }
}

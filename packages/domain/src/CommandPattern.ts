/**
 * The command pattern language of `tools.allowedCommandGlobs` (and the exact
 * lines of `tools.allowedCommands`), described in docs/command-policy.md.
 *
 * A pattern is a program spelt exactly, then one rule per argument: a literal
 * matches itself; an element with `*`/`?` matches one argument, where `*` and
 * `?` never match `/`; a trailing `**` matches any remaining arguments. A
 * wildcard never matches an option (`-…`), an absolute path or a `..`
 * segment. Patterns are compared with the argument vector the program gets,
 * never with a joined command line, so spaces and `/` cannot be smuggled in.
 */
import { Either } from "effect"
import { deniedPatternLiterals, deniedPatternProgram, deniedPatternToken } from "./CommandDenyList.js"

export type ArgumentRule =
  | { readonly _tag: "Literal"; readonly value: string }
  | { readonly _tag: "Wildcard"; readonly source: string; readonly segments: ReadonlyArray<string> }

export interface CommandPattern {
  readonly source: string
  readonly program: string
  readonly args: ReadonlyArray<ArgumentRule>
  /** Whether the pattern ends with `**` (any number of further arguments). */
  readonly rest: boolean
}

const MAX_PATTERN_CHARS = 4096

/**
 * Splits a pattern into elements at whitespace. Single or double quotes keep
 * spaces inside an element and make wildcards in it literal (no escapes, no
 * expansion). Returns each element and whether any part of it was quoted.
 */
export const tokenize = (source: string): Either.Either<ReadonlyArray<{ text: string; quoted: boolean }>, string> => {
  const tokens: Array<{ text: string; quoted: boolean }> = []
  let current: { text: string; quoted: boolean } | undefined
  let i = 0
  while (i < source.length) {
    const char = source[i]!
    if (/\s/.test(char)) {
      if (current !== undefined) tokens.push({ text: current.text, quoted: current.quoted })
      current = undefined
      i++
    } else if (char === "'" || char === '"') {
      const close = source.indexOf(char, i + 1)
      if (close === -1) return Either.left(`the quote at character ${i + 1} is not closed`)
      current ??= { text: "", quoted: false }
      current.text += source.slice(i + 1, close)
      current.quoted = true
      i = close + 1
    } else {
      current ??= { text: "", quoted: false }
      current.text += char
      i++
    }
  }
  if (current !== undefined) tokens.push({ text: current.text, quoted: current.quoted })
  return Either.right(tokens)
}

const hasWildcard = (text: string) => text.includes("*") || text.includes("?")

/**
 * Parses a pattern. `exact` patterns (allowedCommands) treat `*` and `?` as
 * literal characters. Errors say what is wrong in words an author can act on.
 */
export const parse = (source: string, options: { readonly exact?: boolean } = {}): Either.Either<CommandPattern, string> => {
  if (source.length > MAX_PATTERN_CHARS) return Either.left(`a command pattern is at most ${MAX_PATTERN_CHARS} characters`)
  if (source.includes("\0")) return Either.left("a command pattern must not contain a NUL character")
  return Either.flatMap(tokenize(source), (tokens) => {
    if (tokens.length === 0) return Either.left("the pattern is empty; it must start with a program name")
    const [program, ...rest] = tokens
    if (program!.text === "") return Either.left("the program name is empty")
    if (!options.exact && !program!.quoted && hasWildcard(program!.text)) {
      return Either.left(`the program '${program!.text}' must be spelt exactly: wildcards are only allowed in arguments`)
    }
    const args: Array<ArgumentRule> = []
    let trailing = false
    for (let index = 0; index < rest.length; index++) {
      const token = rest[index]!
      const literal = options.exact === true || token.quoted || !hasWildcard(token.text)
      if (literal) {
        args.push({ _tag: "Literal", value: token.text })
        continue
      }
      if (token.text === "**") {
        if (index !== rest.length - 1) return Either.left("'**' is only allowed as the last element of a pattern")
        trailing = true
        continue
      }
      if (token.text.includes("**")) {
        return Either.left(`'${token.text}': '**' must stand alone as the last element (it matches whole arguments, not parts of one)`)
      }
      args.push({ _tag: "Wildcard", source: token.text, segments: token.text.split("/") })
    }
    const pattern: CommandPattern = { source, program: program!.text, args, rest: trailing }
    if (options.exact === true) return Either.right(pattern)
    const programDenied = deniedPatternProgram(pattern.program)
    if (programDenied !== undefined) return Either.left(programDenied)
    for (const rule of args) {
      const text = rule._tag === "Literal" ? rule.value : rule.source
      const why = deniedPatternToken(pattern.program, text)
      if (why !== undefined) return Either.left(`the argument '${text}' can never run: ${why}`)
    }
    const firstWildcard = args.findIndex((rule) => rule._tag === "Wildcard")
    const literals = (firstWildcard === -1 ? args : args.slice(0, firstWildcard)).map((rule) => (rule._tag === "Literal" ? rule.value : ""))
    const denial = deniedPatternLiterals(pattern.program, literals, firstWildcard === -1 && !trailing)
    if (denial !== undefined) return Either.left(`the argument '${denial.argument}' can never run: ${denial.why}`)
    return Either.right(pattern)
  })
}

/** Classic `*`/`?` matching of one path segment (no `/` on either side); linear in practice, never exponential. */
const segmentMatches = (glob: string, value: string): boolean => {
  let g = 0
  let v = 0
  let star = -1
  let mark = 0
  while (v < value.length) {
    const gc = glob[g]
    if (gc === "*") {
      star = ++g
      mark = v
    } else if (gc !== undefined && (gc === "?" || gc === value[v])) {
      g++
      v++
    } else if (star !== -1) {
      g = star
      v = ++mark
    } else {
      return false
    }
  }
  while (glob[g] === "*") g++
  return g === glob.length
}

/** Why an argument may not be matched by a wildcard, or undefined when it may. */
export const wildcardRefusal = (argument: string): string | undefined => {
  if (argument === "") return "wildcards never match an empty argument"
  if (argument.startsWith("-")) return "wildcards never match options (arguments starting with '-'); spell the option in the pattern"
  if (argument.startsWith("/")) return "wildcards never match absolute paths"
  if (argument.split("/").includes("..")) return "wildcards never match a '..' path segment"
  return undefined
}

const wildcardMatches = (rule: Extract<ArgumentRule, { _tag: "Wildcard" }>, argument: string): string | undefined => {
  // An element spelt with a leading '-' (`--format=*`) is an option the author wrote; its wildcard part still never matches '/'.
  const refusal = rule.source.startsWith("-") && !rule.source.startsWith("-*") && !rule.source.startsWith("-?")
    ? wildcardRefusal(argument.replace(/^-+/, "x"))
    : wildcardRefusal(argument)
  if (refusal !== undefined) return refusal
  const parts = argument.split("/")
  if (parts.length !== rule.segments.length) return `'${rule.source}' matches one argument and its '*' never matches '/'`
  for (let i = 0; i < parts.length; i++) {
    if (!segmentMatches(rule.segments[i]!, parts[i]!)) return `it does not match '${rule.source}'`
  }
  return undefined
}

export type MatchResult = { readonly matched: true } | { readonly matched: false; readonly reason: string }

/**
 * Matches a program's arguments (not the program: the caller compares resolved
 * programs) against a pattern; a mismatch says which argument failed and why.
 */
export const matchArguments = (pattern: CommandPattern, args: ReadonlyArray<string>): MatchResult => {
  for (let index = 0; index < pattern.args.length; index++) {
    const rule = pattern.args[index]!
    const argument = args[index]
    if (argument === undefined) return { matched: false, reason: `it has ${args.length} argument(s); the pattern needs more` }
    const why = rule._tag === "Literal" ? (rule.value === argument ? undefined : `it is not '${rule.value}'`) : wildcardMatches(rule, argument)
    if (why !== undefined) return { matched: false, reason: `argument ${index + 1} ${JSON.stringify(argument)}: ${why}` }
  }
  const extra = args.slice(pattern.args.length)
  if (!pattern.rest) {
    return extra.length === 0
      ? { matched: true }
      : { matched: false, reason: `the pattern allows ${pattern.args.length} argument(s), not ${args.length} (ending a pattern with '**' allows more)` }
  }
  for (let offset = 0; offset < extra.length; offset++) {
    const why = wildcardRefusal(extra[offset]!)
    if (why !== undefined) {
      return { matched: false, reason: `argument ${pattern.args.length + offset + 1} ${JSON.stringify(extra[offset]!)}: ${why}` }
    }
  }
  return { matched: true }
}

/** An argument as it would be written in a pattern or an exact allowedCommands line. */
export const quoteArgument = (argument: string): string => {
  if (argument !== "" && !/[\s'"*?]/.test(argument)) return argument
  return `'${argument.replaceAll("'", `'"'"'`)}'`
}

/** The exact allowedCommands line that allows precisely this program and these arguments. */
export const exactLine = (command: string, args: ReadonlyArray<string>): string => [command, ...args].map(quoteArgument).join(" ")

/** A command line for messages (quoted where needed, so arguments with spaces stay visible). */
export const display = exactLine

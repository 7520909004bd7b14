/**
 * Workflow inputs at the start of a run: checks the values a caller provides (CLI flags, an HTTP
 * body, a test) against the workflow's `inputs` declarations — unknown names, missing required
 * inputs, defaults, CLI string coercion, types and `validation` rules — and masks secret values
 * before inputs are echoed in events. The same value checks are used at parse time on defaults.
 */
import { Either, Schema } from "effect"
import type { InputType, InputValidation, WorkflowInput } from "./Workflow.js"

export interface InputIssue {
  /** The input name as given, declared or not. */
  readonly input: string
  readonly message: string
}

export class InputsError extends Schema.TaggedError<InputsError>()("InputsError", {
  issues: Schema.Array(Schema.Struct({ input: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    return this.issues.map((issue) => `inputs.${issue.input}: ${issue.message}`).join("\n")
  }
}

export interface ResolveOptions {
  /** Values arrive as strings (CLI `--input k=v`): turn them into numbers and booleans per type. */
  readonly coerceStrings: boolean
}

/** A secret value as it appears in events and logs. */
export interface MaskedSecret {
  readonly secret: true
  readonly ref: string
}

export const StringFormats = ["email", "url", "uri"] as const
export type StringFormat = (typeof StringFormats)[number]

const STRING_LIKE: ReadonlySet<InputType> = new Set(["string", "file_path", "code_diff", "secret"])

/** Which `validation` keys apply to each input type (upstream workflow-yaml-spec "Inputs"). */
export const validationKeysFor = (type: InputType): ReadonlyArray<keyof InputValidation> =>
  type === "number"
    ? ["min", "max", "enum"]
    : type === "boolean"
    ? []
    : ["format", "pattern", "enum", "min_length", "max_length"]

/** Required only when declared `required: true` and no default is given (as upstream's CLI does). */
export const isRequired = (input: WorkflowInput): boolean => input.required === true && input.default === undefined

const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/

const matchesFormat = (format: StringFormat, value: string): boolean => {
  switch (format) {
    case "email":
      return EMAIL.test(value)
    case "url": {
      const url = URL.canParse(value) ? new URL(value) : undefined
      return url !== undefined && (url.protocol === "http:" || url.protocol === "https:") && url.host !== ""
    }
    case "uri":
      return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(value) && URL.canParse(value)
  }
}

const isStringFormat = (format: string): format is StringFormat =>
  (StringFormats as ReadonlyArray<string>).includes(format)

/** Short, single-line rendering of a value for messages; secrets are never shown. */
const show = (input: WorkflowInput, value: unknown): string => {
  if (input.type === "secret") return "the secret value"
  if (typeof value === "string") {
    const oneLine = value.replace(/\s+/g, " ")
    return JSON.stringify(oneLine.length > 40 ? `${oneLine.slice(0, 37)}...` : oneLine)
  }
  return value === null ? "null" : Array.isArray(value) ? "a list" : typeof value === "object" ? "an object" : String(value)
}

const showEnum = (values: ReadonlyArray<unknown>): string => values.map((v) => JSON.stringify(v)).join(", ")

/** Problems with the `validation` block itself (not with a value) — reported at parse time. */
export const validationRuleProblems = (
  input: WorkflowInput
): ReadonlyArray<{ readonly key: keyof InputValidation; readonly message: string }> => {
  const rules = input.validation
  if (rules === undefined) return []
  const allowed = validationKeysFor(input.type)
  const problems: Array<{ key: keyof InputValidation; message: string }> = []
  for (const key of Object.keys(rules) as Array<keyof InputValidation>) {
    if (rules[key] !== undefined && !allowed.includes(key)) {
      problems.push({
        key,
        message: allowed.length === 0
          ? `a ${input.type} input takes no validation rules`
          : `"${key}" does not apply to a ${input.type} input (allowed: ${allowed.join(", ")})`
      })
    }
  }
  if (rules.min !== undefined && rules.max !== undefined && rules.min > rules.max) {
    problems.push({ key: "min", message: `min (${rules.min}) is greater than max (${rules.max})` })
  }
  if (rules.min_length !== undefined && rules.max_length !== undefined && rules.min_length > rules.max_length) {
    problems.push({
      key: "min_length",
      message: `min_length (${rules.min_length}) is greater than max_length (${rules.max_length})`
    })
  }
  if (rules.pattern !== undefined) {
    try {
      new RegExp(rules.pattern)
    } catch (e) {
      problems.push({ key: "pattern", message: `not a valid regular expression: ${(e as Error).message}` })
    }
  }
  if (rules.format !== undefined && !isStringFormat(rules.format)) {
    problems.push({
      key: "format",
      message: `unknown format "${rules.format}" (expected one of ${StringFormats.join(", ")})`
    })
  }
  return problems
}

/**
 * Why `value` is not acceptable for `input` (its type, then its validation rules), or an empty
 * list. Messages never include a secret's value.
 */
export const valueProblems = (input: WorkflowInput, value: unknown): ReadonlyArray<string> => {
  const rules = input.validation ?? {}
  if (input.type === "boolean") {
    return typeof value === "boolean" ? [] : [`must be true or false, got ${show(input, value)}`]
  }
  if (input.type === "number") {
    if (typeof value !== "number" || !Number.isFinite(value)) return [`must be a number, got ${show(input, value)}`]
    const problems: Array<string> = []
    if (rules.min !== undefined && value < rules.min) problems.push(`must be at least ${rules.min}, got ${value}`)
    if (rules.max !== undefined && value > rules.max) problems.push(`must be at most ${rules.max}, got ${value}`)
    if (rules.enum !== undefined && !rules.enum.includes(value)) {
      problems.push(`must be one of ${showEnum(rules.enum)}, got ${value}`)
    }
    return problems
  }
  if (typeof value !== "string") return [`must be a string, got ${show(input, value)}`]
  const problems: Array<string> = []
  const length = [...value].length
  if (rules.min_length !== undefined && length < rules.min_length) {
    problems.push(`must be at least ${rules.min_length} characters long, got ${length}`)
  }
  if (rules.max_length !== undefined && length > rules.max_length) {
    problems.push(`must be at most ${rules.max_length} characters long, got ${length}`)
  }
  if (rules.enum !== undefined && !rules.enum.includes(value)) {
    problems.push(
      input.type === "secret"
        ? "is not one of the allowed values"
        : `must be one of ${showEnum(rules.enum)}, got ${show(input, value)}`
    )
  }
  if (rules.pattern !== undefined) {
    let pattern: RegExp | undefined
    try {
      pattern = new RegExp(rules.pattern)
    } catch {
      problems.push(`has an invalid validation pattern`)
    }
    if (pattern !== undefined && !pattern.test(value)) {
      problems.push(`${show(input, value)} does not match the pattern /${rules.pattern}/`)
    }
  }
  if (rules.format !== undefined) {
    if (!isStringFormat(rules.format)) {
      problems.push(`has an unknown validation format "${rules.format}"`)
    } else if (!matchesFormat(rules.format, value)) {
      problems.push(`${show(input, value)} is not a valid ${rules.format === "email" ? "email address" : rules.format.toUpperCase()}`)
    }
  }
  return problems
}

const coerce = (input: WorkflowInput, raw: string): Either.Either<unknown, string> => {
  if (input.type === "number") {
    const trimmed = raw.trim()
    // Number("") is 0 and Number("0x10") is 16: accept only plain decimal notation.
    if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)) return Either.right(Number(trimmed))
    return Either.left(`must be a number, got ${show(input, raw)}`)
  }
  if (input.type === "boolean") {
    if (raw === "true" || raw === "1") return Either.right(true)
    if (raw === "false" || raw === "0") return Either.right(false)
    return Either.left(`must be true or false (or 1 or 0), got ${show(input, raw)}`)
  }
  return Either.right(raw)
}

/**
 * The run's inputs: provided values checked, coerced and validated, defaults filled in. An
 * optional input with neither a value nor a default is left out of the record.
 */
export const resolveInputs = (
  declared: ReadonlyArray<WorkflowInput> | undefined,
  provided: Readonly<Record<string, unknown>>,
  options: ResolveOptions
): Either.Either<Record<string, unknown>, InputsError> => {
  const inputs = declared ?? []
  const byName = new Map(inputs.map((input) => [input.name, input]))
  const issues: Array<InputIssue> = []
  for (const name of Object.keys(provided)) {
    if (!byName.has(name)) {
      issues.push({
        input: name,
        message: inputs.length === 0
          ? `unknown input — this workflow declares no inputs`
          : `unknown input (declared inputs: ${inputs.map((i) => i.name).join(", ")})`
      })
    }
  }
  const values: Record<string, unknown> = {}
  for (const input of inputs) {
    const given = Object.hasOwn(provided, input.name) ? provided[input.name] : undefined
    let value: unknown
    if (given !== undefined && given !== null) {
      if (options.coerceStrings && typeof given === "string") {
        const coerced = coerce(input, given)
        if (Either.isLeft(coerced)) {
          issues.push({ input: input.name, message: coerced.left })
          continue
        }
        value = coerced.right
      } else {
        value = given
      }
    } else if (input.default !== undefined) {
      value = input.default
    } else {
      if (isRequired(input)) {
        issues.push({
          input: input.name,
          message: `missing required ${input.type} input${input.description ? ` (${input.description})` : ""}`
        })
      }
      continue
    }
    const problems = valueProblems(input, value)
    if (problems.length > 0) {
      for (const message of problems) issues.push({ input: input.name, message })
      continue
    }
    values[input.name] = value
  }
  return issues.length > 0 ? Either.left(new InputsError({ issues })) : Either.right(values)
}

/** The inputs with every secret value replaced by `{ secret: true, ref: "inputs.<name>" }`. */
export const maskSecrets = (
  declared: ReadonlyArray<WorkflowInput> | undefined,
  values: Readonly<Record<string, unknown>>
): Record<string, unknown> => {
  const secrets = new Set((declared ?? []).filter((i) => i.type === "secret").map((i) => i.name))
  const masked: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(values)) {
    masked[name] = secrets.has(name) ? ({ secret: true, ref: `inputs.${name}` } satisfies MaskedSecret) : value
  }
  return masked
}

export const isStringLike = (type: InputType): boolean => STRING_LIKE.has(type)

import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as Inputs from "../src/Inputs.js"
import type { WorkflowInput } from "../src/Workflow.js"

const ok = (
  declared: ReadonlyArray<WorkflowInput>,
  provided: Record<string, unknown>,
  coerceStrings = false
): Record<string, unknown> => {
  const result = Inputs.resolveInputs(declared, provided, { coerceStrings })
  if (Either.isLeft(result)) assert.fail(`unexpected input errors:\n${result.left.message}`)
  return result.right
}

const errors = (
  declared: ReadonlyArray<WorkflowInput>,
  provided: Record<string, unknown>,
  coerceStrings = false
): ReadonlyArray<string> => {
  const result = Inputs.resolveInputs(declared, provided, { coerceStrings })
  if (Either.isRight(result)) assert.fail("expected input errors")
  return result.left.message.split("\n")
}

describe("Inputs.resolveInputs", () => {
  it("rejects unknown input names, listing the declared ones", () => {
    assert.deepStrictEqual(errors([{ name: "topic", type: "string" }], { topic: "a", topik: "b" }), [
      "inputs.topik: unknown input (declared inputs: topic)"
    ])
    assert.deepStrictEqual(errors([], { x: 1 }), ["inputs.x: unknown input — this workflow declares no inputs"])
  })

  it("requires inputs declared required: true without a default", () => {
    assert.deepStrictEqual(
      errors([{ name: "file", type: "file_path", required: true, description: "the file to review" }], {}),
      ["inputs.file: missing required file_path input (the file to review)"]
    )
  })

  it("treats inputs without required: true as optional, as upstream does", () => {
    assert.deepStrictEqual(ok([{ name: "note", type: "string" }], {}), {})
  })

  it("applies defaults, also for required inputs", () => {
    assert.deepStrictEqual(
      ok(
        [
          { name: "email", type: "string", default: "team@example.com" },
          { name: "level", type: "number", required: true, default: 3 }
        ],
        {}
      ),
      { email: "team@example.com", level: 3 }
    )
  })

  it("coerces CLI strings to numbers and booleans", () => {
    const declared: ReadonlyArray<WorkflowInput> = [
      { name: "n", type: "number" },
      { name: "b", type: "boolean" },
      { name: "z", type: "boolean" },
      { name: "s", type: "string" }
    ]
    assert.deepStrictEqual(ok(declared, { n: " 2.5e1 ", b: "true", z: "0", s: "42" }, true), {
      n: 25,
      b: true,
      z: false,
      s: "42"
    })
    assert.deepStrictEqual(errors(declared, { n: "0x10", b: "yes" }, true), [
      `inputs.n: must be a number, got "0x10"`,
      `inputs.b: must be true or false (or 1 or 0), got "yes"`
    ])
    assert.deepStrictEqual(errors(declared, { n: "" }, true), [`inputs.n: must be a number, got ""`])
  })

  it("does not coerce unless asked: types must match", () => {
    assert.deepStrictEqual(
      errors([{ name: "n", type: "number" }, { name: "b", type: "boolean" }, { name: "s", type: "code_diff" }], {
        n: "3",
        b: 1,
        s: 5
      }),
      [`inputs.n: must be a number, got "3"`, "inputs.b: must be true or false, got 1", "inputs.s: must be a string, got 5"]
    )
  })

  it("enforces min, max and enum for numbers", () => {
    const severity: WorkflowInput = { name: "severity", type: "number", validation: { min: 0, max: 10 } }
    assert.deepStrictEqual(ok([severity], { severity: 10 }), { severity: 10 })
    assert.deepStrictEqual(errors([severity], { severity: -1 }), ["inputs.severity: must be at least 0, got -1"])
    assert.deepStrictEqual(errors([severity], { severity: 11 }), ["inputs.severity: must be at most 10, got 11"])
    const level: WorkflowInput = { name: "level", type: "number", validation: { enum: [1, 2, 3] } }
    assert.deepStrictEqual(errors([level], { level: 4 }), ["inputs.level: must be one of 1, 2, 3, got 4"])
  })

  it("enforces pattern, enum, min_length and max_length for strings", () => {
    const code: WorkflowInput = {
      name: "code",
      type: "string",
      validation: { pattern: "^[A-Z]{3}$", min_length: 3, max_length: 3 }
    }
    assert.deepStrictEqual(ok([code], { code: "ABC" }), { code: "ABC" })
    assert.deepStrictEqual(errors([code], { code: "ab" }), [
      "inputs.code: must be at least 3 characters long, got 2",
      `inputs.code: "ab" does not match the pattern /^[A-Z]{3}$/`
    ])
    assert.deepStrictEqual(errors([code], { code: "ABCD" }), [
      "inputs.code: must be at most 3 characters long, got 4",
      `inputs.code: "ABCD" does not match the pattern /^[A-Z]{3}$/`
    ])
    const mode: WorkflowInput = { name: "mode", type: "string", validation: { enum: ["fast", "careful"] } }
    assert.deepStrictEqual(errors([mode], { mode: "slow" }), [`inputs.mode: must be one of "fast", "careful", got "slow"`])
  })

  it("enforces the email, url and uri formats", () => {
    const email: WorkflowInput = { name: "email", type: "string", validation: { format: "email" } }
    assert.deepStrictEqual(ok([email], { email: "a.b@example.com" }), { email: "a.b@example.com" })
    assert.deepStrictEqual(errors([email], { email: "a@b" }), [`inputs.email: "a@b" is not a valid email address`])
    const url: WorkflowInput = { name: "url", type: "string", validation: { format: "url" } }
    assert.deepStrictEqual(ok([url], { url: "https://example.com/x" }), { url: "https://example.com/x" })
    assert.deepStrictEqual(errors([url], { url: "ftp://example.com" }), [`inputs.url: "ftp://example.com" is not a valid URL`])
    const uri: WorkflowInput = { name: "uri", type: "file_path", validation: { format: "uri" } }
    assert.deepStrictEqual(ok([uri], { uri: "urn:isbn:0451450523" }), { uri: "urn:isbn:0451450523" })
    assert.deepStrictEqual(errors([uri], { uri: "not a uri" }), [`inputs.uri: "not a uri" is not a valid URI`])
  })

  it("validates defaults too", () => {
    assert.deepStrictEqual(
      errors([{ name: "n", type: "number", default: 50, validation: { max: 10 } }], {}),
      ["inputs.n: must be at most 10, got 50"]
    )
  })

  it("never shows a secret value in a message", () => {
    const key: WorkflowInput = { name: "key", type: "secret", validation: { pattern: "^sk-", min_length: 10 } }
    const messages = errors([key], { key: "hunter2" })
    assert.deepStrictEqual(messages, [
      "inputs.key: must be at least 10 characters long, got 7",
      "inputs.key: the secret value does not match the pattern /^sk-/"
    ])
    assert.isFalse(messages.some((m) => m.includes("hunter2")))
  })
})

describe("Inputs.maskSecrets", () => {
  it("replaces secret values with a reference", () => {
    const declared: ReadonlyArray<WorkflowInput> = [{ name: "api_key", type: "secret" }, { name: "topic", type: "string" }]
    assert.deepStrictEqual(Inputs.maskSecrets(declared, { api_key: "sk-123", topic: "weather" }), {
      api_key: { secret: true, ref: "inputs.api_key" },
      topic: "weather"
    })
  })
})

describe("Inputs.validationRuleProblems", () => {
  it("rejects rules that do not apply to the type and impossible bounds", () => {
    assert.deepStrictEqual(
      Inputs.validationRuleProblems({ name: "b", type: "boolean", validation: { enum: [true] } }),
      [{ key: "enum", message: "a boolean input takes no validation rules" }]
    )
    assert.deepStrictEqual(
      Inputs.validationRuleProblems({ name: "s", type: "string", validation: { min_length: 5, max_length: 2, pattern: "(" } }),
      [
        { key: "min_length", message: "min_length (5) is greater than max_length (2)" },
        { key: "pattern", message: "not a valid regular expression: Invalid regular expression: /(/: Unterminated group" }
      ]
    )
  })
})

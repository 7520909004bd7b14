import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as Template from "../src/Template.js"

const parse = (text: string): ReadonlyArray<Template.Segment> => {
  const result = Template.parseTemplate(text)
  if (Either.isLeft(result)) assert.fail(`unexpected template error: ${result.left.message}`)
  return result.right
}

const parseError = (text: string): Template.TemplateError => {
  const result = Template.parseTemplate(text)
  if (Either.isRight(result)) assert.fail("expected a template error")
  return result.left
}

const onlyReference = (text: string): Template.Reference => {
  const refs = Template.references(parse(text))
  assert.strictEqual(refs.length, 1)
  return refs[0]!
}

const scope = {
  inputs: { topic: "weather", count: 3, flag: false, path: "notes.md", nothing: null } as Record<string, unknown>,
  ctx: { tone: "dry" } as Record<string, unknown>,
  outputs: {
    review: { score: 4, issues: [{ line: 12 }, { line: 40 }], tags: ["a", "b"] },
    "style-check": "fine"
  } as Record<string, unknown>,
  runId: "run-1"
}

const context: Template.RenderContext<never, never> = {
  resolve: Template.resolveIn(scope),
  readFile: (path) => Effect.succeed(`<contents of ${path}>`)
}

const render = (text: string) => Template.renderText(text, context)

describe("Template.parseTemplate", () => {
  it("splits literal text and references", () => {
    const segments = parse("Hi {{ inputs.topic }}, tone {{ctx.tone}}!")
    assert.deepStrictEqual(
      segments.map((s) => (s._tag === "Literal" ? s.text : s.reference.source)),
      ["Hi ", "{{ inputs.topic }}", ", tone ", "{{ctx.tone}}", "!"]
    )
    assert.deepStrictEqual(parse("no references"), [{ _tag: "Literal", text: "no references" }])
    assert.deepStrictEqual(parse(""), [])
  })

  it("parses each root", () => {
    const input = onlyReference("{{ inputs.file_path }}")
    assert.strictEqual(input.root, "inputs")
    assert.strictEqual(input.root === "inputs" && input.name, "file_path")
    const ctx = onlyReference("{{ ctx.focus-area }}")
    assert.strictEqual(ctx.root === "ctx" && ctx.name, "focus-area")
    const output = onlyReference(`{{ run.outputs["security-scan"] }}`)
    assert.strictEqual(output.root === "run.outputs" && output.nodeId, "security-scan")
    const dotted = onlyReference(`{{ run.outputs.summary }}`)
    assert.strictEqual(dotted.root === "run.outputs" && dotted.nodeId, "summary")
    const runId = onlyReference(`out/{{ run.id }}.png`)
    assert.strictEqual(runId.root, "run.id")
    assert.strictEqual(runId.offset, 4)
  })

  it("parses property and index paths", () => {
    const ref = onlyReference(`{{ run.outputs['a'].b[0]["c d"].e }}`)
    assert.deepStrictEqual(ref.path, ["b", 0, "c d", "e"])
  })

  it("parses filters in order, with default's value", () => {
    const ref = onlyReference(`{{ inputs.x | default("none") | length | json }}`)
    assert.deepStrictEqual(ref.filters, [{ name: "default", value: "none" }, { name: "length" }, { name: "json" }])
    assert.deepStrictEqual(onlyReference(`{{ inputs.x | default(3) }}`).filters, [{ name: "default", value: 3 }])
    assert.deepStrictEqual(onlyReference(`{{ inputs.x | default(false) }}`).filters, [{ name: "default", value: false }])
    assert.deepStrictEqual(onlyReference(`{{ inputs.x | read_file }}`).filters, [{ name: "read_file" }])
  })

  it("keeps braces and pipes inside quoted strings", () => {
    const ref = onlyReference(`{{ inputs.x | default("a }} | b") }}`)
    assert.deepStrictEqual(ref.filters, [{ name: "default", value: "a }} | b" }])
  })

  it("reports syntax errors with their offset", () => {
    const cases: ReadonlyArray<[string, string, number]> = [
      ["Hi {{ inputs.topic", `"{{" is never closed with "}}"`, 3],
      ["{{ }}", `empty reference — expected inputs.<name>, ctx.<key>, run.outputs["<node-id>"] or run.id`, 3],
      ["{{ topic }}", `unknown reference "topic" — expected inputs.<name>, ctx.<key>, run.outputs["<node-id>"] or run.id`, 3],
      ["{{ secrets.key }}", `"secrets" is not a template namespace — declare a secret input instead`, 3],
      ["{{ inputs }}", `"inputs" must be followed by ".<name>"`, 9],
      ["{{ run.output }}", `unknown reference "run.output" — expected run.outputs["<node-id>"] or run.id`, 3],
      ["{{ run.outputs }}", `run.outputs must name a node, e.g. run.outputs["summarize"]`, 14],
      ["{{ run.outputs[0] }}", `run.outputs[…] needs a quoted node id, e.g. run.outputs["summarize"]`, 14],
      ["{{ run.id.x }}", `run.id is a plain string and has no properties`, 0],
      ["{{ inputs.a. }}", `expected a property name after "." but found " "`, 12],
      ["{{ inputs.a[x] }}", `expected an index or a quoted key after "[" but found "x"`, 12],
      [`{{ inputs.a["b }}`, `unterminated string (missing closing ")`, 12],
      ["{{ inputs.a | upper }}", `unknown filter "upper" (expected one of json, length, default, read_file)`, 14],
      ["{{ inputs.a | }}", `expected a filter name after "|" (one of json, length, default, read_file)`, 14],
      ["{{ inputs.a | default }}", `filter "default" needs a value, e.g. default("none")`, 22],
      ["{{ inputs.a | default(none) }}", `default(…) takes a quoted string, a number, true or false, e.g. default("none")`, 22],
      [`{{ inputs.a | default("a", "b") }}`, `filter "default" takes exactly one value`, 25],
      ["{{ inputs.a | json() }}", `filter "json" takes no arguments`, 18],
      ["{{ inputs.a inputs.b }}", `unexpected "i" in reference — separate filters with "|"`, 12]
    ]
    for (const [text, message, offset] of cases) {
      const error = parseError(text)
      assert.strictEqual(error._tag, "TemplateError")
      assert.strictEqual(error.message, message, text)
      assert.strictEqual(error.offset, offset, text)
    }
  })
})

describe("Template.templateReferences", () => {
  it("lists the inputs, context keys and node outputs read, once each", () => {
    const reads = Template.templateReferences(
      `{{ inputs.a }} {{ ctx.k }} {{ run.outputs["x"].y }} {{ inputs.a | json }} {{ run.outputs.z }} {{ run.id }}`
    )
    assert.deepStrictEqual(reads, Either.right({ inputs: ["a"], ctx: ["k"], outputs: ["x", "z"], runId: true }))
  })

  it("returns the syntax error for a bad template", () => {
    const reads = Template.templateReferences("{{ nope }}")
    assert.isTrue(Either.isLeft(reads))
  })
})

describe("Template.renderTemplate", () => {
  it.effect("inserts strings as-is and numbers and booleans with String()", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        yield* render("{{inputs.topic}} x{{ inputs.count }} {{ inputs.flag }} {{ ctx.tone }} {{ run.id }}"),
        "weather x3 false dry run-1"
      )
    }))

  it.effect("follows paths into outputs", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        yield* render(`{{ run.outputs["review"].score }}/{{ run.outputs['review'].issues[1].line }}`),
        "4/40"
      )
      assert.strictEqual(yield* render(`{{ run.outputs["style-check"] }}`), "fine")
    }))

  it.effect("json writes any value as indented JSON", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* render(`{{ run.outputs["review"].tags | json }}`), `[\n  "a",\n  "b"\n]`)
      assert.strictEqual(yield* render(`{{ inputs.topic | json }}`), `"weather"`)
    }))

  it.effect("length counts strings, lists and object keys", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        yield* render(`{{ inputs.topic | length }} {{ run.outputs["review"].issues | length }} {{ run.outputs["review"] | length }}`),
        "7 2 3"
      )
      const error = yield* Effect.flip(render(`{{ inputs.count | length }}`))
      assert.strictEqual(error._tag, "TemplateRenderError")
      assert.strictEqual(error.message, "{{ inputs.count | length }}: | length needs a string, list or object, got a number")
    }))

  it.effect("default replaces a missing or null value only", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* render(`{{ run.outputs["gate"].decision | default("not required") }}`), "not required")
      assert.strictEqual(yield* render(`{{ inputs.nothing | default(0) }}`), "0")
      assert.strictEqual(yield* render(`{{ inputs.flag | default(true) }}`), "false")
    }))

  it.effect("read_file reads through the caller's effect", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* render(`{{ inputs.path | read_file }}`), "<contents of notes.md>")
    }))

  it.effect("read_file fails with the reader's own error", () =>
    Effect.gen(function*() {
      const failing: Template.RenderContext<string, never> = { ...context, readFile: (path) => Effect.fail(`cannot read ${path}`) }
      const error = yield* Effect.flip(Template.renderText(`{{ inputs.path | read_file }}`, failing))
      assert.strictEqual(error, "cannot read notes.md")
    }))

  it.effect("read_file is refused where no reader is given", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Template.renderText(`{{ inputs.path | read_file }}`, { resolve: context.resolve }))
      assert.strictEqual(error._tag === "TemplateRenderError" && error.code, "read_file_unavailable")
      const notAPath = yield* Effect.flip(render(`{{ inputs.count | read_file }}`))
      assert.strictEqual(notAPath.message, "{{ inputs.count | read_file }}: | read_file needs a file path string, got a number")
    }))

  it.effect("an object or list without | json is an error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(render(`Review: {{ run.outputs["review"] }}`))
      assert.strictEqual(error._tag === "TemplateRenderError" && error.code, "not_text")
      assert.strictEqual(error.message, `{{ run.outputs["review"] }} is an object — add | json to insert it as text`)
      const list = yield* Effect.flip(render(`{{ run.outputs["review"].tags }}`))
      assert.strictEqual(list.message, `{{ run.outputs["review"].tags }} is a list — add | json to insert it as text`)
    }))

  it.effect("a missing or null value without default is unresolved_reference", () =>
    Effect.gen(function*() {
      for (const text of [`{{ inputs.nothing }}`, `{{ inputs.undeclared }}`, `{{ run.outputs["review"].missing.deeper }}`]) {
        const error = yield* Effect.flip(render(text))
        assert.strictEqual(error._tag === "TemplateRenderError" && error.code, "unresolved_reference")
        assert.strictEqual(error.message, `${text} has no value — check the reference or add | default("…")`)
      }
    }))

  it.effect("never reaches inherited properties", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(render(`{{ ctx.tone.constructor }}`))
      assert.strictEqual(error._tag === "TemplateRenderError" && error.code, "unresolved_reference")
      assert.isUndefined(Template.valueAt({ a: [1] }, ["a", "length"]))
      assert.isUndefined(Template.valueAt({}, ["__proto__"]))
    }))
})

/**
 * The fast reader for plain workflow files (internal/plainYaml.ts) must agree with the YAML
 * library on everything it accepts, and step aside (undefined) on everything the library would
 * warn about or refuse: checked on every workflow in the repository, on hand-written cases, and on
 * thousands of seeded random edits of them.
 */
import { assert, describe, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { isDeepStrictEqual } from "node:util"
import { parseDocument } from "yaml"
import { readPlainYaml } from "../src/internal/plainYaml.js"
import { yamlOptions } from "../src/WorkflowYaml.js"

const root = fileURLToPath(new URL("../../../", import.meta.url))

/** What the full loader reads: the value, or undefined when it has any error or warning. */
const library = (text: string): { readonly value: unknown } | undefined => {
  const doc = parseDocument(text, { ...yamlOptions, logLevel: "silent" })
  return doc.errors.length > 0 || doc.warnings.length > 0 ? undefined : { value: doc.toJS() }
}

/** The reader either steps aside or reads exactly what the library reads (and the library accepts the text). */
const agrees = (text: string): boolean => {
  const fast = readPlainYaml(text)
  if (fast === undefined) return true
  const full = library(text)
  return full !== undefined && isDeepStrictEqual(fast.value, full.value)
}

const workflowFiles = (): ReadonlyArray<string> => {
  const dirs = ["examples", "scripts/bench/fixtures"]
  const files = dirs.flatMap((dir) =>
    readdirSync(join(root, dir)).filter((f) => f.endsWith(".yaml")).map((f) => readFileSync(join(root, dir, f), "utf8"))
  )
  // The YAML written inline in the domain and engine tests (template literals without
  // interpolation), alone and below the header the domain tests put in front of their bodies.
  const tests = ["packages/domain/test/WorkflowYaml.test.ts", "packages/domain/test/WorkflowGraph.test.ts", "packages/core/test/Engine.test.ts"]
  const unescape = (s: string) => s.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c))
  for (const file of tests) {
    for (const match of readFileSync(join(root, file), "utf8").matchAll(/`([^`$]*:[^`$]*)`/g)) {
      const text = unescape(match[1]!)
      files.push(text, `schema_version: '1.0'\nworkflow:\n  id: demo\n${text}`)
    }
  }
  return files
}

const cases: ReadonlyArray<readonly [string, unknown]> = [
  ["a: 1\nb: -2\nc: +3\nd: 0o17\ne: 0x1F\nf: 1.50\ng: .5\nh: 1e3\ni: -.inf\nj: 007\nk: 12345678901234567890\n", { a: 1, b: -2, c: 3, d: 15, e: 31, f: 1.5, g: 0.5, h: 1000, i: -Infinity, j: 7, k: 12345678901234567890 }],
  ["a: ~\nb: null\nc:\nd: True\ne: FALSE\nf: yes\ng: no\nh: on\n", { a: null, b: null, c: null, d: true, e: false, f: "yes", g: "no", h: "on" }],
  ["a: it's plain # comment\nb: 'it''s'\nc: \"tab\\there \\u00e9 \\\"q\\\" \\\\ \\x41\"\nd: a#b\ne: x: y\n", undefined],
  ["a: it's plain # comment\nb: 'it''s'\nc: \"tab\\there \\u00e9 \\\"q\\\" \\\\ \\x41\"\nd: a#b\n", { a: "it's plain", b: "it's", c: "tab\there é \"q\" \\ A", d: "a#b" }],
  ["nodes:\n  - { id: a, type: transform, transform: '1' }\n  - { id: b, list: [1, \"two\", [3], {}], empty: [] }\n", { nodes: [{ id: "a", type: "transform", transform: "1" }, { id: "b", list: [1, "two", [3], {}], empty: [] }] }],
  ["list:\n- a\n- b: 1\n  c: [x, y, ]\n-\n  - deep\n- - nested\nnext: 2\n", { list: ["a", { b: 1, c: ["x", "y"] }, ["deep"], ["nested"]], next: 2 }],
  ["a: |\n  line one\n    indented\n\n  # not a comment\nb: |-\n  kept\n\nc: |+\n  keep\n\n\nd: x\n", { a: "line one\n  indented\n\n# not a comment\n", b: "kept", c: "keep\n\n\n", d: "x" }],
  ["a: >\n  folded\n  text\n\n  para\nb: >-\n  x\n  y\n", { a: "folded text\npara\n", b: "x y" }],
  ["- |\n  in a list\n- key: |\n    in a map in a list\n  other: 1\n", [ "in a list\n", { key: "in a map in a list\n", other: 1 }]],
  ["$ref: x\n\"quoted key\": 1\n'single': 2\nwith.dot/slash-dash: 3\n", { $ref: "x", "quoted key": 1, single: 2, "with.dot/slash-dash": 3 }],
  ["a: 1\na: 2\n", undefined],
  ["a: &x 1\nb: *x\n", undefined],
  ["a: !tag 1\n", undefined],
  ["<<: {a: 1}\n", undefined],
  ["---\na: 1\n", undefined],
  ["a: 'multi\n  line'\n", undefined],
  ["a: plain\n  continued\n", undefined],
  ["a:\n\tb: 1\n", undefined],
  ["true: 1\n", undefined],
  ["a: |\n  no newline at the end", undefined],
  ["", undefined]
]

describe("readPlainYaml", () => {
  it("reads every workflow in the repository as the YAML library does, and every example itself", () => {
    const files = workflowFiles()
    assert.isAbove(files.length, 100)
    for (const text of files) assert.isTrue(agrees(text), text)
    // The examples and the benchmark fixture are in the shape the fast reader takes.
    for (const dir of ["examples", "scripts/bench/fixtures"]) {
      for (const file of readdirSync(join(root, dir)).filter((f) => f.endsWith(".yaml"))) {
        assert.isDefined(readPlainYaml(readFileSync(join(root, dir, file), "utf8")), file)
      }
    }
  })

  it("reads scalars, flow collections, compact lists and block scalars, and steps aside on the rest", () => {
    for (const [text, expected] of cases) {
      const fast = readPlainYaml(text)
      assert.isTrue(isDeepStrictEqual(fast?.value, expected), `${JSON.stringify(text)} → ${JSON.stringify(fast?.value)}`)
      assert.isTrue(agrees(text), text)
    }
  })

  it("agrees with the YAML library on thousands of random edits of real workflows", () => {
    // A seeded generator (mulberry32), so a failure is reproducible.
    let seed = 0x5eed
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0
      let t = seed
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(random() * items.length)]!
    const pieces = [":", ": ", "- ", "#", " #", "'", "\"", "|", ">", "|-", "[", "]", "{", "}", ",", "\n", " ", "  ", "\\", "\\n", "0x", ".5", "~", "&a", "*a", "!x", "<<", "-", "? ", "%", "---", "true", "1e3", "é"]
    const seeds = [...workflowFiles(), ...cases.map(([text]) => text)].filter((text) => text.length < 4000)
    let read = 0
    for (let round = 0; round < 4000; round++) {
      let text = pick(seeds)
      for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits--) {
        const at = Math.floor(random() * (text.length + 1))
        const kind = random()
        if (kind < 0.4) text = text.slice(0, at) + pick(pieces) + text.slice(at)
        else if (kind < 0.7) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 3))
        else {
          // Re-indent or duplicate a line.
          const lines = text.split("\n")
          const line = Math.floor(random() * lines.length)
          if (kind < 0.85) lines[line] = (random() < 0.5 ? " " : "") + lines[line]!.replace(/^ /, random() < 0.5 ? "" : " ")
          else lines.splice(line, 0, lines[line]!)
          text = lines.join("\n")
        }
      }
      assert.isTrue(agrees(text), JSON.stringify(text))
      if (readPlainYaml(text) !== undefined) read++
    }
    // Many edits leave a file the fast reader still takes, so the comparison is not vacuous.
    assert.isAbove(read, 300)
  })
})

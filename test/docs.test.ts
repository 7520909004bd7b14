/**
 * The documentation in docs/ names what the code accepts and emits: every node type and field,
 * template filter, event type and field, error code, exit code, command, built-in tool and limit.
 * These checks read the schemas and sources, so a field added to the code without a line in the
 * docs (or a stale pointer outside the repository) fails here.
 */
import { assert, describe, it } from "@effect/vitest"
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { SchemaAST } from "effect"
import type { Schema } from "effect"
import { Limits, RunError, RunEvent, Template, Workflow, WorkflowYaml } from "@relavium/domain"
import { ChatEvent } from "../packages/chat/src/ChatEvent.js"
import { ExitCode } from "../apps/cli/src/ExitCodes.js"

const root = fileURLToPath(new URL("../", import.meta.url))
const doc = (name: string) => readFileSync(join(root, "docs", name), "utf8")
const workflowFormat = doc("workflow-format.md")
const events = doc("events.md")
const cli = doc("cli.md")

/** The members of a union of structs (or one struct). */
const members = (schema: Schema.Schema.Any): ReadonlyArray<SchemaAST.TypeLiteral> => {
  const ast = schema.ast
  const all: ReadonlyArray<SchemaAST.AST> = SchemaAST.isUnion(ast) ? ast.types : [ast]
  return all.filter((member): member is SchemaAST.TypeLiteral => SchemaAST.isTypeLiteral(member))
}
const fieldsOf = (ast: SchemaAST.TypeLiteral) => ast.propertySignatures.map((p) => String(p.name))
const literalOf = (ast: SchemaAST.TypeLiteral, key: string): string => {
  const type = ast.propertySignatures.find((p) => p.name === key)?.type
  if (type === undefined || !SchemaAST.isLiteral(type)) throw new Error(`no literal ${key}`)
  return String(type.literal)
}

/** The lines of a markdown table whose first cell is `` `name` ``. */
const rowOf = (text: string, name: string) => text.split("\n").find((line) => line.startsWith(`| \`${name}\` |`))

describe("docs/workflow-format.md", () => {
  it("has a section for every node type listing each of its fields", () => {
    for (const node of members(Workflow.WorkflowNode)) {
      const type = literalOf(node, "type")
      const start = workflowFormat.indexOf(`### \`${type}\``)
      assert.isAbove(start, -1, `no section for node type ${type}`)
      const end = workflowFormat.indexOf("\n### ", start + 1)
      const section = workflowFormat.slice(start, end === -1 ? undefined : end)
      for (const field of fieldsOf(node)) {
        if (field === "id" || field === "type") continue
        assert.include(section, `\`${field}\``, `node type ${type}: field ${field} is not documented`)
      }
    }
  })

  it("names every field of the document, agents, inputs and edges", () => {
    for (const schema of [Workflow.WorkflowSpec, Workflow.Agent, Workflow.WorkflowInput, Workflow.Edge, Workflow.McpServerInline]) {
      for (const ast of members(schema)) {
        for (const field of fieldsOf(ast)) assert.include(workflowFormat, `\`${field}\``, `field ${field} is not documented`)
      }
    }
  })

  it("lists every template filter and every built-in tool", () => {
    for (const filter of Template.FilterNames) assert.isDefined(rowOf(workflowFormat, filter === "default" ? "default(VALUE)" : filter), filter)
    const builtins = readFileSync(join(root, "packages/daemon/src/Builtins.ts"), "utf8")
    const names = [...builtins.matchAll(/= define\(\s*"([a-z_]+)"/g)].map((m) => m[1]!)
    assert.isAbove(names.length, 5)
    for (const name of names) assert.include(workflowFormat, `\`${name}\``, `tool ${name}`)
  })

  it("states the limits the loader enforces", () => {
    assert.include(workflowFormat, `| ${Limits.MAX_NESTING_DEPTH} levels |`)
    assert.include(workflowFormat, `| ${WorkflowYaml.MAX_WORKFLOW_BYTES / 1024 / 1024} MiB |`)
    const chars = (n: number) => `| ${n.toLocaleString("en-US")} characters |`
    for (const n of [Limits.MAX_ID_LENGTH, Limits.MAX_NAME_LENGTH, Limits.MAX_LABEL_LENGTH, Limits.MAX_PATH_LENGTH, Limits.MAX_DESCRIPTION_LENGTH, Limits.MAX_TEXT_LENGTH]) {
      assert.include(workflowFormat, chars(n), `limit ${n}`)
    }
  })
})

describe("docs/events.md", () => {
  const envelope = new Set(["type", "runId", "sequenceNumber", "timestamp", "attemptNumber", "chatId", "seq"])
  const check = (schema: Schema.Schema.Any, text: string) => {
    for (const event of members(schema)) {
      const type = literalOf(event, "type")
      const row = rowOf(text, type)
      assert.isDefined(row, `event ${type} is not documented`)
      for (const field of fieldsOf(event)) {
        if (!envelope.has(field)) assert.match(row!, new RegExp(`\`${field}[?\` ]`), `event ${type}: field ${field}`)
      }
    }
  }
  const runPart = events.slice(0, events.indexOf("## Chat events"))
  const chatPart = events.slice(events.indexOf("## Chat events"))
  it("documents every run event with its fields", () => check(RunEvent.RunEvent, runPart))
  it("documents every chat event with its fields", () => check(ChatEvent, chatPart))
  it("explains every error code", () => {
    for (const code of RunError.ErrorCode.literals) assert.isDefined(rowOf(events, code), code)
  })
})

describe("docs/cli.md", () => {
  it("explains every exit code", () => {
    for (const code of Object.values(ExitCode)) assert.match(cli, new RegExp(`^\\| ${code} \\|`, "m"))
  })

  it("names every command", () => {
    const sources = [join(root, "apps/cli/src/main.ts"), ...readdirSync(join(root, "apps/cli/src/commands")).map((f) => join(root, "apps/cli/src/commands", f))]
    const names = sources.flatMap((file) => [...readFileSync(file, "utf8").matchAll(/Command\.make\(\s*"([a-z-]+)"/g)].map((m) => m[1]!))
    assert.isAbove(names.length, 20)
    for (const name of new Set(names)) {
      if (name === "relavium") continue
      assert.match(cli, new RegExp(`\`(relavium )?([a-z-]+ )*${name}[\` \\[]`), `command ${name}`)
    }
  })
})

describe("the repository", () => {
  // Built at run time so that this file does not match itself.
  const outside = new RegExp(["CONTR" + "ACTS", "\u00a7", "\\.\\./sha" + "red"].join("|"))
  const skip = new Set(["node_modules", "dist", ".git"])
  const files = (dir: string): Array<string> =>
    readdirSync(dir).flatMap((name) => {
      if (skip.has(name)) return []
      const path = join(dir, name)
      return statSync(path).isDirectory() ? files(path) : /\.(ts|mts|mjs|js|md|sh|json|yaml)$/.test(name) ? [path] : []
    })

  it("points only into docs/, never at documents outside the repository", () => {
    const offenders = [...["packages", "apps", "test", "scripts", "docs"].flatMap((d) => files(join(root, d))), join(root, "README.md")]
      .filter((file) => outside.test(readFileSync(file, "utf8")))
      .map((file) => relative(root, file))
    assert.deepStrictEqual(offenders, [])
  })

  it("has docs whose relative links resolve", () => {
    for (const file of files(join(root, "docs"))) {
      for (const match of readFileSync(file, "utf8").matchAll(/\]\(([^)#:]+)(#[^)]*)?\)/g)) {
        const target = resolve(dirname(file), match[1]!)
        assert.isTrue(existsSync(target), `${relative(root, file)} links to a missing ${match[1]}`)
      }
    }
  })
})

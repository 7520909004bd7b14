/**
 * The rule that keeps keys out of job payloads and messages, checked on the
 * schemas themselves: every Schema that crosses a process boundary (listed in
 * test/support/boundaries.ts) is walked through its AST (effect/SchemaAST),
 * both its encoded and its decoded side, and fails if it can carry a
 * `Redacted` value or has a property named like a secret. Places typed
 * `Unknown`/`Any` can carry anything, so each one is listed below with why it
 * is not a key.
 */
import { describe, expect, it } from "vitest"
import { Schema, SchemaAST } from "effect"
import { boundarySchemas } from "../support/boundaries.js"

/** Property names that name a secret. `token` is one (a bearer or org token), as are its compounds. */
export const SECRET_NAME = /(api[_-]?key|secret|passw(or)?d|passphrase|token|credential|master|private[_-]?key|authorization|bearer|cookie)/i

/**
 * Properties whose names match {@link SECRET_NAME} but are not secrets, each with why: the end of
 * the property's path (as findings print it) and, where it matters, the only type it may have.
 */
const ALLOWED_NAMES: ReadonlyArray<{ readonly suffix: string; readonly leaf?: "count"; readonly why: string }> = [
  // Token *counts* of model calls (usage and cost), in agent, node, run and chat events: numbers only.
  { suffix: "inputTokens", leaf: "count", why: "a count of prompt tokens" },
  { suffix: "outputTokens", leaf: "count", why: "a count of completion tokens" },
  // A node's { input, output } counts with the model's name (a string, hence no `leaf`).
  { suffix: "tokensUsed", why: "a node's counts of tokens and the model that used them" },
  { suffix: "totalTokensUsed", leaf: "count", why: "a run's counts of tokens ({ input, output })" },
  // `agent:token` events stream the model's answer; known keys are scrubbed from it before it is
  // stored or published (test/security/secrets-reach.test.ts), and a model never gets a key.
  { suffix: "agent:token.token", why: "a piece of the model's streamed answer (a language-model token), scrubbed of known keys" }
]

/** Places typed Unknown or Any (they can hold anything), each with why no key is put there. */
const ALLOWED_OPAQUE: ReadonlyArray<{ readonly suffix: string; readonly why: string }> = [
  // A run's inputs as the caller gave them; inputs the workflow declares `type: secret` are masked
  // before `run:started` is made (packages/domain Inputs), and keys are never run inputs.
  { suffix: "run:started.inputs[*]", why: "run inputs; secret inputs are masked in events" },
  // A tool call's arguments are chosen by the model, which never sees a key (keys travel only in
  // the provider's HTTP header, and tool outputs are scrubbed of known keys before a model sees them).
  { suffix: "call.args", why: "model-chosen tool arguments" },
  { suffix: "tool:call.args", why: "model-chosen tool arguments, as the chat shows them" },
  // A tool definition's JSON-Schema parameters, as built-in tools and MCP servers declare them.
  { suffix: "tools[*].parameters[*]", why: "the JSON Schema of a tool's parameters" },
  { suffix: "[*].parameters[*]", why: "the JSON Schema of a tool's parameters (ListTools)" }
]

export interface SchemaFinding {
  readonly path: string
  readonly problem: "redacted" | "secret name" | "opaque"
  /** For a secret-like name: the property holds only numbers (a count, never a key). */
  readonly leaf?: "count"
}

/**
 * Whether `ast` holds only numbers: a number (through refinements such as Int, and optionality), or
 * a struct of such (`{ input, output }`).
 */
const isCount = (ast: SchemaAST.AST): boolean =>
  ast._tag === "NumberKeyword" ||
  (ast._tag === "Refinement" && isCount(ast.from)) ||
  (ast._tag === "Union" && ast.types.every((t) => t._tag === "UndefinedKeyword" || isCount(t))) ||
  (ast._tag === "TypeLiteral" && ast.indexSignatures.length === 0 && ast.propertySignatures.length > 0 && ast.propertySignatures.every((p) => isCount(p.type)))

const isRedacted = (ast: SchemaAST.Declaration) => {
  const constructor = SchemaAST.getTypeConstructorAnnotation(ast)
  const tag = constructor._tag === "Some" ? (constructor.value as { _tag?: unknown })._tag : undefined
  return tag === "effect/Redacted" || tag === "effect/Secret"
}

const variant = (ast: SchemaAST.AST): string | undefined => {
  if (ast._tag !== "TypeLiteral") return undefined
  for (const p of ast.propertySignatures) {
    if ((p.name === "_tag" || p.name === "type" || p.name === "t" || p.name === "kind") && p.type._tag === "Literal") return String(p.type.literal)
  }
  return undefined
}

/** Every place in `schema` (both sides of each transformation) that can hold a Redacted, has a secret-like name, or is opaque. */
export const inspect = (schema: Schema.Schema.All): Array<SchemaFinding> => {
  const findings: Array<SchemaFinding> = []
  const seen = new Set<SchemaAST.AST>()
  const add = (path: string, problem: SchemaFinding["problem"], leaf?: "count") => {
    if (!findings.some((f) => f.path === path && f.problem === problem)) findings.push(leaf === undefined ? { path, problem } : { path, problem, leaf })
  }
  const walk = (ast: SchemaAST.AST, path: string): void => {
    if (seen.has(ast)) return
    seen.add(ast)
    switch (ast._tag) {
      case "Declaration":
        if (isRedacted(ast)) add(path, "redacted")
        for (const t of ast.typeParameters) walk(t, path)
        return
      case "TypeLiteral": {
        const here = variant(ast) === undefined ? path : `${path === "" ? "" : `${path}.`}${variant(ast)}`
        for (const p of ast.propertySignatures) {
          const name = String(p.name)
          const at = here === "" ? name : `${here}.${name}`
          if (SECRET_NAME.test(name)) add(at, "secret name", isCount(p.type) ? "count" : undefined)
          walk(p.type, at)
        }
        for (const s of ast.indexSignatures) walk(s.type, `${here}[*]`)
        return
      }
      case "Union":
        for (const t of ast.types) walk(t, path)
        return
      case "TupleType":
        ast.elements.forEach((e, i) => walk(e.type, `${path}[${i}]`))
        for (const r of ast.rest) walk(r.type, `${path}[*]`)
        return
      case "Refinement":
        return walk(ast.from, path)
      case "Transformation":
        // A composition (`parseJson(S)`: text → unknown → S) holds S's values: the unknown in
        // between is S encoded, so only the outer encoded side and S are walked.
        walk(ast.transformation._tag === "ComposeTransformation" ? SchemaAST.encodedAST(ast.from) : ast.from, path)
        return walk(ast.to, path)
      case "Suspend":
        return walk(ast.f(), path)
      case "UnknownKeyword":
      case "AnyKeyword":
        return add(path, "opaque")
      default:
        return
    }
  }
  walk(schema.ast, "")
  return findings
}

const matches = (path: string, suffix: string) => path === suffix || path.endsWith(`.${suffix}`)

const allowed = (finding: SchemaFinding) =>
  finding.problem === "secret name"
    ? ALLOWED_NAMES.some((a) => matches(finding.path, a.suffix) && (a.leaf === undefined || a.leaf === finding.leaf))
    : finding.problem === "opaque"
      ? ALLOWED_OPAQUE.some((a) => matches(finding.path, a.suffix))
      : false

describe("no job or message payload can carry a key", () => {
  it("covers the boundary schemas (RunQueue jobs, hub events, chat events, NATS router messages, daemon RPCs)", () => {
    expect(boundarySchemas.map((b) => b.name)).toEqual(
      expect.arrayContaining([
        "RunQueue.Job",
        "RunEvent.RunEvent",
        "ChatEvent",
        "NatsDaemonRouter.Request",
        "NatsDaemonRouter.Reply",
        "NatsDaemonRouter.Cancel",
        "DaemonRpcs.Execute payload",
        "DaemonRpcs.Execute success",
        "DaemonRpcs.ListTools payload",
        "DaemonRpcs.Ping success",
        "DaemonAuth failure"
      ])
    )
  })

  for (const boundary of boundarySchemas) {
    it(`${boundary.name} (${boundary.crosses})`, () => {
      const problems = inspect(boundary.schema).filter((f) => !allowed(f))
      expect(problems.map((p) => `${boundary.name} ${p.path || "(the whole payload)"}: ${p.problem}`)).toEqual([])
    })
  }

  it("every allow-list entry is used (a stale one would hide a new property of that name)", () => {
    const all = boundarySchemas.flatMap((b) => inspect(b.schema))
    for (const { suffix } of [...ALLOWED_NAMES, ...ALLOWED_OPAQUE]) {
      expect(all.some((f) => matches(f.path, suffix)), `${suffix} is allow-listed but nothing has it`).toBe(true)
    }
  })

  describe("the check itself", () => {
    it("flags a Redacted field, nested or optional, on either side of a transformation", () => {
      const WithRedacted = Schema.Struct({ runId: Schema.String, provider: Schema.Struct({ key: Schema.optional(Schema.Redacted(Schema.String)) }) })
      expect(inspect(WithRedacted)).toEqual([{ path: "provider.key", problem: "redacted" }])
      const InUnion = Schema.Union(Schema.TaggedStruct("A", { n: Schema.Number }), Schema.TaggedStruct("B", { k: Schema.RedactedFromSelf(Schema.String) }))
      expect(inspect(InUnion)).toEqual([{ path: "B.k", problem: "redacted" }])
      expect(inspect(Schema.parseJson(WithRedacted))).toEqual([{ path: "provider.key", problem: "redacted" }])
    })

    it("flags a property named like a secret (apiKey, api_key, password, authToken, masterKey, credentials)", () => {
      const Named = Schema.Struct({
        runId: Schema.String,
        apiKey: Schema.String,
        nested: Schema.Array(Schema.Struct({ api_key: Schema.String, authToken: Schema.String, masterKey: Schema.String })),
        password: Schema.String,
        credentials: Schema.Unknown
      })
      expect(inspect(Named)).toEqual([
        { path: "apiKey", problem: "secret name" },
        { path: "nested[*].api_key", problem: "secret name" },
        { path: "nested[*].authToken", problem: "secret name" },
        { path: "nested[*].masterKey", problem: "secret name" },
        { path: "password", problem: "secret name" },
        { path: "credentials", problem: "secret name" },
        { path: "credentials", problem: "opaque" }
      ])
      expect(inspect(Named).filter((f) => !allowed(f))).toHaveLength(7)
    })

    it("flags the same in a class schema and in a recursive one", () => {
      class Sent extends Schema.Class<Sent>("Sent")({ secret: Schema.String }) {}
      expect(inspect(Sent)).toEqual([{ path: "secret", problem: "secret name" }])
      interface Tree {
        readonly children: ReadonlyArray<Tree>
        readonly bearer?: string
      }
      const Tree: Schema.Schema<Tree> = Schema.Struct({
        children: Schema.Array(Schema.suspend((): Schema.Schema<Tree> => Tree)),
        bearer: Schema.optional(Schema.String)
      })
      expect(inspect(Tree)).toEqual([{ path: "bearer", problem: "secret name" }])
    })

    it("passes usage counts and plain ids, but not a count's name on a string", () => {
      const Usage = Schema.Struct({ runId: Schema.String, usage: Schema.Struct({ inputTokens: Schema.Number, outputTokens: Schema.optional(Schema.NonNegativeInt) }) })
      expect(inspect(Usage).filter((f) => !allowed(f))).toEqual([])
      const Disguised = Schema.Struct({ inputTokens: Schema.String })
      expect(inspect(Disguised).filter((f) => !allowed(f))).toEqual([{ path: "inputTokens", problem: "secret name" }])
    })
  })
})

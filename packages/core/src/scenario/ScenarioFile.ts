/**
 * The scenario file format (docs/testing-workflows.md): a workflow to test, and one or more
 * scenarios, each with its inputs, what answers the model (a cassette or scripted answers), what
 * the tools return (the real tools daemon, or scripted results), how its human gates are decided,
 * and what is expected of the run. Read exactly as a workflow is: YAML 1.2 core, strict mappings,
 * every problem located at `file:line:column path`.
 */
import { Either, Schema } from "effect"
import { type Plan, WorkflowYaml } from "@relavium/domain"

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
const Text = Schema.String.pipe(Schema.minLength(1))
const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** A tool call a scripted model answer asks for. */
export const ScriptedToolCall = Schema.Struct({
  name: Text,
  args: Schema.optional(Schema.Unknown),
  id: Schema.optional(Text)
})
export type ScriptedToolCall = typeof ScriptedToolCall.Type

/** One scripted model answer: text, tool calls, or both; `node` sends it to that node's calls only. */
export const ScriptedAnswer = Schema.Struct({
  node: Schema.optional(Text),
  text: Schema.optional(Schema.String),
  tool_calls: Schema.optional(Schema.Array(ScriptedToolCall)),
  usage: Schema.optional(Schema.Struct({ input_tokens: NonNegativeInt, output_tokens: NonNegativeInt }))
})
export type ScriptedAnswer = typeof ScriptedAnswer.Type

/** A scripted answer, or its shorthand: the answer's text. */
export const ModelAnswer = Schema.Union(Schema.String, ScriptedAnswer)
export type ModelAnswer = typeof ModelAnswer.Type

/** The result a tool call gets instead of running: for calls of `name` (at `node`, when given), in order. */
export const ScriptedToolResult = Schema.Struct({
  name: Text,
  node: Schema.optional(Text),
  output: Schema.Unknown,
  is_error: Schema.optional(Schema.Boolean)
})
export type ScriptedToolResult = typeof ScriptedToolResult.Type

/** How a gate is decided: `approve`, `reject`, or an answer for an input gate. */
export const GateAnswer = Schema.Struct({
  decision: Schema.Literal("approve", "reject", "answer"),
  answer: Schema.optional(Schema.Unknown),
  comment: Schema.optional(Schema.String)
})
export const GateDecision = Schema.Union(Schema.Literal("approve", "reject"), GateAnswer)
export type GateDecision = typeof GateDecision.Type

export const RunStatus = Schema.Literal("completed", "failed", "cancelled", "waiting", "timeout")
export type RunStatus = typeof RunStatus.Type

export const Expectations = Schema.Struct({
  /** How the run ends (default `completed`). */
  status: Schema.optional(RunStatus),
  /** The error code of the failure, for `status: failed` (e.g. `budget_exceeded`). */
  error: Schema.optional(Text),
  /** The run's outputs, exactly: every output node, every value. */
  outputs: Schema.optional(JsonObject),
  /** A subset of the outputs: the keys listed (at any depth) have these values; lists match element by element. */
  outputs_match: Schema.optional(JsonObject),
  /** Expressions (the workflow's expression language) that must evaluate to `true`; they read `run.outputs` (every node's output) and `inputs`. */
  assert: Schema.optional(Schema.Array(Text)),
  /** Nodes that ran (completed or failed). */
  ran: Schema.optional(Schema.Array(Text)),
  /** Nodes that were skipped. */
  skipped: Schema.optional(Schema.Array(Text)),
  /** The run's total cost is at most this (1 USD = 100,000,000 microcents). */
  max_cost_microcents: Schema.optional(NonNegativeInt)
})
export type Expectations = typeof Expectations.Type

export const Scenario = Schema.Struct({
  name: Text,
  description: Schema.optional(Schema.String),
  inputs: Schema.optional(JsonObject),
  /** A cassette file (relative to the scenario file) answering the model calls in order. */
  cassette: Schema.optional(Text),
  /** Scripted model answers, in order (an answer with `node` answers only that node's calls). */
  model: Schema.optional(Schema.Array(ModelAnswer)),
  /** Scripted tool results; without them the tools run for real, confined to the workspace. */
  tools: Schema.optional(Schema.Array(ScriptedToolResult)),
  /** How each human gate is decided, by node id (a budget gate: `NODE:budget`). */
  gates: Schema.optional(Schema.Record({ key: Schema.String, value: GateDecision })),
  expect: Schema.optional(Expectations)
})
export type Scenario = typeof Scenario.Type

export const ScenarioDocument = Schema.Struct({
  schema_version: Schema.Literal("1.0"),
  /** The workflow file under test, relative to the scenario file. */
  workflow: Text,
  /** The directory the tools are confined to, relative to the scenario file (default: the scenario file's directory). */
  workspace: Schema.optional(Text),
  scenarios: Schema.NonEmptyArray(Scenario)
})
export type ScenarioDocument = typeof ScenarioDocument.Type

const noun = { noun: "scenario", needs: "a scenario file needs schema_version: '1.0', workflow: and scenarios:" }

/** Parses and decodes a scenario file; checks what needs no workflow (one model source, unique names). */
export const parseScenarioFile = (
  text: string,
  file: string
): Either.Either<ScenarioDocument, WorkflowYaml.WorkflowLoadError> =>
  Either.flatMap(WorkflowYaml.decodeYaml(ScenarioDocument, text, file, noun), (document) => {
    const issues: Array<Issue> = []
    const names = new Set<string>()
    document.scenarios.forEach((scenario, i) => {
      if (scenario.cassette !== undefined && scenario.model !== undefined) {
        issues.push({ path: ["scenarios", i, "model"], at: "key", message: "give either a cassette or scripted model answers, not both" })
      }
      if (names.has(scenario.name)) {
        issues.push({ path: ["scenarios", i, "name"], message: `another scenario of this file is named "${scenario.name}"; names must be unique` })
      }
      names.add(scenario.name)
    })
    return issues.length === 0 ? Either.right(document) : Either.left(WorkflowYaml.locateIssues(text, file, issues))
  })

interface Issue {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
  readonly at?: "key" | "value"
}

/** Every node a scenario names (gates, answers, tool results, expectations) is a node of the workflow. */
export const checkAgainstWorkflow = (
  document: ScenarioDocument,
  plan: Plan.WorkflowPlan,
  text: string,
  file: string
): Either.Either<ScenarioDocument, WorkflowYaml.WorkflowLoadError> => {
  const issues: Array<Issue> = []
  const known = (id: string) => plan.nodes.has(id)
  const nodeList = () => [...plan.nodes.keys()].join(", ")
  const check = (id: string, path: ReadonlyArray<string | number>, at: "key" | "value" = "value") => {
    if (!known(id)) issues.push({ path, at, message: `the workflow ${plan.spec.id} has no node "${id}" (its nodes: ${nodeList()})` })
  }
  document.scenarios.forEach((scenario, i) => {
    for (const gate of Object.keys(scenario.gates ?? {})) {
      const id = gate.endsWith(":budget") ? gate.slice(0, -":budget".length) : gate
      check(id, ["scenarios", i, "gates", gate], "key")
      if (known(id) && !gate.endsWith(":budget") && plan.nodes.get(id)?.type !== "human_gate") {
        issues.push({ path: ["scenarios", i, "gates", gate], at: "key", message: `node "${id}" is not a human_gate node` })
      }
    }
    scenario.model?.forEach((answer, j) => {
      if (typeof answer !== "string" && answer.node !== undefined) check(answer.node, ["scenarios", i, "model", j, "node"])
    })
    scenario.tools?.forEach((tool, j) => {
      if (tool.node !== undefined) check(tool.node, ["scenarios", i, "tools", j, "node"])
    })
    scenario.expect?.ran?.forEach((id, j) => check(id, ["scenarios", i, "expect", "ran", j]))
    scenario.expect?.skipped?.forEach((id, j) => check(id, ["scenarios", i, "expect", "skipped", j]))
  })
  return issues.length === 0 ? Either.right(document) : Either.left(WorkflowYaml.locateIssues(text, file, issues))
}

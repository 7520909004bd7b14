/**
 * The `relavium` binary. Every mode is a subcommand; each subcommand picks its
 * layers in one place (Local.ts for the one-shot local run).
 */
import { Args, Command, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Either, HashMap, Option, Stream } from "effect"
import { WorkflowEngine, WorkflowStore } from "@relavium/core"
import { type Llm, type Plan, RunEvent as RE, WorkflowYaml } from "@relavium/domain"
import { Cassette } from "@relavium/llm"
import { llmLayer, localLayer } from "./Local.js"
import { colors, makeRenderer, plain } from "./Render.js"

const VERSION = "0.1.0"

/** CLI exit codes (CONTRACTS §5). */
export const Exit = { ok: 0, failed: 1, invalid: 2, paused: 3 } as const

/** A failure the user must fix before anything runs: printed on one line, exit 2. */
class Invalid {
  readonly _tag = "Invalid"
  constructor(
    readonly code: string,
    readonly message: string
  ) {}
}

const fail = (code: string, message: string) => Effect.fail(new Invalid(code, message))

const reportInvalid = (json: boolean) => (error: Invalid) =>
  Effect.sync(() => {
    if (json) process.stderr.write(`${JSON.stringify({ type: "error", code: error.code, message: error.message })}\n`)
    else process.stderr.write(`relavium: ${error.message}\n`)
    process.exitCode = Exit.invalid
  })

const loadWorkflow = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(file)
      .pipe(Effect.catchAll((e) => fail("validation", `${file}: cannot read the workflow: ${e.message}`)))
    const plan = WorkflowYaml.parseWorkflow(text, file)
    if (Either.isLeft(plan)) return yield* fail("validation", plan.left.message)
    return { text, plan: plan.right }
  })

const isTty = () => process.stdout.isTTY === true && process.env.NO_COLOR === undefined

// ---------------------------------------------------------------------------
// relavium run
// ---------------------------------------------------------------------------

const runFile = Args.file({ name: "file", exists: "either" }).pipe(
  Args.withDescription("the workflow YAML (*.relavium.yaml) to run")
)
const inputOption = Options.keyValueMap("input").pipe(
  Options.withAlias("i"),
  Options.optional,
  Options.withDescription("an input value, name=value; repeat for each input (values are coerced to the declared type)")
)
const jsonOption = Options.boolean("json").pipe(
  Options.withDescription("print only run events, one JSON object per line (NDJSON), on stdout")
)
const cassetteOption = Options.file("cassette").pipe(
  Options.optional,
  Options.withDescription("replay model calls from a recorded cassette (no key, no network)")
)
const tokenDelayOption = Options.integer("token-delay-ms").pipe(
  Options.withDefault(0),
  Options.withDescription("with --cassette: pause this long between streamed chunks, to watch a replay")
)

const agentsNeedingModels = (plan: Plan.WorkflowPlan) =>
  [...plan.nodes.values()].flatMap((node) => {
    if (node.type !== "agent") return []
    const agent = plan.agents.get(node.agent_ref)
    return agent ? [`${node.id} (${agent.provider}/${node.model ?? agent.model})`] : []
  })

const runCommand = Command.make(
  "run",
  { file: runFile, input: inputOption, json: jsonOption, cassette: cassetteOption, tokenDelayMs: tokenDelayOption },
  ({ cassette, file, input, json, tokenDelayMs }) =>
    Effect.gen(function* () {
      const { plan, text } = yield* loadWorkflow(file)
      let recorded: Llm.Cassette | undefined
      if (Option.isSome(cassette)) {
        recorded = yield* Cassette.readCassetteFile(cassette.value).pipe(
          Effect.catchAll((e) => fail("validation", e.message))
        )
      } else {
        const agents = agentsNeedingModels(plan)
        if (agents.length > 0) {
          return yield* fail(
            "provider_auth",
            `${file}: agent nodes need a model: ${agents.join(", ")}; pass --cassette FILE to replay a recorded one`
          )
        }
      }
      const inputs = Option.match(input, { onNone: () => ({}), onSome: (m) => Object.fromEntries(HashMap.toEntries(m)) })
      const exitCode = yield* Effect.gen(function* () {
        const workflows = yield* WorkflowStore
        const engine = yield* WorkflowEngine
        const stored = yield* workflows.put({ name: plan.spec.id, source: text, file }).pipe(Effect.orDie)
        const handle = yield* engine
          .start(stored.workflowId, inputs, { coerceStrings: true })
          .pipe(Effect.catchAll((e) => fail(e.reason === "invalid_input" ? "validation" : "internal", e.message)))
        const render = makeRenderer(isTty() ? colors : plain, plan.spec.name ?? plan.spec.id)
        let last: RE.RunEvent | undefined
        yield* handle.events.pipe(
          Stream.takeUntil((e) => RE.isTerminal(e) || e.type === "run:paused"),
          Stream.runForEach((event) =>
            Effect.sync(() => {
              last = event
              process.stdout.write(json ? `${RE.encodeRunEventJson(event)}\n` : render(event))
            })
          ),
          Effect.onInterrupt(() =>
            engine.cancel(handle.runId, "interrupted").pipe(Effect.ignore)
          ),
          Effect.orDie
        )
        const lastEvent = last as RE.RunEvent | undefined
        return lastEvent?.type === "run:completed"
          ? Exit.ok
          : lastEvent?.type === "run:paused"
            ? Exit.paused
            : Exit.failed
      }).pipe(Effect.provide(localLayer(llmLayer(recorded, tokenDelayMs))))
      if (exitCode === Exit.paused && !json) {
        process.stderr.write("relavium: the run is paused at a human gate (exit 3)\n")
      }
      process.exitCode = exitCode
    }).pipe(Effect.catchIf((e): e is Invalid => e instanceof Invalid, reportInvalid(json)))
).pipe(Command.withDescription("Run a workflow on this machine and stream its progress"))

// ---------------------------------------------------------------------------
// relavium validate
// ---------------------------------------------------------------------------

const validateCommand = Command.make(
  "validate",
  { file: Args.file({ name: "file", exists: "either" }).pipe(Args.withDescription("the workflow YAML to check")), json: jsonOption },
  ({ file, json }) =>
    loadWorkflow(file).pipe(
      Effect.flatMap(({ plan }) => {
        const edges = [...plan.incoming.values()].reduce((n, e) => n + e.length, 0)
        return json
          ? Console.log(JSON.stringify({ valid: true, workflow: plan.spec.id, nodes: plan.order.length, edges }))
          : Console.log(`${file}: valid — workflow ${plan.spec.id}, ${plan.order.length} nodes, ${edges} dependencies`)
      }),
      Effect.catchIf((e): e is Invalid => e instanceof Invalid, reportInvalid(json))
    )
).pipe(Command.withDescription("Check a workflow without running it"))

// ---------------------------------------------------------------------------

const relavium = Command.make("relavium").pipe(
  Command.withDescription("Relavium — local-first engine for LLM agent workflows"),
  Command.withSubcommands([runCommand, validateCommand])
)

const cli = Command.run(relavium, { name: "relavium", version: VERSION })

cli(process.argv).pipe(
  Effect.catchAllCause((cause) =>
    Effect.sync(() => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) {
        // @effect/cli has already printed the usage error.
        process.exitCode = Exit.invalid
        return
      }
      if (Cause.isInterruptedOnly(cause)) {
        process.exitCode = Exit.failed
        return
      }
      process.stderr.write(`relavium: internal error\n${Cause.pretty(cause)}\n`)
      process.exitCode = Exit.failed
    })
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)

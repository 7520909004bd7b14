/**
 * The `relavium` binary. Every mode is a subcommand; the layers each one runs
 * on are chosen in runtime/ (one module per deployment).
 */
import { Args, Command, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Either, HashMap, Layer, Option } from "effect"
import { WorkflowEngine } from "@relavium/core"
import { KeyStore, WorkflowStore } from "@relavium/ports"
import { Inputs, type Plan, WorkflowYaml } from "@relavium/domain"
import { KeyStores } from "@relavium/keys"
import { Providers } from "@relavium/llm"
import { chat } from "./commands/Chat.js"
import { daemon } from "./commands/Daemon.js"
import { db } from "./commands/Db.js"
import { gate } from "./commands/Gate.js"
import { keys } from "./commands/Keys.js"
import { models } from "./commands/Models.js"
import { monolith } from "./commands/Monolith.js"
import { resume, runs } from "./commands/Runs.js"
import { server } from "./commands/Server.js"
import { cassetteOption, dataDirOption, tokenDelayOption, workspaceOption } from "./commands/Flags.js"
import { ExitCode } from "./ExitCodes.js"
import { followRun } from "./Follow.js"
import { keysLayer, withLocal } from "./runtime/Local.js"
import * as Settings from "./runtime/Settings.js"
import { isUsageProblem, report, UsageProblem } from "./Problem.js"
import { caOption, serverOption, tokenOption, withRemote } from "./Remote.js"

const VERSION = "0.1.0"

const loadWorkflow = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(file)
      .pipe(Effect.mapError((e) => new UsageProblem(`${file}: cannot read the workflow: ${e.message}`)))
    const plan = WorkflowYaml.parseWorkflow(text, file)
    if (Either.isLeft(plan)) return yield* Effect.fail(new UsageProblem(plan.left.message))
    return { text, plan: plan.right }
  })

const jsonOption = Options.boolean("json").pipe(
  Options.withDescription("print only run events, one JSON object per line (NDJSON), on stdout")
)

// ---------------------------------------------------------------------------
// relavium run
// ---------------------------------------------------------------------------

/** Providers the workflow's agents may call (fallbacks included) that need a key. */
const providersNeedingKeys = (plan: Plan.WorkflowPlan) => {
  const providers = new Set<string>()
  for (const node of plan.nodes.values()) {
    if (node.type !== "agent") continue
    const agent = plan.agents.get(node.agent_ref)
    if (agent === undefined) continue
    providers.add(agent.provider)
    for (const fallback of agent.fallback_chain ?? []) providers.add(fallback.provider)
  }
  return [...providers].filter((p) => Providers.builtinProviders[p]?.keyRequired !== false).sort()
}

/** Before anything starts: every provider the run may call has a key, or the user is told how to set it. */
const checkKeys = (plan: Plan.WorkflowPlan, file: string) =>
  Effect.gen(function* () {
    const store = yield* KeyStore
    const missing: Array<string> = []
    for (const provider of providersNeedingKeys(plan)) {
      const key = yield* store.get(provider).pipe(Effect.orElseSucceed(() => Option.none()))
      if (Option.isNone(key)) missing.push(provider)
    }
    if (missing.length > 0) {
      return yield* Effect.fail(
        new UsageProblem(
          `${file}: no API key for ${missing.join(", ")}: ${missing.map((p) => KeyStores.howToSet(p)).join("; ")} — or pass --cassette FILE to replay a recorded model`,
          "provider_auth"
        )
      )
    }
  })

/**
 * `relavium run FILE --server URL`: uploads the workflow to a running monolith, starts it there and
 * follows its events over SSE, rendered and with exit codes exactly as a local run.
 */
const runRemote = (
  run: {
    readonly file: string
    readonly text: string
    readonly plan: Plan.WorkflowPlan
    readonly inputs: Readonly<Record<string, string>>
    readonly json: boolean
  },
  options: Parameters<typeof withRemote>[0]
) =>
  Effect.gen(function* () {
    // The API takes typed values: coerce the --input strings here, as the local engine does.
    const resolved = Inputs.resolveInputs(run.plan.spec.inputs, run.inputs, { coerceStrings: true })
    if (Either.isLeft(resolved)) return yield* Effect.fail(new UsageProblem(resolved.left.message))
    const inputs = Object.fromEntries(Object.keys(run.inputs).map((name) => [name, resolved.right[name]]))
    return yield* withRemote(options, (remote) =>
      Effect.gen(function* () {
        const stored = yield* remote.call(remote.api.workflows.upload({ payload: { yaml: run.text, file: run.file } }))
        const started = yield* remote.call(remote.api.runs.start({ payload: { workflowId: stored.workflowId, inputs } }))
        return yield* remote.follow(started.runId, {
          json: run.json,
          workflowName: run.plan.spec.name ?? run.plan.spec.id,
          cancelOnInterrupt: true
        })
      })
    )
  })

const runCommand = Command.make(
  "run",
  {
    file: Args.file({ name: "file", exists: "either" }).pipe(Args.withDescription("the workflow YAML (*.relavium.yaml) to run")),
    input: Options.keyValueMap("input").pipe(
      Options.withAlias("i"),
      Options.optional,
      Options.withDescription("an input value, name=value; repeat for each input (values are coerced to the declared type)")
    ),
    json: jsonOption,
    cassette: cassetteOption,
    tokenDelayMs: tokenDelayOption,
    dataDir: dataDirOption,
    workspace: workspaceOption,
    server: serverOption,
    token: tokenOption,
    ca: caOption
  },
  ({ ca, cassette, dataDir, file, input, json, server, token, tokenDelayMs, workspace }) =>
    Effect.gen(function* () {
      const { plan, text } = yield* loadWorkflow(file)
      const inputs = Option.match(input, { onNone: () => ({}), onSome: (m) => Object.fromEntries(HashMap.toEntries(m)) })
      if (Option.isSome(server)) {
        if (Option.isSome(cassette) || Option.isSome(workspace)) {
          return yield* Effect.fail(
            new UsageProblem("--cassette and --workspace apply to local runs; with --server, give them to `relavium monolith`")
          )
        }
        process.exitCode = yield* runRemote({ file, inputs, json, plan, text }, { server: server.value, token, ca, dataDir })
        return
      }
      const cassetteFile = Option.getOrUndefined(cassette)
      process.exitCode = yield* withLocal(
        Effect.gen(function* () {
          if (cassetteFile === undefined) yield* checkKeys(plan, file)
          const workflows = yield* WorkflowStore
          const engine = yield* WorkflowEngine
          const stored = yield* workflows.put({ name: plan.spec.id, source: text, file }).pipe(Effect.orDie)
          const handle = yield* engine
            .start(stored.workflowId, inputs, { coerceStrings: true })
            .pipe(Effect.mapError((e) => new UsageProblem(e.message, e.reason === "invalid_input" ? "validation" : e.reason)))
          return yield* followRun(handle.runId, { json, workflowName: plan.spec.name ?? plan.spec.id })
        }),
        { dataDir, cassette: cassetteFile, tokenDelayMs, workspace }
      )
    }).pipe(Effect.catchIf(isUsageProblem, report(json)))
).pipe(Command.withDescription(
    "Run a workflow on this machine (or on a monolith with --server) and stream its progress (runs are stored: see `runs`, `resume`, `gate`)"
  ))

// ---------------------------------------------------------------------------
// relavium validate
// ---------------------------------------------------------------------------

const validateCommand = Command.make(
  "validate",
  {
    file: Args.file({ name: "file", exists: "either" }).pipe(Args.withDescription("the workflow YAML to check")),
    json: Options.boolean("json").pipe(Options.withDescription("print the result as JSON"))
  },
  ({ file, json }) =>
    loadWorkflow(file).pipe(
      Effect.flatMap(({ plan }) => {
        const edges = [...plan.incoming.values()].reduce((n, e) => n + e.length, 0)
        return json
          ? Console.log(JSON.stringify({ valid: true, workflow: plan.spec.id, nodes: plan.order.length, edges }))
          : Console.log(`${file}: valid — workflow ${plan.spec.id}, ${plan.order.length} nodes, ${edges} dependencies`)
      }),
      Effect.catchIf(isUsageProblem, report(json))
    )
).pipe(Command.withDescription("Check a workflow without running it"))

// ---------------------------------------------------------------------------

const relavium = Command.make("relavium").pipe(
  Command.withDescription("Relavium — local-first engine for LLM agent workflows"),
  Command.withSubcommands([
    runCommand,
    validateCommand,
    resume,
    runs,
    gate,
    chat,
    keys.pipe(Command.provide(Layer.unwrapEffect(Effect.map(Settings.dataDir(), keysLayer)))),
    models,
    daemon,
    monolith,
    server,
    db
  ])
)

const cli = Command.run(relavium, { name: "relavium", version: VERSION })

cli(process.argv).pipe(
  Effect.catchAllCause((cause) =>
    Effect.sync(() => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) {
        // @effect/cli has already printed the usage error.
        process.exitCode = ExitCode.invalid
        return
      }
      if (Cause.isInterruptedOnly(cause)) {
        // A server stopped by a signal has already said how it ended; anything else was cut short.
        process.exitCode ??= ExitCode.failed
        return
      }
      process.stderr.write(`relavium: internal error\n${Cause.pretty(cause)}\n`)
      process.exitCode = ExitCode.failed
    })
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)

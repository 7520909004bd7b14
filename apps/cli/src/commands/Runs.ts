/**
 * `relavium runs list|show|logs|cancel|prune|fork|retry` and `relavium resume` (what they do is in
 * handlers/Runs.ts and handlers/RunsFork.ts): looking after runs stored in the local database
 * (WorkflowEngine, RunStore and WorkflowStore on the durable local layers) or,
 * with `--server URL`, on a running monolith over its API (all but prune), with
 * the same output and exit codes.
 */
import { Args, Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import { caOption, cassetteOption, dataDirOption, serverOption, tokenOption, workspaceOption } from "./Flags.js"

/** `--server URL [--token T] [--ca FILE]`: talk to a running monolith instead of the local database. */
export const remoteOptions = { server: serverOption, token: tokenOption, ca: caOption }

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("print JSON for machines"))
export const runIdArg = Args.text({ name: "run-id" }).pipe(Args.withDescription("the run's id (as printed by `relavium run` and `runs list`)"))

const listConfig = {
  json: jsonOption,
  dataDir: dataDirOption,
  status: Options.choice("status", ["running", "waiting", "completed", "failed", "cancelled"]).pipe(Options.optional),
  limit: Options.integer("limit").pipe(Options.withDefault(20)),
  ...remoteOptions
}

const list = Command.make("list", listConfig, lazy(() => import("../handlers/Runs.js"), (m) => m.list)).pipe(Command.withDescription("List recent runs, newest first"))

const showConfig = { runId: runIdArg, json: jsonOption, dataDir: dataDirOption, ...remoteOptions }

const show = Command.make("show", showConfig, lazy(() => import("../handlers/Runs.js"), (m) => m.show)).pipe(Command.withDescription("Show a run: status, nodes, pending gates, outputs"))

const logsConfig = {
  runId: runIdArg,
  json: jsonOption,
  dataDir: dataDirOption,
  follow: Options.boolean("follow").pipe(Options.withAlias("f"), Options.withDescription("keep printing new events until the run ends")),
  ...remoteOptions
}

const logs = Command.make("logs", logsConfig, lazy(() => import("../handlers/Runs.js"), (m) => m.logs)).pipe(Command.withDescription("Print a run's event log (rendered, or NDJSON with --json)"))

const cancelConfig = { runId: runIdArg, json: jsonOption, dataDir: dataDirOption, ...remoteOptions }

const cancel = Command.make("cancel", cancelConfig, lazy(() => import("../handlers/Runs.js"), (m) => m.cancel)).pipe(Command.withDescription("Cancel a run that has not ended"))

const pruneConfig = {
  olderThan: Options.text("older-than").pipe(Options.withDescription("age of ended runs to delete, e.g. 7d, 12h, 30m")),
  json: jsonOption,
  dataDir: dataDirOption
}

const prune = Command.make("prune", pruneConfig, lazy(() => import("../handlers/Runs.js"), (m) => m.prune)).pipe(Command.withDescription("Delete ended runs (completed, failed, cancelled) older than an age"))

const inputOption = (description: string) =>
  Options.keyValueMap("input").pipe(Options.withAlias("i"), Options.optional, Options.withDescription(description))

const detachOption = Options.boolean("detach").pipe(
  Options.withDescription("with --server: print the new run's id and return, without following it")
)

/** `runs fork` and `runs retry` run nodes locally like `relavium run`: the same cassette and workspace flags. */
const newRunConfig = {
  runId: runIdArg,
  json: jsonOption,
  detach: detachOption,
  dataDir: dataDirOption,
  workspace: workspaceOption,
  cassette: cassetteOption,
  ...remoteOptions
}

const forkConfig = {
  ...newRunConfig,
  from: Options.text("from").pipe(Options.withDescription("the node to run again, with everything downstream of it")),
  input: inputOption("an input to change, name=value (repeat); secret inputs must be given again")
}

const fork = Command.make("fork", forkConfig, lazy(() => import("../handlers/RunsFork.js"), (m) => m.fork)).pipe(
  Command.withDescription("Start a new run of an ended run from one of its nodes: earlier outputs are reused, the node and what follows run again")
)

const retryConfig = { ...newRunConfig, input: inputOption("a secret input of the run, name=value (their values are never stored)") }

const retry = Command.make("retry", retryConfig, lazy(() => import("../handlers/RunsFork.js"), (m) => m.retry)).pipe(
  Command.withDescription("Continue a failed or cancelled run as a new run: completed nodes are reused, the rest run again")
)

export const runs = Command.make("runs").pipe(
  Command.withDescription("Look after stored runs"),
  Command.withSubcommands([list, show, logs, cancel, prune, fork, retry])
)

/** `relavium resume RUN`: continues a run whose process died, without re-running completed nodes. */
const resumeConfig = { runId: runIdArg, json: jsonOption, dataDir: dataDirOption, workspace: workspaceOption, ...remoteOptions }

export const resume = Command.make("resume", resumeConfig, lazy(() => import("../handlers/Runs.js"), (m) => m.resume)).pipe(Command.withDescription("Continue a run that was interrupted (its process died or was killed); with --server, on a monolith"))

/** What each command's handler gets (handlers/hRuns.ts). */
export interface RunsArgs {
  readonly list: Command.Command.ParseConfig<typeof listConfig>
  readonly show: Command.Command.ParseConfig<typeof showConfig>
  readonly logs: Command.Command.ParseConfig<typeof logsConfig>
  readonly cancel: Command.Command.ParseConfig<typeof cancelConfig>
  readonly prune: Command.Command.ParseConfig<typeof pruneConfig>
  readonly resume: Command.Command.ParseConfig<typeof resumeConfig>
  readonly fork: Command.Command.ParseConfig<typeof forkConfig>
  readonly retry: Command.Command.ParseConfig<typeof retryConfig>
}

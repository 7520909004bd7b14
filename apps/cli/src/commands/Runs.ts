/**
 * `relavium runs list|show|logs|cancel|prune` and `relavium resume` (what they do is in
 * handlers/Runs.ts): looking after runs stored in the local database
 * (WorkflowEngine, RunStore and WorkflowStore on the durable local layers) or,
 * with `--server URL`, on a running monolith over its API (all but prune), with
 * the same output and exit codes.
 */
import { Args, Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import { caOption, dataDirOption, serverOption, tokenOption, workspaceOption } from "./Flags.js"

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

export const runs = Command.make("runs").pipe(
  Command.withDescription("Look after stored runs"),
  Command.withSubcommands([list, show, logs, cancel, prune])
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
}

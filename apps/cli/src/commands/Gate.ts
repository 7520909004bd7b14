/**
 * `relavium gate list` and `relavium gate RUN --approve|--reject|--input JSON`:
 * deciding a human gate from any process. After the decision this process
 * continues the run until it ends or pauses again (handlers/Gate.ts).
 */
import { Args, Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import { dataDirOption, workspaceOption } from "./Flags.js"
import { jsonOption, remoteOptions } from "./Runs.js"

const listConfig = { json: jsonOption, dataDir: dataDirOption, ...remoteOptions }

const list = Command.make("list", listConfig, lazy(() => import("../handlers/Gate.js"), (m) => m.list)).pipe(Command.withDescription("List the gates waiting for a decision"))

const decide = {
  runId: Args.text({ name: "run-id" }).pipe(Args.withDescription("the paused run"), Args.optional),
  approve: Options.boolean("approve").pipe(Options.withDescription("approve the gate")),
  reject: Options.boolean("reject").pipe(Options.withDescription("reject the gate (the run goes on; the gate's output says rejected)")),
  input: Options.text("input").pipe(Options.optional, Options.withDescription("answer an input gate with this JSON value")),
  gate: Options.text("gate").pipe(Options.optional, Options.withDescription("which gate, when the run waits at several")),
  comment: Options.text("comment").pipe(Options.optional, Options.withDescription("a note recorded with the decision")),
  json: jsonOption,
  dataDir: dataDirOption,
  workspace: workspaceOption,
  noWait: Options.boolean("no-wait").pipe(Options.withDescription("record the decision and return without continuing the run here")),
  ...remoteOptions
}

export const gate = Command.make("gate", decide, lazy(() => import("../handlers/Gate.js"), (m) => m.gate)).pipe(
  Command.withDescription("Decide a human gate of a paused run, then continue the run"),
  Command.withSubcommands([list])
)

/** What each command's handler gets (handlers/Gate.ts). */
export interface GateArgs {
  readonly list: Command.Command.ParseConfig<typeof listConfig>
  readonly gate: Command.Command.ParseConfig<typeof decide>
}

/**
 * `relavium usage [--from --to --group-by] [--csv] [--json]`: the organisation's cost by day,
 * workflow, model, member or trigger, through a server's API (`--server URL --token TOKEN`, as
 * `relavium org` and `token` do); what it prints is in handlers/Usage.ts.
 */
import { Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import { dataDirOption } from "./Flags.js"
import { jsonOption, remoteOptions } from "./Runs.js"

export const usageConfig = {
  from: Options.text("from").pipe(Options.optional, Options.withDescription("from this date or time, inclusive (default: the first day of this month), e.g. 2026-11-01")),
  to: Options.text("to").pipe(Options.optional, Options.withDescription("until this date or time, exclusive (default: now)")),
  groupBy: Options.choice("group-by", ["day", "workflow", "model", "member", "trigger"]).pipe(
    Options.withDefault("day" as const),
    Options.withDescription("what the rows are: day, workflow, model, member (who started the run) or trigger")
  ),
  csv: Options.boolean("csv").pipe(Options.withDescription("print CSV (header, ISO dates, cents with six decimals)")),
  json: jsonOption,
  dataDir: dataDirOption,
  ...remoteOptions
}

export type UsageArgs = Command.Command.ParseConfig<typeof usageConfig>

export const usage = Command.make("usage", usageConfig, lazy(() => import("../handlers/Usage.js"), (m) => m.run)).pipe(
  Command.withDescription("The organisation's cost by day, workflow, model, member or trigger (needs --server)")
)

/**
 * `relavium notify channel set|list|remove`, `relavium notify deliveries` and `relavium budget
 * set|show`: the organisation's notification channels, what was sent, and its monthly budget,
 * through a server's API (`--server URL --token TOKEN`); see handlers/Notify.ts. A channel's
 * secret is read from stdin (`--secret-stdin`), never from the command line.
 */
import { Args, Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import { dataDirOption } from "./Flags.js"
import { jsonOption, remoteOptions } from "./Runs.js"

const access = { json: jsonOption, dataDir: dataDirOption, ...remoteOptions }
const notify = lazy(() => import("../handlers/Notify.js"), (m) => m.run)
const nameArg = Args.text({ name: "name" }).pipe(Args.withDescription("the channel's name (a-z, 0-9, '-', '_')"))

const channelSetConfig = {
  name: nameArg,
  settings: Options.text("settings").pipe(
    Options.withDescription(`the channel's settings as JSON, e.g. '{"kind":"email","host":"smtp.example.com","port":587,"from":"relavium@example.com","to":["ops@example.com"]}', '{"kind":"slack"}' or '{"kind":"webhook","url":"https://…"}'`)
  ),
  secretStdin: Options.boolean("secret-stdin").pipe(
    Options.withDescription("read the secret (SMTP password, Slack webhook URL, webhook signing secret) from stdin")
  ),
  disabled: Options.boolean("disabled").pipe(Options.withDescription("keep the channel but send nothing through it")),
  ...access
}
const channelListConfig = access
const channelRemoveConfig = { name: nameArg, ...access }
const deliveriesConfig = { run: Options.text("run").pipe(Options.optional, Options.withDescription("only the deliveries of this run")), ...access }
const budgetSetConfig = {
  monthlyCents: Options.float("monthly-cents").pipe(Options.withDescription("the monthly limit in cents")),
  thresholds: Options.text("thresholds").pipe(Options.optional, Options.withDescription("percentages notified once a month each (default 50,80,100)")),
  ...access
}

export type NotifyArgs =
  | ({ readonly command: "channel.set" } & Command.Command.ParseConfig<typeof channelSetConfig>)
  | ({ readonly command: "channel.list" | "budget.show" } & Command.Command.ParseConfig<typeof channelListConfig>)
  | ({ readonly command: "channel.remove" } & Command.Command.ParseConfig<typeof channelRemoveConfig>)
  | ({ readonly command: "deliveries" } & Command.Command.ParseConfig<typeof deliveriesConfig>)
  | ({ readonly command: "budget.set" } & Command.Command.ParseConfig<typeof budgetSetConfig>)

const channel = Command.make("channel").pipe(
  Command.withDescription("Where gate and budget notifications go"),
  Command.withSubcommands([
    Command.make("set", channelSetConfig, (args) => notify({ command: "channel.set", ...args })).pipe(
      Command.withDescription("Create or replace a channel (email, slack, webhook); its secret from stdin")
    ),
    Command.make("list", channelListConfig, (args) => notify({ command: "channel.list", ...args })).pipe(
      Command.withDescription("List the channels (never their secrets)")
    ),
    Command.make("remove", channelRemoveConfig, (args) => notify({ command: "channel.remove", ...args })).pipe(
      Command.withDescription("Remove a channel")
    )
  ])
)

const deliveries = Command.make("deliveries", deliveriesConfig, (args) => notify({ command: "deliveries", ...args })).pipe(
  Command.withDescription("What was sent: each delivery's channel, status, attempts and last error")
)

export const notifications = Command.make("notify").pipe(
  Command.withDescription("Gate and budget notifications"),
  Command.withSubcommands([channel, deliveries])
)

export const budget = Command.make("budget").pipe(
  Command.withDescription("The organisation's monthly budget and its alerts"),
  Command.withSubcommands([
    Command.make("set", budgetSetConfig, (args) => notify({ command: "budget.set", ...args })).pipe(
      Command.withDescription("Set the monthly budget and the thresholds that are notified")
    ),
    Command.make("show", channelListConfig, (args) => notify({ command: "budget.show", ...args })).pipe(
      Command.withDescription("The budget and this month's spend")
    )
  ])
)

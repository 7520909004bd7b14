/**
 * `relavium triggers list|create|delete|rotate-secret` (what they do is in handlers/Triggers.ts):
 * an organisation's webhook and schedule triggers, through a server's API (`--server URL --token
 * TOKEN`, as the token's role). See docs/triggers.md.
 */
import { Args, Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import { dataDirOption } from "./Flags.js"
import { jsonOption, remoteOptions } from "./Runs.js"

const accessOptions = { ...remoteOptions, dataDir: dataDirOption, json: jsonOption }

const handler = lazy(() => import("../handlers/Triggers.js"), (m) => m.run)

const triggerIdArg = Args.text({ name: "trigger-id" }).pipe(Args.withDescription("the trigger's id (see `triggers list`)"))

const list = Command.make("list", accessOptions, (args) => handler({ command: "list", ...args })).pipe(
  Command.withDescription("List the organisation's triggers (never their secrets)")
)

const createConfig = {
  workflow: Options.text("workflow").pipe(Options.withDescription("the id of the workflow the trigger starts (see `relavium runs` / GET /workflows)")),
  name: Options.text("name").pipe(Options.withDescription("what the trigger is for")),
  kind: Options.choice("kind", ["webhook", "schedule"] as const).pipe(Options.withDescription("a signed webhook, or a cron schedule")),
  template: Options.text("template").pipe(
    Options.optional,
    Options.withDescription("webhook: a JSON object of input name → template over the body, e.g. '{\"title\":\"{{ ctx.body.issue.title }}\"}' (default: the body is the inputs)")
  ),
  cron: Options.text("cron").pipe(Options.optional, Options.withDescription("schedule: 5 fields, or 6 with seconds first, e.g. '0 9 * * 1-5'")),
  timezone: Options.text("timezone").pipe(Options.optional, Options.withDescription("schedule: an IANA time zone (default UTC)")),
  missed: Options.choice("missed", ["run_once", "skip"] as const).pipe(
    Options.optional,
    Options.withDescription("schedule: fires missed while nothing ran — run the newest once at start, or skip them (default)")
  ),
  inputs: Options.text("inputs").pipe(Options.optional, Options.withDescription("schedule: a JSON object of the inputs of every fire")),
  rateLimit: Options.integer("rate-limit").pipe(Options.optional, Options.withDescription("deliveries a minute (default 60)")),
  ...accessOptions
}

const create = Command.make("create", createConfig, (args) => handler({ command: "create", ...args })).pipe(
  Command.withDescription("Create a trigger; a webhook's signing secret is printed once and never again")
)

const deleteConfig = { triggerId: triggerIdArg, ...accessOptions }

const remove = Command.make("delete", deleteConfig, (args) => handler({ command: "delete", ...args })).pipe(
  Command.withDescription("Delete a trigger: its webhook refuses deliveries, its schedule stops firing")
)

const rotateConfig = {
  triggerId: triggerIdArg,
  graceSeconds: Options.integer("grace-seconds").pipe(
    Options.optional,
    Options.withDescription("how long the previous secret is still accepted (default 86400; 0 drops it at once)")
  ),
  ...accessOptions
}

const rotate = Command.make("rotate-secret", rotateConfig, (args) => handler({ command: "rotate-secret", ...args })).pipe(
  Command.withDescription("A new signing secret for a webhook trigger, printed once; the previous one works until the grace period ends")
)

export const triggers = Command.make("triggers").pipe(
  Command.withDescription("Webhook and schedule triggers that start runs"),
  Command.withSubcommands([list, create, remove, rotate])
)

/** What the handler gets, one case per command. */
export type TriggersArgs =
  | ({ readonly command: "list" } & Command.Command.ParseConfig<typeof accessOptions>)
  | ({ readonly command: "create" } & Command.Command.ParseConfig<typeof createConfig>)
  | ({ readonly command: "delete" } & Command.Command.ParseConfig<typeof deleteConfig>)
  | ({ readonly command: "rotate-secret" } & Command.Command.ParseConfig<typeof rotateConfig>)

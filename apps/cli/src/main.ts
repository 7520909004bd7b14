/**
 * The `relavium` binary. Every mode is a subcommand; the layers each one runs
 * on are chosen in runtime/ (one module per deployment). The definitions of the
 * commands (flags, help) are in commands/; what a command does is loaded when
 * it runs (see Lazy.ts), so each command loads only what it uses.
 */
import { Command, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Option } from "effect"
import { chat } from "./commands/Chat.js"
import { daemon } from "./commands/Daemon.js"
import { db } from "./commands/Db.js"
import { gate } from "./commands/Gate.js"
import { keys } from "./commands/Keys.js"
import { models } from "./commands/Models.js"
import { monolith } from "./commands/Monolith.js"
import { run, validate } from "./commands/Run.js"
import { resume, runs } from "./commands/Runs.js"
import { server } from "./commands/Server.js"
import { audit, member, org, token } from "./commands/Tenancy.js"
import { triggers } from "./commands/Triggers.js"
import { test } from "./commands/Test.js"
import { usage } from "./commands/Usage.js"
import { budget, notifications } from "./commands/Notify.js"
import { ExitCode } from "./ExitCodes.js"

/** apps/cli/package.json's version, put in by build.mjs. */
declare const __RELAVIUM_VERSION__: string

const relavium = Command.make("relavium").pipe(
  Command.withDescription("Relavium — local-first engine for LLM agent workflows"),
  Command.withSubcommands([run, validate, test, resume, runs, gate, chat, keys, models, daemon, monolith, server, db, org, token, member, audit, triggers, usage, notifications, budget])
)

const cli = Command.run(relavium, { name: "relavium", version: __RELAVIUM_VERSION__ })

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

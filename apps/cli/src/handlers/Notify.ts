/**
 * The `relavium notify` and `relavium budget` commands on a server's API: the settings JSON is
 * decoded here with the API's own schema (a located error before anything is sent), the secret is
 * read from stdin, and answers are printed as aligned lines or JSON (`--json`).
 */
import { Console, Effect, Option, ParseResult, Redacted, Schema } from "effect"
import { ChannelSettings } from "@relavium/ports"
import type { NotifyArgs } from "../commands/Notify.js"
import { withRemote } from "../LazyRemote.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"
import type * as Remote from "../Remote.js"

const readStdin = Effect.async<string>((resume) => {
  let text = ""
  process.stdin.setEncoding("utf8")
  process.stdin.on("data", (chunk) => (text += chunk))
  process.stdin.on("end", () => resume(Effect.succeed(text)))
  process.stdin.on("error", () => resume(Effect.succeed(text)))
})

const decodeSettings = (text: string) =>
  Schema.decodeUnknown(Schema.parseJson(ChannelSettings))(text).pipe(
    Effect.mapError((e) => new UsageProblem(`--settings: ${ParseResult.TreeFormatter.formatErrorSync(e)}`))
  )

const thresholdsOf = (text: string) => {
  const values = text.split(",").map((s) => Number(s.trim()))
  return values.every((n) => Number.isInteger(n) && n >= 1 && n <= 1000)
    ? Effect.succeed(values)
    : Effect.fail(new UsageProblem(`--thresholds: whole percentages from 1 to 1000, separated by commas (e.g. 50,80,100), not '${text}'`))
}

const act = (args: NotifyArgs, remote: Remote.Remote) =>
  Effect.gen(function* () {
    const print = (value: unknown, text: () => string) => Console.log(args.json ? JSON.stringify(value) : text())
    switch (args.command) {
      case "channel.set": {
        const settings = yield* decodeSettings(args.settings)
        const secret = args.secretStdin ? (yield* readStdin).trim() : undefined
        if (secret === "") return yield* Effect.fail(new UsageProblem("--secret-stdin: nothing was read from stdin"))
        const channel = yield* remote.call(
          remote.api.notifications.setChannel({
            path: { name: args.name },
            payload: { settings, secret: secret === undefined ? undefined : Redacted.make(secret), enabled: !args.disabled }
          })
        )
        return yield* print(channel, () => `channel ${channel.name} (${channel.kind}) set${channel.hasSecret ? ", with its secret" : ""}`)
      }
      case "channel.list": {
        const channels = yield* remote.call(remote.api.notifications.channels())
        return yield* print(channels, () =>
          channels.map((c) => `${c.name}  ${c.kind}  ${c.enabled ? "enabled" : "disabled"}${c.hasSecret ? "  secret stored" : ""}`).join("\n") || "no channels"
        )
      }
      case "channel.remove": {
        yield* remote.call(remote.api.notifications.removeChannel({ path: { name: args.name } }))
        return yield* print({ removed: args.name }, () => `removed channel ${args.name}`)
      }
      case "deliveries": {
        const list = yield* remote.call(remote.api.notifications.deliveries({ urlParams: { runId: Option.getOrUndefined(args.run) } }))
        return yield* print(list, () =>
          list.map((d) => `${d.id}  ${d.subject}  ${d.status}  attempts ${d.attempts}${d.lastError === null ? "" : `  ${d.lastError}`}`).join("\n") ||
          "no deliveries"
        )
      }
      case "budget.set": {
        const thresholds = Option.isSome(args.thresholds) ? yield* thresholdsOf(args.thresholds.value) : undefined
        const view = yield* remote.call(remote.api.notifications.setBudget({ payload: { monthlyLimitCents: args.monthlyCents, thresholds } }))
        return yield* print(view, () => `monthly budget ${args.monthlyCents} cents, alerts at ${view.budget?.thresholds.join(", ")} %`)
      }
      case "budget.show": {
        const view = yield* remote.call(remote.api.notifications.budget())
        return yield* print(view, () =>
          view.budget === null
            ? `no budget; spent ${view.spentMicrocents / 1_000_000} cents in ${view.period}`
            : `spent ${view.spentMicrocents / 1_000_000} of ${view.budget.monthlyLimitMicrocents / 1_000_000} cents in ${view.period}; alerts at ${view.budget.thresholds.join(", ")} %`
        )
      }
    }
  })

const dispatch = (args: NotifyArgs) =>
  Effect.gen(function* () {
    if (Option.isNone(args.server)) return yield* Effect.fail(new UsageProblem("this command works on a server: pass --server URL --token TOKEN"))
    const options = { server: args.server.value, token: args.token, ca: args.ca, dataDir: args.dataDir }
    yield* withRemote(options, (remote) => act(args, remote)).pipe(
      Effect.mapError((e) => (isUsageProblem(e) ? e : new UsageProblem(String(e), "server")))
    )
  })

export const run = (args: NotifyArgs) => dispatch(args).pipe(Effect.catchIf(isUsageProblem, report(args.json)))

/**
 * `relavium triggers list|create|delete|rotate-secret` through a server's API (`--server`, as the
 * token's role: the server checks what it may do). Input is decoded with the API's own schemas
 * before anything is sent, so bad input is exit 2 with a located message and changes nothing. A
 * secret is printed once (stdout), with a warning on stderr to store it.
 */
import { Console, Effect, Option, ParseResult, Redacted, Schema } from "effect"
import { TriggersApi } from "@relavium/server"
import type { TriggersArgs } from "../commands/Triggers.js"
import { withRemote } from "../LazyRemote.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"
import type * as Remote from "../Remote.js"

type TriggerRow = typeof TriggersApi.TriggerView.Type

const json = (value: unknown) => Console.log(JSON.stringify(value))

const warnOnce = Effect.sync(() =>
  process.stderr.write("relavium: store this secret now (e.g. in your webhook sender's settings): it is shown only this once\n")
)

const located = (what: string) => (error: ParseResult.ParseError) => {
  const first = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const path = first === undefined || first.path.length === 0 ? "" : ` at ${first.path.join(".")}`
  return new UsageProblem(`${what}${path}: ${first?.message ?? error.message}`)
}

const jsonObject = (text: string, flag: string) =>
  Effect.try({ try: (): unknown => JSON.parse(text), catch: (e) => new UsageProblem(`${flag} is not JSON: ${(e as Error).message}`) })

const withServer = <A>(args: TriggersArgs, use: (remote: Remote.Remote) => Effect.Effect<A, UsageProblem>) => {
  if (Option.isNone(args.server)) {
    return Effect.fail(new UsageProblem("relavium triggers works through a server: pass --server URL --token TOKEN"))
  }
  return withRemote({ server: args.server.value, token: args.token, ca: args.ca, dataDir: args.dataDir }, use).pipe(
    Effect.mapError((e) => (isUsageProblem(e) ? e : new UsageProblem(String(e), "server")))
  )
}

const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(headers), ...rows.map(line)].join("\n")
}

const what = (t: TriggerRow) => (t.kind === "webhook" ? `POST ${t.hookPath ?? ""}` : `${t.cron ?? ""} (${t.timezone ?? "UTC"}, missed: ${t.missed ?? "skip"})`)

const dispatch = (args: TriggersArgs): Effect.Effect<void, UsageProblem> => {
  switch (args.command) {
    case "list":
      return Effect.gen(function* () {
        const rows = yield* withServer(args, (remote) => remote.call(remote.api.triggers.list()))
        if (args.json) return yield* json(rows)
        if (rows.length === 0) return yield* Console.log("no triggers — make one with `relavium triggers create`")
        yield* Console.log(table(["ID", "KIND", "NAME", "WORKFLOW", "WHEN", "CREATED"], rows.map((t) => [t.id, t.kind, t.name, t.workflowId, what(t), t.createdAt])))
      })
    case "create":
      return Effect.gen(function* () {
        const payload = yield* Schema.decodeUnknown(TriggersApi.NewTriggerPayload)({
          workflowId: args.workflow,
          kind: args.kind,
          name: args.name,
          inputTemplate: Option.isSome(args.template) ? yield* jsonObject(args.template.value, "--template") : undefined,
          inputs: Option.isSome(args.inputs) ? yield* jsonObject(args.inputs.value, "--inputs") : undefined,
          cron: Option.getOrUndefined(args.cron),
          timezone: Option.getOrUndefined(args.timezone),
          missed: Option.getOrUndefined(args.missed),
          rateLimitPerMinute: Option.getOrUndefined(args.rateLimit)
        }).pipe(Effect.mapError(located("the trigger")))
        const created = yield* withServer(args, (remote) => remote.call(remote.api.triggers.create({ payload })))
        const secret = created.secret === undefined ? undefined : Redacted.value(created.secret)
        if (args.json) return yield* json({ trigger: created.trigger, ...(secret === undefined ? {} : { secret }) })
        yield* Console.log(
          table(
            ["trigger", created.trigger.id],
            [["kind", created.trigger.kind], ["name", created.trigger.name], ["when", what(created.trigger)], ...(secret === undefined ? [] : [["secret", secret]])]
          )
        )
        if (secret !== undefined) yield* warnOnce
      })
    case "delete":
      return Effect.gen(function* () {
        yield* withServer(args, (remote) => remote.call(remote.api.triggers.remove({ path: { triggerId: args.triggerId } })))
        yield* args.json ? json({ deleted: args.triggerId }) : Console.log(`deleted trigger ${args.triggerId}`)
      })
    case "rotate-secret":
      return Effect.gen(function* () {
        const payload = yield* Schema.decodeUnknown(TriggersApi.RotatePayload)({ graceSeconds: Option.getOrUndefined(args.graceSeconds) }).pipe(
          Effect.mapError(located("--grace-seconds"))
        )
        const rotated = yield* withServer(args, (remote) =>
          remote.call(remote.api.triggers.rotateSecret({ path: { triggerId: args.triggerId }, payload }))
        )
        const secret = Redacted.value(rotated.secret)
        if (args.json) return yield* json({ triggerId: rotated.triggerId, secret, previousValidUntil: rotated.previousValidUntil })
        yield* Console.log(table(["trigger", rotated.triggerId], [["secret", secret], ["previous valid until", rotated.previousValidUntil]]))
        yield* warnOnce
      })
  }
}

export const run = (args: TriggersArgs) => dispatch(args).pipe(Effect.catchIf(isUsageProblem, report(args.json)))

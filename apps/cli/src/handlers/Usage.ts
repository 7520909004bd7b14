/**
 * `relavium usage`: `GET /usage` (a table, or `--json`) or `GET /usage.csv` (`--csv`) of the
 * server at `--server`, as the token's role (`usage.read`, every role has it).
 */
import { Console, Effect, Option } from "effect"
import type { UsageArgs } from "../commands/Usage.js"
import { withRemote } from "../LazyRemote.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"

/** Rows as columns padded to their widest cell; numbers right-aligned. */
const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")
  return [line(headers), ...rows.map(line)].join("\n")
}

const dispatch = (args: UsageArgs) =>
  Effect.gen(function* () {
    if (Option.isNone(args.server)) return yield* Effect.fail(new UsageProblem("relavium usage reads a server's usage: pass --server URL --token TOKEN"))
    const urlParams = { from: Option.getOrUndefined(args.from), to: Option.getOrUndefined(args.to), groupBy: args.groupBy }
    const options = { server: args.server.value, token: args.token, ca: args.ca, dataDir: args.dataDir }
    yield* withRemote(options, (remote) =>
      Effect.gen(function* () {
        if (args.csv) {
          const csv = yield* remote.call(remote.api.usage.csv({ urlParams }))
          return yield* Effect.sync(() => void process.stdout.write(csv))
        }
        const view = yield* remote.call(remote.api.usage.get({ urlParams }))
        if (args.json) return yield* Console.log(JSON.stringify(view))
        yield* Console.log(`${view.from} → ${view.to}, by ${view.groupBy}`)
        yield* Console.log(
          table(
            [view.groupBy.toUpperCase(), "RUNS", "INPUT", "OUTPUT", "COST (CENTS)"],
            [
              ...view.rows.map((r) => [r.key, String(r.runs), String(r.inputTokens), String(r.outputTokens), r.costCents]),
              ["total", "", String(view.total.inputTokens), String(view.total.outputTokens), view.total.costCents]
            ]
          )
        )
      })
    ).pipe(Effect.mapError((e) => (isUsageProblem(e) ? e : new UsageProblem(String(e), "server"))))
  })

export const run = (args: UsageArgs) => dispatch(args).pipe(Effect.catchIf(isUsageProblem, report(args.json)))

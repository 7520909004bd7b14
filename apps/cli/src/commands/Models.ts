/**
 * `relavium models [--json]` — the shipped price list: every known model and
 * its list price in US dollars per million tokens (input, output, cached
 * input), then the models the user priced in `prices.json` (data directory,
 * or `$RELAVIUM_PRICES`). Layers needed: a FileSystem, for the price file.
 */
import { Command, Options } from "@effect/cli"
import { Cost } from "@relavium/domain"
import { Pricing } from "@relavium/llm"
import { Console, Effect } from "effect"
import * as Settings from "../runtime/Settings.js"
import { dataDirOption } from "./Flags.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"

const dollars = (microcentsPerMTok: number | undefined): string =>
  microcentsPerMTok === undefined ? "-" : `$${(microcentsPerMTok / Cost.MICROCENTS_PER_USD).toFixed(3).replace(/0$/, "")}`

export const modelRows = Pricing.listing

const table = (user: ReadonlyArray<Pricing.PriceOverride>, file: string): string => {
  const header = ["PROVIDER", "MODEL", "CONTEXT", "IN $/MTok", "OUT $/MTok", "CACHED IN $/MTok"]
  const shadowed = new Set(Pricing.shadowed(user))
  const rows = [
    ...Pricing.table.map((row) => [
      row.provider,
      row.model,
      row.contextWindowTokens.toLocaleString("en-US"),
      dollars(row.price.inputPerMTok),
      dollars(row.price.outputPerMTok),
      dollars(row.price.cachedInputPerMTok)
    ]),
    ...user
      .filter((o) => !shadowed.has(o))
      .map((o) => [o.provider, `${o.model} (yours)`, "-", dollars(o.price.inputPerMTok), dollars(o.price.outputPerMTok), dollars(o.price.cachedInputPerMTok)])
  ]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [
    line(header),
    ...rows.map(line),
    "",
    `List prices checked ${Pricing.pricesCheckedOn}. Models not listed run unpriced (budgets cannot cap them);`,
    `price them in ${file}.`,
    ...[...shadowed].map((o) => `Ignored in ${file}: ${o.provider}/${o.model} has a shipped price, which wins.`)
  ].join("\n")
}

export const models = Command.make(
  "models",
  { json: Options.boolean("json").pipe(Options.withDescription("print the table as JSON")), dataDir: dataDirOption },
  ({ dataDir, json }) =>
    Effect.gen(function* () {
      const file = yield* Settings.pricesFile(yield* Settings.dataDir(dataDir))
      const user = yield* Pricing.loadPriceFile(file).pipe(Effect.mapError((e) => new UsageProblem(e.message)))
      yield* Console.log(
        json ? JSON.stringify(Pricing.catalog(user)) : table(user, file)
      )
    }).pipe(Effect.catchIf(isUsageProblem, report(json)))
).pipe(Command.withDescription("List known models and their prices per million tokens"))

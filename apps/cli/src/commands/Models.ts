/**
 * `relavium models [--json]` — the shipped price list: every known model and
 * its list price in US dollars per million tokens (input, output, cached
 * input). Layers needed: none (it reads @relavium/llm's static table).
 */
import { Command, Options } from "@effect/cli"
import { Cost } from "@relavium/domain"
import { Pricing } from "@relavium/llm"
import { Console } from "effect"

const dollars = (microcentsPerMTok: number | undefined): string =>
  microcentsPerMTok === undefined ? "-" : `$${(microcentsPerMTok / Cost.MICROCENTS_PER_USD).toFixed(3).replace(/0$/, "")}`

export const modelRows = Pricing.listing

const table = (): string => {
  const header = ["PROVIDER", "MODEL", "CONTEXT", "IN $/MTok", "OUT $/MTok", "CACHED IN $/MTok"]
  const rows = Pricing.table.map((row) => [
    row.provider,
    row.model,
    row.contextWindowTokens.toLocaleString("en-US"),
    dollars(row.price.inputPerMTok),
    dollars(row.price.outputPerMTok),
    dollars(row.price.cachedInputPerMTok)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [
    line(header),
    ...rows.map(line),
    "",
    `List prices checked ${Pricing.pricesCheckedOn}. Models not listed run unpriced (budgets cannot cap them).`
  ].join("\n")
}

export const models = Command.make(
  "models",
  { json: Options.boolean("json").pipe(Options.withDescription("print the table as JSON")) },
  ({ json }) => Console.log(json ? JSON.stringify(modelRows()) : table())
).pipe(Command.withDescription("List known models and their prices per million tokens"))

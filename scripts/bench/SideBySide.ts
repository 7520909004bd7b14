/**
 * Benchmark 9: side by side with another CLI. `BENCH_VERSUS` names the other CLI's command line;
 * both CLIs run the same generated workflows (chains of no-op transforms, a fan-out) and the same
 * cold starts (`--version`, a three-node run), interleaved (ours, theirs, ours, theirs …), every
 * process in a fresh data directory. The table gives both medians and the ratio ours / theirs
 * (below 1: ours is faster). The contract the other CLI must meet is in BENCHMARKS.md.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Either, ParseResult, Schema } from "effect"
import { chainYaml, fanoutYaml } from "./EngineBench.js"
import { type BenchConfig, figures, format, type Measurement, measured, type Outcome, type Section, skipped } from "./Harness.js"

const Word = Schema.String.pipe(Schema.minLength(1))
/** A JSON array of words (for paths with spaces), or words separated by whitespace. */
const CommandLine = Schema.Union(
  Schema.parseJson(Schema.NonEmptyArray(Word)),
  Schema.transform(
    // A text that starts like a JSON array is one, and must decode as one.
    Schema.String.pipe(Schema.filter((s) => !s.trimStart().startsWith("["), { message: () => "not a JSON array of words" })),
    Schema.Array(Schema.String),
    { strict: true, decode: (s) => s.trim().split(/\s+/).filter((w) => w !== ""), encode: (words) => words.join(" ") }
  ).pipe(Schema.compose(Schema.NonEmptyArray(Word)))
)
const decodeCommandLine = Schema.decodeUnknownEither(CommandLine)
const ChainSizes = Schema.NonEmptyArray(Schema.NumberFromString.pipe(Schema.int(), Schema.positive()))
const decodeChainSizes = Schema.decodeUnknownEither(ChainSizes)

/** The words of a command line, or why `BENCH_VERSUS` is not one. */
export const parseCommandLine = (raw: string): Either.Either<ReadonlyArray<string>, string> =>
  Either.mapLeft(decodeCommandLine(raw), (error) => `BENCH_VERSUS is not a command line: ${ParseResult.TreeFormatter.formatErrorSync(error)}`)

/**
 * The argv of one invocation: `{data}` in any word becomes the fresh data directory; a word that is
 * exactly `{args}` becomes the CLI arguments, which are appended when there is no such word.
 */
export const invocation = (command: ReadonlyArray<string>, args: ReadonlyArray<string>, dataDir: string): ReadonlyArray<string> => {
  const words = command.map((w) => w.replaceAll("{data}", dataDir))
  const at = words.indexOf("{args}")
  return at === -1 ? [...words, ...args] : [...words.slice(0, at), ...args, ...words.slice(at + 1)]
}

/** The environment of one invocation: HOME, every XDG base directory and RELAVIUM_DATA_DIR inside `dir`. */
export const isolatedEnv = (dir: string): NodeJS.ProcessEnv => ({
  ...process.env,
  NO_COLOR: "1",
  HOME: join(dir, "home"),
  XDG_DATA_HOME: join(dir, "xdg/data"),
  XDG_CONFIG_HOME: join(dir, "xdg/config"),
  XDG_CACHE_HOME: join(dir, "xdg/cache"),
  XDG_STATE_HOME: join(dir, "xdg/state"),
  RELAVIUM_DATA_DIR: join(dir, "data")
})

interface Exit {
  readonly wallMs: number
  readonly status: number | null
  readonly output: string
}

/** Runs one invocation in a fresh directory (removed afterwards); wall time from spawn to exit. */
const runOnce = (command: ReadonlyArray<string>, args: ReadonlyArray<string>, cwd: string): Promise<Exit> => {
  const dir = mkdtempSync(join(tmpdir(), "relavium-bench-versus-"))
  for (const sub of ["home", "xdg/data", "xdg/config", "xdg/cache", "xdg/state", "data"]) mkdirSync(join(dir, sub), { recursive: true })
  const [file, ...rest] = invocation(command, args, join(dir, "data"))
  return new Promise<Exit>((resolve, reject) => {
    const started = performance.now()
    let output = ""
    const child = spawn(file!, rest, { cwd, env: isolatedEnv(dir), stdio: ["ignore", "pipe", "pipe"] })
    // Only the tail is kept, for the message when the process fails.
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-2000)
    }
    child.stdout.on("data", keep)
    child.stderr.on("data", keep)
    child.on("error", reject)
    child.on("close", (status) => resolve({ wallMs: performance.now() - started, status, output }))
  }).finally(() => rmSync(dir, { recursive: true, force: true }))
}

interface Case {
  readonly id: string
  readonly label: string
  readonly args: ReadonlyArray<string>
  readonly warmups: number
  readonly runs: number
}

const runsFor = (config: BenchConfig, full: number): number => (config.quick ? 2 : Math.max(1, Math.round(full * config.repeat)))

const cases = (config: BenchConfig, dir: string, chainSizes: ReadonlyArray<number>): ReadonlyArray<Case> => {
  const file = (name: string, yaml: string) => {
    const path = join(dir, `${name}.relavium.yaml`)
    writeFileSync(path, yaml)
    return path
  }
  const warmups = config.quick ? 1 : 2
  return [
    { id: "version", label: "--version", args: ["--version"], warmups, runs: runsFor(config, config.cliRuns) },
    {
      id: "run.3-nodes",
      label: "run, 3 nodes (cold start)",
      args: ["run", join(config.root, "scripts/bench/fixtures/three-nodes.relavium.yaml")],
      warmups,
      runs: runsFor(config, config.cliRuns)
    },
    ...chainSizes.map((n) => ({
      id: `run.chain.${n}`,
      label: `run, chain of ${n.toLocaleString("en-US")}`,
      args: ["run", file(`versus-chain-${n}`, chainYaml(n))],
      warmups: config.quick || n >= 1000 ? 1 : 2,
      runs: runsFor(config, n <= 100 ? 7 : n <= 1000 ? 5 : 3)
    })),
    {
      id: `run.fanout.${config.fanout}`,
      label: `run, fan-out of ${config.fanout.toLocaleString("en-US")}`,
      args: ["run", file(`versus-fanout-${config.fanout}`, fanoutYaml(config.fanout))],
      warmups: 1,
      runs: runsFor(config, 5)
    }
  ]
}

/** The side-by-side row of one case, as printed and as written to the JSON report. */
export interface VersusRow {
  readonly case: string
  readonly label: string
  readonly unit: "ms"
  readonly n: number
  readonly oursMedian: number
  readonly theirsMedian: number
  /** ours / theirs, medians: below 1 means ours took less time. */
  readonly ratio: number
}

export const sideBySide = async (config: BenchConfig, env: NodeJS.ProcessEnv = process.env): Promise<Outcome> => {
  const raw = env.BENCH_VERSUS
  if (raw === undefined || raw.trim() === "") {
    return skipped("set BENCH_VERSUS to another CLI's command line (see BENCHMARKS.md, Reproduce) to run it side by side with this one")
  }
  const theirs = parseCommandLine(raw)
  if (Either.isLeft(theirs)) throw new Error(theirs.left)
  const sizes = decodeChainSizes((env.BENCH_VERSUS_CHAIN_SIZES ?? (config.quick ? "10" : "10,100,1000,3000")).split(","))
  if (Either.isLeft(sizes)) throw new Error(`BENCH_VERSUS_CHAIN_SIZES: ${ParseResult.TreeFormatter.formatErrorSync(sizes.left)}`)
  if (!existsSync(join(config.root, "apps/cli/dist/relavium.mjs"))) return skipped("the CLI is not built (pnpm build)")
  const ours = [process.execPath, join(config.root, "apps/cli/bin/relavium.mjs")]
  const sides = [{ name: "ours", command: ours }, { name: "theirs", command: theirs.right }] as const

  const dir = mkdtempSync(join(tmpdir(), "relavium-bench-versus-workflows-"))
  const measurements: Array<Measurement> = []
  const rows: Array<VersusRow> = []
  const notes: Array<string> = [`theirs: ${theirs.right.join(" ")}`]
  try {
    for (const c of cases(config, dir, sizes.right)) {
      const samples = { ours: [] as Array<number>, theirs: [] as Array<number> }
      let failed: string | undefined
      for (let i = 0; i < c.warmups + c.runs && failed === undefined; i++) {
        // Interleaved, so a change in the machine's load falls on both sides alike.
        for (const side of sides) {
          const exit = await runOnce(side.command, c.args, config.root)
          if (exit.status !== 0) {
            failed = `${c.label}: ${side.name} exited ${exit.status}: ${exit.output.trim().split("\n").slice(-3).join(" / ")}`
            break
          }
          if (i >= c.warmups) samples[side.name].push(exit.wallMs)
        }
      }
      if (failed !== undefined) {
        notes.push(`${failed} — left out of the table`)
        continue
      }
      for (const side of sides) {
        measurements.push({
          id: `versus.${c.id}.${side.name}`,
          label: `side by side, ${c.label}: ${side.name}`,
          unit: "ms",
          samples: samples[side.name],
          sampleIs: `spawn to exit of \`<cli> ${c.args[0]}${c.args.length > 1 ? " FILE" : ""}\` in fresh data directories`,
          warmups: c.warmups
        })
      }
      const oursMedian = figures(samples.ours).median
      const theirsMedian = figures(samples.theirs).median
      rows.push({ case: c.id, label: c.label, unit: "ms", n: c.runs, oursMedian, theirsMedian, ratio: oursMedian / theirsMedian })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const section: Section = {
    title: "side by side (wall ms, medians; ratio = ours / theirs, below 1 is faster)",
    header: ["case", "n", "ours", "theirs", "ratio"],
    rows: rows.map((r) => [r.label, String(r.n), format(r.oursMedian), format(r.theirsMedian), `${r.ratio.toFixed(2)}×`]),
    json: rows
  }
  return measured(measurements, notes, [section])
}

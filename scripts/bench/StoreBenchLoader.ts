/**
 * The durable-store benchmarks live in their own bundle (built by run.mjs only
 * when packages/store exists and builds), so the engine and CLI benchmarks run
 * whatever state the store package is in. This loads that bundle, or says why not.
 */
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type { BenchConfig, Outcome } from "./Harness.js"

/** What StoreBench.ts exports. */
export interface StoreBench {
  readonly sqliteChain: (config: BenchConfig) => Promise<Outcome>
  readonly commitCost: (config: BenchConfig) => Promise<Outcome>
}

export type Loaded = { readonly _tag: "Loaded"; readonly bench: StoreBench } | { readonly _tag: "Missing"; readonly reason: string }

let loaded: Promise<Loaded> | undefined

export const loadStoreBench = (_config: BenchConfig): Promise<Loaded> => {
  loaded ??= (async (): Promise<Loaded> => {
    const bundle = new URL("./store.mjs", import.meta.url)
    const buildError = new URL("./store-build-error.txt", import.meta.url)
    if (!existsSync(fileURLToPath(bundle))) {
      const why = existsSync(fileURLToPath(buildError)) ? readFileSync(buildError, "utf8").trim().split("\n")[0] : "packages/store is not there"
      return { _tag: "Missing", reason: `waits for packages/store with layerSqlite/layerPg (${why})` }
    }
    const bench = (await import(bundle.href)) as StoreBench
    return { _tag: "Loaded", bench }
  })()
  return loaded
}

/**
 * The benchmarks on the durable stores, the server and the distributed mode live in their own
 * bundles (built by run.mjs only when their packages exist and build), so the engine and CLI
 * benchmarks run whatever state those packages are in. This loads a bundle, or says why not.
 */
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type { BenchConfig, Outcome } from "./Harness.js"

/** What StoreBench.ts exports. */
export interface StoreBench {
  readonly sqliteChain: (config: BenchConfig) => Promise<Outcome>
  readonly commitCost: (config: BenchConfig) => Promise<Outcome>
}

/** What ServerBench.ts exports. */
export interface ServerBench {
  readonly sseFanout: (config: BenchConfig) => Promise<Outcome>
}

/** What DistributedBench.ts exports. */
export interface DistributedBench {
  readonly distributedThroughput: (config: BenchConfig) => Promise<Outcome>
}

/** What TracingBench.ts exports. */
export interface TracingBench {
  readonly tracingOverhead: (config: BenchConfig) => Promise<Outcome>
}

/** What ChatBench.ts exports. */
export interface ChatBench {
  readonly chatTurn: (config: BenchConfig) => Promise<Outcome>
}

/** What GatewayBench.ts exports. */
export interface GatewayBench {
  readonly gatewayLatency: (config: BenchConfig) => Promise<Outcome>
}

export type Loaded<B> = { readonly _tag: "Loaded"; readonly bench: B } | { readonly _tag: "Missing"; readonly reason: string }

const loaded = new Map<string, Promise<Loaded<unknown>>>()

/** Loads `bench/.build/<name>.mjs`; `waitsFor` says what a missing bundle waits for. */
export const loadBundle = <B>(name: string, waitsFor: string): Promise<Loaded<B>> => {
  let promise = loaded.get(name)
  if (promise === undefined) {
    promise = (async (): Promise<Loaded<unknown>> => {
      const bundle = new URL(`./${name}.mjs`, import.meta.url)
      const buildError = new URL(`./${name}-build-error.txt`, import.meta.url)
      if (!existsSync(fileURLToPath(bundle))) {
        const why = existsSync(fileURLToPath(buildError)) ? readFileSync(buildError, "utf8").trim().split("\n")[0] : "its bundle is not there"
        return { _tag: "Missing", reason: `waits for ${waitsFor} (${why})` }
      }
      return { _tag: "Loaded", bench: await import(bundle.href) }
    })()
    loaded.set(name, promise)
  }
  return promise as Promise<Loaded<B>>
}

export const loadGatewayBench = (_config: BenchConfig) =>
  loadBundle<GatewayBench>("gateway", "packages/inference (the managed inference gateway)")
export const loadStoreBench = (_config: BenchConfig) => loadBundle<StoreBench>("store", "packages/store with layerSqlite/layerPg")
export const loadServerBench = (_config: BenchConfig) => loadBundle<ServerBench>("server", "packages/server and packages/hub (HTTP/SSE, NATS hub)")
export const loadDistributedBench = (_config: BenchConfig) =>
  loadBundle<DistributedBench>("distributed", "packages/queue, packages/hub and packages/store (BullMQ, NATS, Postgres)")
export const loadChatBench = (_config: BenchConfig) => loadBundle<ChatBench>("chat", "packages/chat and packages/store (chat service on SQLite)")
export const loadTracingBench = (_config: BenchConfig) =>
  loadBundle<TracingBench>("tracing", "packages/store and the CLI's OpenTelemetry SDK layer (apps/cli/src/runtime/TelemetrySdk.ts)")

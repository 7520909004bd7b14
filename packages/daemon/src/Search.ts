/**
 * The search tools' work (directory walks, glob matching, regular expressions from the model) runs
 * in worker threads (SearchWorker.ts), never on the daemon's event loop: a catastrophic regex or a
 * pathological glob is stopped at the time limit by terminating its worker, and the model gets a
 * tool error it can act on while everything else (HTTP, SSE, other runs) keeps being served.
 *
 * Limit: 10 s per call, or RELAVIUM_SEARCH_TIMEOUT_MS (a positive integer; tests use it).
 */
import { Config, Effect } from "effect"
import { ToolError } from "@relavium/ports"
import * as WorkerPool from "@relavium/ports/WorkerPool"
import type { SearchReply, SearchRequest } from "./SearchWorker.js"

export type { SearchRequest } from "./SearchWorker.js"

export const DEFAULT_SEARCH_TIMEOUT_MS = 10_000

/** A worker reads files up to 4 MB and splits them into lines; the cap is a backstop on runaway memory. */
const WORKER_HEAP_MB = 256

const timeoutMs = Config.integer("RELAVIUM_SEARCH_TIMEOUT_MS").pipe(
  Config.validate({ message: "must be a positive number of milliseconds", validation: (n) => n > 0 }),
  Config.withDefault(DEFAULT_SEARCH_TIMEOUT_MS)
)

// One pool for the process, created on first use: its idle workers never keep the process alive.
let pool: WorkerPool.WorkerPool<SearchRequest, SearchReply> | undefined
const searchPool = () => {
  pool ??= WorkerPool.unsafeMake<SearchRequest, SearchReply>({
    entry: {
      bundled: new URL("./search-worker.mjs", import.meta.url),
      source: new URL("./SearchWorker.ts", import.meta.url)
    },
    resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB }
  })
  return pool
}

const toolName = (request: SearchRequest) => (request.op === "list" ? "list_directory" : request.op)

/** Runs one search in a worker; every failure is a `tool_failed` the model sees. */
export const search = (request: SearchRequest): Effect.Effect<string, ToolError> =>
  Effect.gen(function*() {
    const limit = yield* timeoutMs.pipe(
      Effect.mapError((error) => new ToolError({ code: "tool_unavailable", message: `the search tools are misconfigured: ${String(error)}` }))
    )
    const reply = yield* searchPool().run(request, limit).pipe(
      Effect.mapError((error) =>
        new ToolError({
          code: "tool_failed",
          message: error._tag === "WorkerTimeout"
            ? `${toolName(request)} was stopped after ${error.timeoutMs} ms: the search took too long (a regular expression or glob that backtracks, or too many files); narrow the pattern or the path`
            : `${toolName(request)} failed: ${error.message}`
        })
      )
    )
    if (!reply.ok) return yield* new ToolError({ code: "tool_failed", message: reply.message })
    return reply.output
  })

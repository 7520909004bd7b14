/**
 * A pool of worker threads for work that model- or user-controlled input can make unbounded
 * (expressions, regular expressions, glob matching, directory walks), so that it never runs on the
 * main event loop. Each call has a hard time limit that actually stops the work: the worker running
 * it is terminated (and replaced on the next call) when the limit passes or when the calling fiber
 * is interrupted. Each worker has a V8 heap cap (`resourceLimits`); a worker that dies (out of
 * memory, a crash) fails only the call it was running.
 *
 * Worker entry files: the CLI is shipped as one bundle, and each worker entry is bundled beside it
 * (apps/cli/build.mjs). From the TypeScript sources (tests, a checkout without a build) the same
 * entry runs from its `.ts` file through a small transpiling loader (worker-loader/).
 * The worker side of the protocol is in WorkerServe.ts.
 */
import { existsSync } from "node:fs"
import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import { type ResourceLimits, Worker } from "node:worker_threads"
import { Data, Effect, type Scope } from "effect"

/** Where a worker entry lives: beside the bundle once built, or as a TypeScript source file. */
export interface WorkerEntry {
  /** e.g. `new URL("./quickjs-worker.mjs", import.meta.url)`: exists only beside a bundle. */
  readonly bundled: URL
  /** e.g. `new URL("./QuickJsWorker.ts", import.meta.url)`: exists only in the sources. */
  readonly source: URL
}

export interface PoolOptions<D> {
  readonly entry: WorkerEntry
  /** Defaults to max(2, available parallelism). */
  readonly size?: number
  /** Passed to every worker; read there with `WorkerServe.poolData()`. */
  readonly data?: D
  readonly resourceLimits?: ResourceLimits
  /** How long a new worker may take to load before the call fails (not counted in the call's limit). */
  readonly startTimeoutMs?: number
}

/** The call ran past its limit; its worker was terminated. */
export class WorkerTimeout extends Data.TaggedError("WorkerTimeout")<{ readonly timeoutMs: number }> {}

/** The worker could not start, died while running the call (e.g. out of memory), or the handler threw. */
export class WorkerFailed extends Data.TaggedError("WorkerFailed")<{
  readonly reason: "start_failed" | "out_of_memory" | "crashed" | "handler_failed"
  readonly message: string
}> {}

export interface WorkerPool<I, O> {
  /** Runs one call in a worker; the limit starts when the call is handed to a ready worker. */
  readonly run: (input: I, timeoutMs: number) => Effect.Effect<O, WorkerTimeout | WorkerFailed>
  /**
   * Starts workers now, up to `count` (at most the pool's size) idle or starting, so a call expected
   * soon does not wait for a cold worker. A hint: a warm worker never keeps the process alive, and
   * one that fails to start is dropped silently (the next call starts its own and reports that).
   */
  readonly warm: (count?: number) => void
}

export const defaultSize = (): number => Math.max(2, availableParallelism())

const bootFile = new URL("./worker-loader/boot.mjs", import.meta.url)

const spawn = <D>(options: PoolOptions<D>): Worker => {
  const bundled = fileURLToPath(options.entry.bundled)
  const limits = options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits }
  if (existsSync(bundled)) return new Worker(bundled, { workerData: { data: options.data }, ...limits })
  if (existsSync(fileURLToPath(options.entry.source))) {
    return new Worker(bootFile, { workerData: { data: options.data, relaviumEntry: options.entry.source.href }, ...limits })
  }
  throw new Error(`worker entry not found: neither ${bundled} (built) nor ${fileURLToPath(options.entry.source)} (sources)`)
}

type Reply =
  | { readonly type: "ready" }
  | { readonly type: "failed"; readonly message: string }
  | { readonly id: number; readonly output?: unknown; readonly error?: string }

/** One worker and whoever is currently waiting on it. */
interface Slot {
  readonly worker: Worker
  ready: Promise<void>
  onReply: (reply: Reply) => void
  onDeath: (failure: WorkerFailed) => void
  dead: boolean
}

const deathOf = (error: unknown): WorkerFailed => {
  const code = (error as { readonly code?: unknown } | undefined)?.code
  return code === "ERR_WORKER_OUT_OF_MEMORY"
    ? new WorkerFailed({ reason: "out_of_memory", message: "the worker ran out of memory" })
    : new WorkerFailed({ reason: "crashed", message: `the worker crashed: ${error instanceof Error ? error.message : String(error)}` })
}

/** A pool outside any scope (for module-level use); its idle workers never keep the process alive. */
export const unsafeMake = <I, O, D = undefined>(
  options: PoolOptions<D>
): WorkerPool<I, O> & { readonly shutdown: () => Promise<void> } => {
  const size = options.size ?? defaultSize()
  const startTimeoutMs = options.startTimeoutMs ?? 60_000
  const permits = Effect.unsafeMakeSemaphore(size)
  const idle: Array<Slot> = []
  const all = new Set<Slot>()
  let nextId = 0
  let closed = false

  const kill = (slot: Slot) => {
    slot.dead = true
    all.delete(slot)
    const at = idle.indexOf(slot)
    if (at !== -1) idle.splice(at, 1)
    slot.worker.terminate().catch(() => undefined)
  }

  const newSlot = (): Slot => {
    const worker = spawn(options)
    worker.unref()
    const slot: Slot = { worker, ready: Promise.resolve(), onReply: () => undefined, onDeath: () => undefined, dead: false }
    slot.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the worker did not start within ${startTimeoutMs} ms`)), startTimeoutMs)
      timer.unref()
      slot.onReply = (reply) => {
        if ("type" in reply) {
          clearTimeout(timer)
          if (reply.type === "ready") resolve()
          else reject(new Error(reply.message))
        }
      }
      slot.onDeath = (failure) => {
        clearTimeout(timer)
        reject(new Error(failure.message))
      }
    })
    worker.on("message", (reply: Reply) => slot.onReply(reply))
    worker.on("error", (error) => {
      if (!slot.dead) {
        kill(slot)
        slot.onDeath(deathOf(error))
      }
    })
    worker.on("exit", (code) => {
      if (!slot.dead) {
        kill(slot)
        slot.onDeath(new WorkerFailed({ reason: "crashed", message: `the worker exited with code ${code}` }))
      }
    })
    all.add(slot)
    return slot
  }

  const call = (input: I, timeoutMs: number) =>
    Effect.async<O, WorkerTimeout | WorkerFailed>((resume) => {
      if (closed) {
        resume(Effect.fail(new WorkerFailed({ reason: "start_failed", message: "the worker pool is shut down" })))
        return
      }
      let slot: Slot
      try {
        slot = idle.pop() ?? newSlot()
      } catch (error) {
        resume(Effect.fail(new WorkerFailed({ reason: "start_failed", message: error instanceof Error ? error.message : String(error) })))
        return
      }
      const current = slot
      current.worker.ref()
      let settled = false
      let timer: ReturnType<typeof setTimeout> | undefined
      const settle = (outcome: Effect.Effect<O, WorkerTimeout | WorkerFailed>, keep: boolean) => {
        if (settled) return
        settled = true
        if (timer !== undefined) clearTimeout(timer)
        current.onReply = () => undefined
        current.onDeath = () => undefined
        if (keep && !current.dead && !closed) {
          current.worker.unref()
          idle.push(current)
        } else if (!current.dead) {
          kill(current)
        }
        resume(outcome)
      }
      current.ready.then(
        () => {
          if (settled || current.dead) {
            if (!settled) settle(Effect.fail(new WorkerFailed({ reason: "crashed", message: "the worker died before the call" })), false)
            return
          }
          const id = nextId++
          current.onReply = (reply) => {
            if ("type" in reply || reply.id !== id) return
            if (reply.error !== undefined) {
              settle(Effect.fail(new WorkerFailed({ reason: "handler_failed", message: reply.error })), true)
            } else {
              settle(Effect.succeed(reply.output as O), true)
            }
          }
          current.onDeath = (failure) => settle(Effect.fail(failure), false)
          timer = setTimeout(() => settle(Effect.fail(new WorkerTimeout({ timeoutMs })), false), timeoutMs)
          current.worker.postMessage({ id, input })
        },
        (error: unknown) =>
          settle(
            Effect.fail(new WorkerFailed({ reason: "start_failed", message: `the worker could not start: ${error instanceof Error ? error.message : String(error)}` })),
            false
          )
      )
      // Interruption of the calling fiber stops the work: the worker is terminated, not reused.
      return Effect.sync(() => {
        if (!settled) {
          settled = true
          if (timer !== undefined) clearTimeout(timer)
          kill(current)
        }
      })
    })

  const warm = (count = 1) => {
    if (closed) return
    const wanted = Math.min(count, size)
    while (idle.length < wanted && all.size < size) {
      let slot: Slot
      try {
        slot = newSlot()
      } catch {
        return
      }
      // Nobody may be waiting on this start: its failure must not become an unhandled rejection.
      slot.ready.catch(() => {
        if (!slot.dead) kill(slot)
      })
      idle.push(slot)
    }
  }

  return {
    run: (input, timeoutMs) => permits.withPermits(1)(call(input, timeoutMs)),
    warm,
    shutdown: async () => {
      closed = true
      const slots = [...all]
      for (const slot of slots) slot.dead = true
      all.clear()
      idle.length = 0
      await Promise.all(slots.map((slot) => slot.worker.terminate().catch(() => undefined)))
    }
  }
}

/** A pool whose workers are terminated when the scope closes. */
export const make = <I, O, D = undefined>(options: PoolOptions<D>): Effect.Effect<WorkerPool<I, O>, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => unsafeMake<I, O, D>(options)),
    (pool) => Effect.promise(() => pool.shutdown())
  ).pipe(Effect.map((pool): WorkerPool<I, O> => ({ run: pool.run, warm: pool.warm })))

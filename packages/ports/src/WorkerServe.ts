/**
 * The worker-thread side of `WorkerPool`: a worker entry calls `serve` once with a handler. Kept
 * apart from WorkerPool.ts (and free of Effect) so a worker loads as little as possible.
 *
 * Protocol: the worker posts `{ type: "ready" }` once its handler is built (or
 * `{ type: "failed", message }`), then answers each `{ id, input }` with `{ id, output }`.
 */
import { parentPort, workerData } from "node:worker_threads"

/** The data the pool was created with (see `PoolOptions.data`). */
export const poolData = <D>(): D => (workerData as { readonly data: D }).data

export const serve = <I, O>(init: () => Promise<(input: I) => O | Promise<O>>): void => {
  const port = parentPort
  if (port === null) throw new Error("WorkerServe.serve must run in a worker thread")
  // Tasks the initialisation queued on this thread (e.g. finishing compiled code) run before the
  // worker reports ready, so they are not counted against the first call's time limit.
  const settled = <A>(value: A) => new Promise<A>((resolve) => setTimeout(() => resolve(value), 0))
  init().then(settled).then(
    (handle) => {
      port.on("message", (message: { readonly id: number; readonly input: I }) => {
        Promise.resolve()
          .then(() => handle(message.input))
          .then(
            (output) => port.postMessage({ id: message.id, output }),
            (error: unknown) => port.postMessage({ id: message.id, error: error instanceof Error ? error.message : String(error) })
          )
      })
      port.postMessage({ type: "ready" })
    },
    (error: unknown) => port.postMessage({ type: "failed", message: error instanceof Error ? error.message : String(error) })
  )
}

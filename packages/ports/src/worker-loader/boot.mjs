// Entry of a worker thread whose real entry is a TypeScript source file: installs the hooks that
// transpile TypeScript, then loads the entry named in workerData (see WorkerPool.ts).
import { register } from "node:module"
import { workerData } from "node:worker_threads"

register(new URL("./hooks.mjs", import.meta.url))
await import(workerData.relaviumEntry)

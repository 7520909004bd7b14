import { Worker } from "node:worker_threads"
const w = new Worker(new URL("../dist/quickjs-worker.mjs", import.meta.url), { workerData: { data: { timeoutMs: 1000, memoryBytes: 16777216, stackBytes: 262144 } } })
w.unref()
await new Promise((r) => setTimeout(r, Number(process.argv[2])))
const t = performance.now(); const c = process.cpuUsage()
if (process.argv[3] === "term") { await w.terminate(); }
const cu = process.cpuUsage(c)
console.log("terminate took", (performance.now() - t).toFixed(1), "ms", ((cu.user+cu.system)/1000).toFixed(0), "cpu ms")
process.on("exit", () => console.log("exit at", performance.now().toFixed(0)))

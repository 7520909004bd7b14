/**
 * Benchmark 10: what tracing costs the engine (docs/observability.md). The same SQLite-durable
 * chain of no-op nodes as benchmark 1, run twice in fresh engines:
 *
 * - off: as every deployment runs without OTEL_* — Effect's tracer disabled, every span a no-op,
 *   no traceparent on jobs;
 * - on: the CLI's OpenTelemetry SDK layer (apps/cli/src/runtime/TelemetrySdk.ts) exporting every
 *   span over OTLP/HTTP JSON to a receiver in this process on 127.0.0.1 (batched as configured by
 *   default: 5 s, or at shutdown).
 *
 * Bundled apart (run.mjs) so the engine benchmarks never load the SDK. BENCH_TRACING_CHAIN_SIZES
 * overrides the chain sizes (default 100 and 1,000).
 */
import { Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Store } from "@relavium/store"
import { layer as sdkLayer } from "../../apps/cli/src/runtime/TelemetrySdk.js"
import { chainCases, runCase } from "./EngineBench.js"
import { type BenchConfig, type Measurement, measured, type Outcome } from "./Harness.js"

/** An OTLP/HTTP receiver that accepts everything and counts the spans it got. */
const receiver = async () => {
  let spans = 0
  const server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      if (request.url === "/v1/traces") spans += (Buffer.concat(chunks).toString("utf8").match(/"spanId"/g) ?? []).length
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, spans: () => spans, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

export const tracingOverhead = async (config: BenchConfig): Promise<Outcome> => {
  const sizes = process.env.BENCH_TRACING_CHAIN_SIZES?.split(",").map(Number) ?? (config.quick ? [10] : [100, 1000])
  const otlp = await receiver()
  const out: Array<Measurement> = []
  try {
    for (const [mode, telemetry] of [
      ["off", Layer.setTracerEnabled(false)],
      [
        "on",
        sdkLayer({
          serviceName: "relavium-bench",
          resourceAttributes: {},
          tracesUrl: `${otlp.url}/v1/traces`,
          metricsUrl: undefined,
          batchDelayMs: 5000,
          metricIntervalMs: 60_000
        })
      ]
    ] as const) {
      for (const c of chainCases({ ...config, chainSizes: sizes }, `tracing.${mode}.sqlite`, `tracing ${mode}, sqlite`)) {
        const dir = mkdtempSync(join(tmpdir(), "relavium-bench-"))
        try {
          out.push(...(await runCase(Store.layerSqlite({ filename: join(dir, "bench.db") }), c, { intervals: false, telemetry })))
        } finally {
          rmSync(dir, { recursive: true, force: true })
        }
      }
    }
  } finally {
    await otlp.close()
  }
  if (otlp.spans() === 0) throw new Error("tracing on exported no span to the receiver")
  return measured(out, [`tracing on: ${otlp.spans().toLocaleString("en-US")} spans received over OTLP/HTTP JSON by the local receiver`])
}

/**
 * (11) Gateway added latency, bundled apart (gateway.mjs): the managed inference gateway of
 * @relavium/inference in front of a fake OpenAI upstream on loopback (chat completions SSE with
 * usage, answered at once). Each sample is a pair, interleaved: the same request straight to the
 * upstream (its SSE read to the end), then through the gateway (a non-streamed completion: token
 * resolved, body decoded, route and managed key, rate limit, budget hold, upstream call, settle,
 * one log line). Figures: each path's latency, their difference per pair, and the gateway's own
 * `x-relavium-overhead-ms` header. Tenancy, keys and metering are the memory layers, so what is
 * timed is the gateway, not Postgres. Targets (issue 17): ≤ 1 ms median, ≤ 5 ms p99 added.
 */
import { openAiChat } from "../../packages/llm/test/fixtures/wire.js"
import { startGateway } from "../../packages/inference/test/support/gateway.js"
import { startUpstream } from "../../packages/inference/test/support/upstream.js"
import { type BenchConfig, type Measurement, measured, type Outcome } from "./Harness.js"

export const gatewayLatency = async (config: BenchConfig): Promise<Outcome> => {
  const upstream = await startUpstream()
  const gateway = await startGateway(upstream)
  upstream.always({ frames: openAiChat.text("gpt-4o-mini") })
  try {
    const messages = [{ role: "user", content: "Say hello to the world in two words." }]
    const direct = async () => {
      const t0 = performance.now()
      const response = await fetch(`${upstream.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: "Bearer sk-direct", "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify({ model: "gpt-4o-mini", messages, stream: true, stream_options: { include_usage: true } })
      })
      await response.text()
      return performance.now() - t0
    }
    const through = async () => {
      const t0 = performance.now()
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${gateway.tokenA}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", messages })
      })
      await response.text()
      const ms = performance.now() - t0
      if (response.status !== 200) throw new Error(`the gateway answered ${response.status}`)
      return { ms, header: Number(response.headers.get("x-relavium-overhead-ms")) }
    }
    const warmups = config.quick ? 20 : 300
    const runs = (config.quick ? 50 : 2000) * config.repeat
    for (let i = 0; i < warmups; i++) {
      await direct()
      await through()
    }
    const directMs: Array<number> = []
    const gatewayMs: Array<number> = []
    const addedMs: Array<number> = []
    const headerMs: Array<number> = []
    for (let i = 0; i < runs; i++) {
      const d = await direct()
      const g = await through()
      directMs.push(d)
      gatewayMs.push(g.ms)
      addedMs.push(g.ms - d)
      headerMs.push(g.header)
    }
    const figure = (id: string, label: string, samples: Array<number>, sampleIs: string): Measurement => ({
      id: `gateway.${id}`,
      label,
      unit: "ms",
      samples,
      sampleIs,
      warmups
    })
    return measured(
      [
        figure("direct", "straight to the fake upstream (SSE to the end)", directMs, "one request's wall time"),
        figure("through", "through the gateway (non-streamed completion)", gatewayMs, "one request's wall time"),
        figure("added", "gateway added latency (through − direct, per interleaved pair)", addedMs, "one pair's difference"),
        figure("overhead-header", "x-relavium-overhead-ms (total − upstream time, as the gateway reports it)", headerMs, "one response's header")
      ],
      ["memory tenancy, keys and metering; no rate limiter; one client, keep-alive, loopback; targets: ≤ 1 ms median, ≤ 5 ms p99 added"]
    )
  } finally {
    await gateway.close()
    await upstream.close()
  }
}

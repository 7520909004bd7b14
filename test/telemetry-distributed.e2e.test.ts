/**
 * A distributed run is one trace (docs/observability.md): `server api`,
 * `server worker`, `server gateway` and a `daemon start --gateway` dialed in,
 * each an OS process of the bundled `relavium` on the real Postgres, Redis and
 * NATS on loopback, export over OTLP/HTTP to a receiver in this test. The run
 * started through the api is one trace id across all four: the root `run`
 * (api) → `node` (worker, through the job's traceparent) → `model.call` and
 * `tool.call` (worker) → `gateway.tool_call` (gateway, through the NATS
 * message's `traceparent` header) → the daemon's RPC span (daemon).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type ApiProcess, type CloudProcess, createDeployment, type Deployment, startApi, startWorker, waitFor } from "./support/cloud.js"
import { fixtures, type GatewayProcess, startGateway, startRemoteDaemon, writerCassette } from "./support/distributed.js"
import { type Receiver, startReceiver } from "./support/otlp.js"

const OTEL = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_METRIC_EXPORT_INTERVAL"] as const

describe("a distributed run traced", () => {
  let receiver: Receiver
  let d: Deployment
  let api: ApiProcess
  let worker: CloudProcess
  let gateway: GatewayProcess
  let daemon: CloudProcess
  const saved: Record<string, string | undefined> = {}

  beforeAll(async () => {
    receiver = await startReceiver()
    // The processes inherit this environment (spawnRelavium passes it on): every one exports here.
    for (const name of OTEL) saved[name] = process.env[name]
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint
    process.env.OTEL_BSP_SCHEDULE_DELAY = "100"
    process.env.OTEL_METRIC_EXPORT_INTERVAL = "1000"
    d = await createDeployment("otel")
    api = await startApi(d)
    ;[gateway, worker] = await Promise.all([startGateway(d), startWorker(d, { args: ["--cassette", writerCassette(1)] })])
    daemon = await startRemoteDaemon(gateway, mkdtempSync(join(tmpdir(), "relavium-otel-ws-")))
  }, 180_000)

  afterAll(async () => {
    for (const name of OTEL) {
      if (saved[name] === undefined) delete process.env[name]
      else process.env[name] = saved[name]
    }
    await Promise.all([api, worker, gateway, daemon].map((p) => p?.stop("SIGKILL")))
    await d?.dispose()
    await receiver?.close()
  })

  it("is one trace across the api, the worker, the gateway and the daemon", async () => {
    const yaml = readFileSync(join(fixtures, "remote-writer.relavium.yaml"), "utf8")
    const uploaded = await api.api("POST", "/workflows", { yaml, file: "remote-writer.relavium.yaml" })
    expect(uploaded.status, uploaded.text).toBe(201)
    const started = await api.api("POST", "/runs", { workflowId: uploaded.json.workflowId })
    expect(started.status, started.text).toBe(201)
    const runId = started.json.runId as string
    const status = await waitFor(
      async () => {
        const summary = await api.api("GET", `/runs/${runId}`)
        return ["completed", "failed", "cancelled"].includes(summary.json?.status) ? (summary.json.status as string) : undefined
      },
      `run ${runId} to end`,
      120_000
    )
    expect(status, worker.output().slice(-3000)).toBe("completed")

    const rootOf = () => receiver.spans.find((s) => s.name === "run" && s.attributes["relavium.run_id"] === runId)
    await receiver.waitFor((spans) => {
      const root = rootOf()
      if (root === undefined) return false
      const services = new Set(spans.filter((s) => s.traceId === root.traceId).map((s) => s.service))
      return ["relavium-api", "relavium-worker", "relavium-gateway", "relavium-daemon"].every((s) => services.has(s)) &&
        spans.filter((s) => s.traceId === root.traceId && s.name === "node").length === 2
    }, 30_000)
    const run = rootOf()!
    expect(run.service).toBe("relavium-api")
    expect(run.parentSpanId).toBeUndefined()
    const trace = receiver.spans.filter((s) => s.traceId === run.traceId)
    const one = (name: string, service: string) => {
      const found = trace.filter((s) => s.name === name && s.service === service)
      expect(found.map((s) => s.name), `${name} in ${service}`).toHaveLength(1)
      return found[0]!
    }

    const nodes = trace.filter((s) => s.name === "node")
    expect(nodes.map((n) => [n.service, n.attributes["relavium.node_id"], n.parentSpanId]).sort()).toEqual([
      ["relavium-worker", "result", run.spanId],
      ["relavium-worker", "write", run.spanId]
    ])
    const write = nodes.find((n) => n.attributes["relavium.node_id"] === "write")!
    const calls = trace.filter((s) => s.name === "model.call")
    expect(calls.map((c) => [c.service, c.parentSpanId, c.attributes["gen_ai.request.model"]])).toEqual([
      ["relavium-worker", write.spanId, "claude-sonnet-4"],
      ["relavium-worker", write.spanId, "claude-sonnet-4"]
    ])
    const tool = one("tool.call", "relavium-worker")
    expect(tool.parentSpanId).toBe(write.spanId)
    expect(tool.attributes["gen_ai.tool.name"]).toBe("write_file")
    // The gateway answers the node's request for the tools' definitions, then the call itself.
    const atGateway = trace.filter((s) => s.name === "gateway.tool_call" && s.attributes["relavium.request"] === "execute")
    expect(atGateway.map((s) => [s.service, s.parentSpanId])).toEqual([["relavium-gateway", tool.spanId]])
    const definitions = trace.filter((s) => s.name === "gateway.tool_call" && s.attributes["relavium.request"] === "tools")
    expect(definitions.map((s) => s.parentSpanId)).toEqual([write.spanId])
    expect(atGateway[0]!.attributes["gen_ai.tool.name"]).toBe("write_file")
    // The daemon's side of the call: a child of a span of the gateway's, in the same trace.
    const gatewaySpans = new Set(trace.filter((s) => s.service === "relavium-gateway").map((s) => s.spanId))
    const atDaemon = trace.filter((s) => s.service === "relavium-daemon")
    expect(atDaemon.length).toBeGreaterThan(0)
    expect(atDaemon.some((s) => s.parentSpanId !== undefined && gatewaySpans.has(s.parentSpanId))).toBe(true)
    // The queue hops and commits are in it too.
    expect(trace.some((s) => s.name === "queue.offer" && s.service === "relavium-api")).toBe(true)
    expect(trace.some((s) => s.name === "store.commit" && s.service === "relavium-worker")).toBe(true)
    // No tool argument crossed into a span.
    for (const body of receiver.bodies) expect(body).not.toContain("written by the agent")
  }, 180_000)

  it("records no credential a request's headers carry", async () => {
    const secrets = { "x-goog-api-key": "AIzaSy-otel-test-key-0123456789", "x-hub-signature-256": "sha256=otel-test-signature-abcdef" }
    const response = await fetch(`${api.url}/health?probe=otel`, { headers: { ...secrets, authorization: `Bearer ${api.token}` } })
    expect(response.status).toBe(200)
    await receiver.waitFor((spans) => spans.some((s) => s.service === "relavium-api" && s.attributes["url.query"] === "probe=otel"), 30_000)
    const probe = receiver.spans.find((s) => s.attributes["url.query"] === "probe=otel")!
    expect(probe.attributes["http.request.header.x-goog-api-key"]).toBe("<redacted>")
    for (const body of receiver.bodies) {
      for (const secret of [...Object.values(secrets), api.token]) expect(body).not.toContain(secret)
    }
  }, 60_000)
})

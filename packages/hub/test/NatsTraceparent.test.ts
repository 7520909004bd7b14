/**
 * Trace context over NATS (docs/observability.md): a tool call carries the caller's span as a
 * W3C `traceparent` header, and the gateway's `gateway.tool_call` span is its child, in the same
 * trace; with the tracer disabled (telemetry off) no header is sent. Against the real NATS server
 * on 127.0.0.1:4222, on a subject prefix of its own.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Tracer } from "effect"
import { DaemonRouter, Tracing } from "@relavium/ports"
import { NatsDaemonRouter } from "../src/index.js"

const natsUrl = "nats://127.0.0.1:4222"
const freshPrefix = () => `relavium-test.${crypto.randomUUID().replaceAll("-", "")}`

/** A daemon whose `whoami` tool answers with the span it runs under and that span's parent. */
const spanTools = DaemonRouter.layerInProcess([
  {
    definition: { name: "whoami", description: "the span", parameters: { type: "object" } },
    run: () =>
      Effect.map(Effect.option(Effect.currentSpan), (span) => ({
        output: JSON.stringify(
          Option.match(span, {
            onNone: () => null,
            onSome: (s) => ({
              name: s.name,
              traceId: s.traceId,
              parent: Option.getOrUndefined(Option.map(s.parent, (p: Tracer.AnySpan) => p.spanId)) ?? null
            })
          })
        )
      }))
  }
])

const serve = (prefix: string) =>
  Effect.gen(function* () {
    const nc = yield* NatsDaemonRouter.acquireConnection({ servers: natsUrl, name: "test-gateway" })
    const router = Effect.map(Layer.build(spanTools), (ctx) => ctx.unsafeMap.get(DaemonRouter.key) as DaemonRouter["Type"])
    yield* NatsDaemonRouter.serveDaemon(nc, yield* router, { daemon: "traced", subjectPrefix: prefix })
    const worker = yield* NatsDaemonRouter.acquireConnection({ servers: natsUrl, name: "test-worker" })
    return NatsDaemonRouter.makeRouter(worker, { subjectPrefix: prefix, daemon: "traced" })
  })

const whoami = { runId: "run-1", nodeId: "agent", callId: "c1", name: "whoami", args: {} }

describe("trace context over NATS", () => {
  it.scopedLive("the gateway's span is a child of the caller's, in its trace", () =>
    Effect.gen(function* () {
      const router = yield* serve(freshPrefix())
      const { caller, result } = yield* Effect.gen(function* () {
        const caller = yield* Effect.currentSpan
        const result = yield* router.execute(whoami)
        return { caller, result }
      }).pipe(Effect.withSpan("tool.call"))
      const seen = JSON.parse(result.output) as { name: string; traceId: string; parent: string | null }
      assert.strictEqual(seen.name, "gateway.tool_call")
      assert.strictEqual(seen.traceId, caller.traceId)
      assert.strictEqual(seen.parent, caller.spanId)
      assert.strictEqual(Tracing.formatTraceparent(caller), `00-${caller.traceId}-${caller.spanId}-01`)
    }))

  it.scopedLive("with the tracer disabled no traceparent is sent: the gateway's span is not the caller's child", () =>
    Effect.gen(function* () {
      const router = yield* serve(freshPrefix())
      const result = yield* router.execute(whoami).pipe(Effect.withSpan("tool.call"), Effect.withTracerEnabled(false))
      const seen = JSON.parse(result.output) as { traceId: string; parent: string | null }
      // The gateway (tracer on here) starts a trace of its own.
      assert.isNull(seen.parent)
    }))
})

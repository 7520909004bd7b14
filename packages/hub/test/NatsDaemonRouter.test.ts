/**
 * Tool calls over NATS (`NatsDaemonRouter`) against the real NATS server on
 * 127.0.0.1:4222, each test on a subject prefix of its own: the worker side
 * (`makeRouter`) sends calls, the gateway side (`serveDaemon`) answers them
 * with the router of the daemon it holds — here in-process tools, so the
 * transport is what is under test (the dialed-in daemon is tested in the
 * distributed end-to-end test).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { DaemonRouter, type InProcessTool, ToolError } from "@relavium/ports"
import { NatsDaemonRouter } from "../src/index.js"

const natsUrl = "nats://127.0.0.1:4222"
const freshPrefix = () => `relavium-test.${crypto.randomUUID().replaceAll("-", "")}`

const call = (name: string, args: unknown, callId = crypto.randomUUID()) => ({ runId: "run-1", nodeId: "agent", callId, name, args })

const def = (name: string) => ({ name, description: `the ${name} tool`, parameters: { type: "object" } })

/** The tools of the "daemon" the gateway holds; `served` names which gateway answered. */
const toolsOf = (served: string, hooks: { readonly started?: Deferred.Deferred<void>; readonly interrupted?: Deferred.Deferred<void> } = {}) =>
  DaemonRouter.layerInProcess([
    { definition: def("echo"), run: (c) => Effect.succeed({ output: `${served}:${JSON.stringify(c.args)}` }) } satisfies InProcessTool,
    { definition: def("denied"), run: () => Effect.fail(new ToolError({ code: "tool_denied", message: "rm is not on the allowlist" })) },
    { definition: def("failing"), run: () => Effect.succeed({ output: "exit code 1", isError: true }) },
    {
      definition: def("slow"),
      run: () =>
        Effect.gen(function* () {
          if (hooks.started) yield* Deferred.succeed(hooks.started, undefined)
          return yield* Effect.never
        }).pipe(Effect.onInterrupt(() => (hooks.interrupted ? Deferred.succeed(hooks.interrupted, undefined) : Effect.void)))
    }
  ])

const routerOf = (layer: Layer.Layer<DaemonRouter>) => Effect.map(Layer.build(layer), (ctx) => ctx.unsafeMap.get(DaemonRouter.key) as DaemonRouter["Type"])

/** A gateway serving daemon `name` with `tools` on its own connection, until `scope` closes. */
const gateway = (prefix: string, name: string, tools: Layer.Layer<DaemonRouter>, scope: Scope.Scope, heartbeat: Duration.DurationInput = "100 millis") =>
  Effect.gen(function* () {
    const nc = yield* NatsDaemonRouter.acquireConnection({ servers: natsUrl, name: "test-gateway" })
    const router = yield* routerOf(tools)
    yield* NatsDaemonRouter.serveDaemon(nc, router, { daemon: name, subjectPrefix: prefix, heartbeat })
  }).pipe(Scope.extend(scope))

const worker = (prefix: string, options: NatsDaemonRouter.RouterOptions = {}) =>
  Effect.gen(function* () {
    const nc = yield* NatsDaemonRouter.acquireConnection({ servers: natsUrl, name: "test-worker" })
    return NatsDaemonRouter.makeRouter(nc, { subjectPrefix: prefix, ackTimeout: "500 millis", silenceTimeout: "600 millis", ...options })
  })

describe("tool calls over NATS", () => {
  it.scopedLive("a call reaches the gateway holding the daemon; results, tool errors and tool listings come back", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      yield* gateway(prefix, "laptop", toolsOf("gw"), yield* Effect.scope)
      const router = yield* worker(prefix, { daemon: "laptop" })
      assert.deepStrictEqual(yield* router.execute(call("echo", { path: "notes.txt" })), { output: 'gw:{"path":"notes.txt"}', isError: false })
      assert.deepStrictEqual(yield* router.execute(call("failing", {})), { output: "exit code 1", isError: true })
      const denied = yield* Effect.flip(router.execute(call("denied", {})))
      assert.deepStrictEqual([denied.code, denied.message], ["tool_denied", "rm is not on the allowlist"])
      const tools = yield* router.tools(["echo", "slow"])
      assert.deepStrictEqual(tools.map((t) => t.name), ["echo", "slow"])
      const unknown = yield* Effect.flip(router.tools(["nope"]))
      assert.strictEqual(unknown.code, "tool_unavailable")
    }))

  it.scopedLive("no gateway holds the daemon: tool_unavailable naming it and how to connect one", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      yield* gateway(prefix, "other", toolsOf("gw"), yield* Effect.scope)
      const router = yield* worker(prefix, { daemon: "laptop" })
      const error = yield* Effect.flip(router.execute(call("echo", {})))
      assert.strictEqual(error.code, "tool_unavailable")
      assert.include(error.message, "no tools daemon named 'laptop' is connected")
      assert.include(error.message, "relavium daemon start --gateway")
    }))

  it.scopedLive("the gateway goes away mid-call: the worker's call fails tool_unavailable instead of hanging", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      const started = yield* Deferred.make<void>()
      const gatewayScope = yield* Scope.make()
      yield* gateway(prefix, "default", toolsOf("gw", { started }), gatewayScope)
      const router = yield* worker(prefix)
      const pending = yield* Effect.fork(Effect.flip(router.execute(call("slow", {}))))
      yield* Deferred.await(started)
      yield* Scope.close(gatewayScope, Exit.void)
      const error = yield* Fiber.join(pending)
      assert.strictEqual(error.code, "tool_unavailable")
      assert.include(error.message, "stopped answering")
    }))

  it.scopedLive("a long call stays alive on heartbeats; interrupting it on the worker interrupts it on the gateway", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      yield* gateway(prefix, "default", toolsOf("gw", { started, interrupted }), yield* Effect.scope)
      const router = yield* worker(prefix)
      const pending = yield* Effect.fork(router.execute(call("slow", {})))
      yield* Deferred.await(started)
      // Several silence windows pass: the beats keep the call alive.
      yield* Effect.sleep("1500 millis")
      assert.isNull(pending.unsafePoll())
      yield* Fiber.interrupt(pending)
      yield* Deferred.await(interrupted)
    }))

  it.scopedLive("two gateways holding the same daemon name: each call is answered once", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      const scope = yield* Effect.scope
      yield* gateway(prefix, "default", toolsOf("a"), scope)
      yield* gateway(prefix, "default", toolsOf("b"), scope)
      const router = yield* worker(prefix)
      const results = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) => router.execute(call("echo", i)), {
        concurrency: 20
      })
      assert.deepStrictEqual(
        results.map((r) => r.output.split(":")[1]).sort(),
        Array.from({ length: 20 }, (_, i) => String(i)).sort()
      )
    }))

  it.scopedLive("a malformed request is ignored and the gateway keeps answering", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      yield* gateway(prefix, "default", toolsOf("gw"), yield* Effect.scope)
      const nc = yield* NatsDaemonRouter.acquireConnection({ servers: natsUrl })
      nc.publish(NatsDaemonRouter.callSubject(prefix, "default"), '{"kind":"execute","call":{"name":42}}')
      nc.publish(NatsDaemonRouter.callSubject(prefix, "default"), "not json")
      const router = yield* worker(prefix)
      assert.strictEqual((yield* router.execute(call("echo", 1))).output, "gw:1")
    }))

  it.scopedLive("output a tool prints while it runs travels on the reply inbox, in order, before the result", () =>
    Effect.gen(function* () {
      const prefix = freshPrefix()
      const release = yield* Deferred.make<void>()
      const printing: DaemonRouter["Type"] = DaemonRouter.of({
        tools: () => Effect.succeed([]),
        execute: (_call, options) =>
          Effect.gen(function* () {
            const onOutput = options?.onOutput ?? (() => Effect.void)
            for (let i = 0; i < 30; i++) yield* onOutput({ stream: i % 3 === 2 ? "stderr" : "stdout", text: `chunk ${i}\n` })
            // The rest of the call waits until the worker has seen the chunks: they arrive while it runs.
            yield* Deferred.await(release)
            return { output: "all done", isError: false }
          })
      })
      yield* gateway(prefix, "default", Layer.succeed(DaemonRouter, printing), yield* Effect.scope)
      const router = yield* worker(prefix)
      const seen: Array<string> = []
      const result = yield* router.execute(call("printer", {}), {
        onOutput: (chunk) =>
          Effect.suspend(() => {
            seen.push(`${chunk.stream}:${chunk.text}`)
            return seen.length === 30 ? Deferred.succeed(release, undefined) : Effect.void
          })
      })
      assert.deepStrictEqual(result, { output: "all done", isError: false })
      assert.deepStrictEqual(
        seen,
        Array.from({ length: 30 }, (_, i) => `${i % 3 === 2 ? "stderr" : "stdout"}:chunk ${i}\n`)
      )
      // A worker that does not ask for the output gets the same result (the gate is open by now).
      assert.deepStrictEqual(yield* router.execute(call("printer", {})), { output: "all done", isError: false })
    }))
})

/**
 * The QuickJS worker is started before the first expression that needs it: which expressions need
 * it, which expressions a plan has, and that a warm-up nobody uses is harmless (a worker that fails
 * to start is dropped without an unhandled rejection, and the next call reports the failure).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as WorkerPool from "@relavium/ports/WorkerPool"
import { needsVm, planExpressions } from "../src/ExpressionFastPath.js"
import { compile } from "./harness.js"

describe("expression warm-up", () => {
  it("needsVm: lookups and literals never need the VM, anything else does", () => {
    for (const source of ["inputs.a.b", "run.outputs.n1", "ctx.x ;", "branches", "1", "-2.5e3", "true", "null"]) {
      assert.isFalse(needsVm(source), source)
    }
    for (const source of ["inputs.title.toUpperCase()", "inputs.n * 2", "run.outputs['n1']", "'x'", "[1]"]) {
      assert.isTrue(needsVm(source), source)
    }
  })

  it("planExpressions lists transforms, conditions, merge functions and edge conditions", () => {
    const plan = compile(`
schema_version: '1.0'
workflow:
  id: expressions
  nodes:
    - { id: start, type: input }
    - { id: t, type: transform, transform: 'inputs.a + 1' }
    - id: c
      type: condition
      expression: 'run.outputs.t > 1 ? "big" : "small"'
      branches:
        - { when: big, target_node: big }
        - { when: small, target_node: small }
    - { id: big, type: output }
    - { id: small, type: output }
    - { id: last, type: output }
  edges:
    - { from: start, to: t }
    - { from: t, to: c }
    - { from: t, to: last, condition: 'run.outputs.t === 2' }
`)
    assert.deepStrictEqual(planExpressions(plan).sort(), ["inputs.a + 1", 'run.outputs.t > 1 ? "big" : "small"', "run.outputs.t === 2"].sort())
  })

  it.live("a warmed worker that fails to start is dropped quietly; the next call reports it", () =>
    Effect.gen(function*() {
      const unhandled: Array<unknown> = []
      const onUnhandled = (reason: unknown) => unhandled.push(reason)
      process.on("unhandledRejection", onUnhandled)
      const pool = WorkerPool.unsafeMake<unknown, unknown>({
        entry: {
          bundled: new URL("./fixtures/failing-worker.mjs", import.meta.url),
          source: new URL("./fixtures/FailingWorker.ts", import.meta.url)
        },
        size: 1
      })
      pool.warm(3)
      pool.warm()
      // Long enough for the worker to load, fail and be dropped.
      yield* Effect.sleep("3 seconds")
      const result = yield* Effect.either(pool.run("x", 1000))
      yield* Effect.sleep("100 millis")
      process.off("unhandledRejection", onUnhandled)
      yield* Effect.promise(() => pool.shutdown())
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) {
        assert.strictEqual(result.left._tag, "WorkerFailed")
        assert.include(result.left.message, "this worker never starts")
      }
      assert.deepStrictEqual(unhandled, [])
    }), 30_000)
})

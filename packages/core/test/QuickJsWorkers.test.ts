/**
 * The expression sandbox runs off the main thread: a runaway expression leaves the event loop free,
 * an interrupted caller stops its expression at once, and the main-thread fast path for plain
 * lookups and literals answers exactly what the VM answers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber } from "effect"
import type { ExpressionScope } from "@relavium/ports"
import { ExpressionSandbox } from "@relavium/ports"
import { fastPath } from "../src/ExpressionFastPath.js"
import { defaultLimits, layerQuickJsWith } from "../src/QuickJsSandbox.js"

const scope: ExpressionScope = {
  inputs: { a: { b: [1, { c: "x" }] }, s: "text", n: -0, gone: undefined },
  ctx: { region: "eu" },
  outputs: { n1: { text: "hi", list: [1, 2] } }
}

const evaluate = (source: string) => Effect.flatMap(ExpressionSandbox, (sandbox) => sandbox.evaluate(source, scope))

/** Longest gap between ticks of a 5 ms interval while `effect` runs. */
const longestStall = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    let last = Date.now()
    let worst = 0
    const timer = setInterval(() => {
      const now = Date.now()
      worst = Math.max(worst, now - last)
      last = now
    }, 5)
    const result = yield* Effect.either(effect).pipe(Effect.ensuring(Effect.sync(() => clearInterval(timer))))
    return { result, worst }
  })

describe("QuickJsSandbox in worker threads", () => {
  it.effect("keeps the event loop free while an expression loops until its limit", () =>
    Effect.gen(function*() {
      yield* evaluate("1 + 1") // the worker is started outside the measurement
      const { result, worst } = yield* longestStall(evaluate("(() => { for (;;) {} })()"))
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) assert.include(result.left.message, "timed out after 1500 ms")
      assert.isBelow(worst, 200, `the event loop stalled for ${worst} ms`)
    }).pipe(Effect.provide(layerQuickJsWith({ ...defaultLimits, timeoutMs: 1500 }))), 30_000)

  it.live("interrupting the caller stops the expression at once and the sandbox keeps working", () =>
    Effect.gen(function*() {
      yield* evaluate("1 + 1")
      const started = Date.now()
      const fiber = yield* Effect.fork(evaluate("(() => { for (;;) {} })()"))
      yield* Effect.sleep(Duration.millis(200))
      yield* Fiber.interrupt(fiber)
      const stoppedAfter = Date.now() - started
      assert.isBelow(stoppedAfter, 3_000, "interrupt waited for the 20 s limit")
      assert.strictEqual(yield* evaluate("inputs.a.b.length * 21"), 42)
    }).pipe(Effect.provide(layerQuickJsWith({ ...defaultLimits, timeoutMs: 20_000 }))), 30_000)

  it.effect("a worker that is killed at the hard limit is replaced", () =>
    Effect.gen(function*() {
      // A regular expression with catastrophic backtracking runs inside the QuickJS regex engine;
      // whether the VM interrupt or the hard kill stops it, the caller gets a timeout and the pool recovers.
      const result = yield* Effect.either(evaluate(`/^(a+)+$/.test("a".repeat(40) + "!")`))
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) assert.include(result.left.message, "timed out")
      assert.strictEqual(yield* evaluate("ctx.region + '!'"), "eu!")
    }).pipe(Effect.provide(layerQuickJsWith({ ...defaultLimits, timeoutMs: 300 }))), 30_000)

  it.effect("the main-thread fast path answers what the VM answers", () =>
    Effect.gen(function*() {
      const sources = ["inputs.a.b", "inputs.a.b.length", "inputs.n", "inputs.gone", "run.outputs.n1.text", "run", "ctx", "-0", "1e400", "true", "null", "12.5"]
      for (const source of sources) {
        const quick = fastPath(source, scope)
        assert.isDefined(quick, source)
        // Wrapping in parentheses keeps the expression off the fast path, so the VM answers it.
        assert.deepStrictEqual(quick!.value, yield* evaluate(`(${source})`), source)
      }
      for (const source of ["inputs.s.length", "inputs.missing.x", "inputs.__proto__", "branches", "inputs['a']", "inputs.a.b[0]"]) {
        assert.isUndefined(fastPath(source, scope), source)
      }
    }).pipe(Effect.provide(layerQuickJsWith(defaultLimits))), 30_000)
})

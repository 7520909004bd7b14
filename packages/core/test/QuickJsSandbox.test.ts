/**
 * Contract tests for the QuickJS expression sandbox: scope bindings, JSON results, the forbidden
 * capabilities, the resource caps and their error classification, and isolation between
 * evaluations sharing one warmed context.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import type { RunError } from "@relavium/domain"
import type { ExpressionScope } from "@relavium/ports"
import { ExpressionSandbox } from "@relavium/ports"
import { defaultLimits, layerQuickJs, layerQuickJsWith } from "../src/QuickJsSandbox.js"

const scope: ExpressionScope = {
  inputs: { n: 12, name: "Ada", tags: ["a", "b"] },
  ctx: { threshold: 10, region: "eu" },
  outputs: { classify: { sentiment: "positive", score: 0.8 }, count: 3 }
}

const evaluate = (source: string, over: Partial<ExpressionScope> = {}) =>
  Effect.flatMap(ExpressionSandbox, (sandbox) => sandbox.evaluate(source, { ...scope, ...over }))

const failureOf = (source: string, over: Partial<ExpressionScope> = {}) =>
  Effect.flatMap(Effect.either(evaluate(source, over)), (result) =>
    Either.isLeft(result)
      ? Effect.succeed<RunError.NodeFailure>(result.left)
      : Effect.dieMessage(`expected a failure, got ${JSON.stringify(result.right)}`))

const assertSandboxError = (error: RunError.NodeFailure, includes: string, retryable = false) => {
  assert.strictEqual(error.code, "sandbox_error")
  assert.strictEqual(error.retryable, retryable)
  assert.include(error.message, includes)
}

describe("QuickJsSandbox", () => {
  describe("values", () => {
    it.effect("evaluates arithmetic and comparisons over inputs, ctx and run.outputs", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* evaluate("inputs.n >= ctx.threshold"), true)
        assert.strictEqual(yield* evaluate("inputs.n * 2 + run.outputs.count"), 27)
        assert.strictEqual(yield* evaluate(`run.outputs["classify"].sentiment === "positive"`), true)
        assert.strictEqual(yield* evaluate("ctx.region + ':' + inputs.name"), "eu:Ada")
        assert.strictEqual(yield* evaluate("Math.max(inputs.n, 40) / 4"), 10)
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("returns objects and arrays as JSON values", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* evaluate(`({ label: "high", score: run.outputs.classify.score })`), {
          label: "high",
          score: 0.8
        })
        assert.deepStrictEqual(yield* evaluate("inputs.tags.map(t => t.toUpperCase())"), ["A", "B"])
        assert.deepStrictEqual(yield* evaluate("branches.map(b => b.x)", { branches: [{ x: 1 }, { x: 2 }] }), [1, 2])
        // A `__proto__` key from model output lands as own data, never as a prototype.
        const hostile = { inputs: JSON.parse(`{ "__proto__": { "polluted": true } }`) }
        assert.deepStrictEqual(yield* evaluate("[Object.keys(inputs), ({}).polluted, inputs.polluted]", hostile), [
          ["__proto__"],
          null,
          null
        ])
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("turns undefined into null and follows JSON for lossy values", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* evaluate("undefined"), null)
        assert.strictEqual(yield* evaluate("inputs.missing"), null)
        assert.strictEqual(yield* evaluate("NaN"), null)
        assert.deepStrictEqual(yield* evaluate("new Map([[1, 2]])"), {})
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("tolerates a trailing semicolon, whitespace and line comment", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* evaluate("inputs.n + 1;  \n"), 13)
        assert.strictEqual(yield* evaluate("inputs.n + 1 // why"), 13)
        assert.strictEqual(yield* evaluate("{ a: 1 }.a"), 1)
      }).pipe(Effect.provide(layerQuickJs)))
  })

  describe("forbidden capabilities", () => {
    it.effect("does not expose Date, Math.random, Promise, timers, Intl, Proxy, fetch, require, WebAssembly, Function", () =>
      Effect.gen(function*() {
        for (
          const name of [
            "Date",
            "Promise",
            "setTimeout",
            "setInterval",
            "queueMicrotask",
            "Intl",
            "Proxy",
            "WeakRef",
            "FinalizationRegistry",
            "fetch",
            "require",
            "process",
            "WebAssembly",
            "performance",
            "crypto",
            "Function"
          ]
        ) {
          assert.strictEqual(yield* evaluate(`typeof ${name}`), "undefined", name)
        }
        assert.strictEqual(yield* evaluate("typeof Math.random"), "undefined")
        assert.strictEqual(yield* evaluate("typeof Math.floor"), "function")
        assert.strictEqual(yield* evaluate("typeof JSON.parse"), "function")
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("reports a forbidden call as a sandbox_error", () =>
      Effect.gen(function*() {
        assertSandboxError(yield* failureOf("Math.random()"), "TypeError")
        assertSandboxError(yield* failureOf("new Date()"), "ReferenceError")
        assertSandboxError(yield* failureOf("(() => 1).constructor('return 1')"), "Function constructor is disabled")
        assertSandboxError(yield* failureOf("(function* () {}).constructor('yield 1')"), "Function constructor is disabled")
        assertSandboxError(yield* failureOf("(async () => 1)()"), "async functions are not available")
        assertSandboxError(yield* failureOf("(Math.random = () => 4)"), "TypeError")
      }).pipe(Effect.provide(layerQuickJs)))
  })

  describe("failures", () => {
    it.effect("reports syntax errors at evaluation time", () =>
      Effect.gen(function*() {
        assertSandboxError(yield* failureOf("inputs.n >"), "SyntaxError: ")
        assertSandboxError(yield* failureOf("   ;  "), "SyntaxError: the expression is empty")
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("reports thrown errors with their name and message", () =>
      Effect.gen(function*() {
        assertSandboxError(yield* failureOf(`(() => { throw new RangeError("too big") })()`), "RangeError: too big")
        assertSandboxError(yield* failureOf("inputs.missing.deeper"), "TypeError")
        assertSandboxError(yield* failureOf("nope + 1"), "ReferenceError")
        assertSandboxError(yield* failureOf(`(() => { throw "plain" })()`), "expression threw plain")
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("rejects results that are not JSON", () =>
      Effect.gen(function*() {
        assertSandboxError(yield* failureOf("(x) => x"), "returned a function")
        assertSandboxError(yield* failureOf("Symbol('s')"), "returned a symbol")
        assertSandboxError(yield* failureOf("10n"), "returned a BigInt")
        assertSandboxError(yield* failureOf("(() => { const o = {}; o.self = o; return o })()"), "not JSON-serialisable")
        assertSandboxError(yield* failureOf("({ deep: [1n] })"), "not JSON-serialisable")
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("stops an infinite loop at the 1000 ms deadline as a retryable error, then keeps working", () =>
      Effect.gen(function*() {
        const started = Date.now()
        const error = yield* failureOf("(() => { while (true) {} })()")
        const elapsed = Date.now() - started
        assertSandboxError(error, "expression timed out after 1000 ms", true)
        assert.isAtLeast(elapsed, 1000)
        assert.isBelow(elapsed, 5000)
        assert.strictEqual(yield* evaluate("inputs.n + 1"), 13)
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("stops a memory bomb at the 16 MB limit, then keeps working", () =>
      Effect.gen(function*() {
        assertSandboxError(
          yield* failureOf("(() => { const a = []; while (true) a.push(a.length) })()"),
          "expression ran out of memory (limit 16 MB)"
        )
        assertSandboxError(yield* failureOf("'x'.repeat(1 << 25).length"), "expression ran out of memory (limit 16 MB)")
        assert.strictEqual(yield* evaluate("inputs.n + 1"), 13)
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("stops deep recursion at the stack limit, then keeps working", () =>
      Effect.gen(function*() {
        assertSandboxError(
          yield* failureOf("(function f(n) { return f(n + 1) + 1 })(0)"),
          "expression exceeded the stack limit (256 KB)"
        )
        assertSandboxError(yield* failureOf("[".repeat(5000) + "]".repeat(5000)), "nested too deeply")
        assert.strictEqual(yield* evaluate("inputs.n + 1"), 13)
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("reports a scope that is not JSON", () =>
      Effect.gen(function*() {
        const cyclic: Record<string, unknown> = {}
        cyclic.self = cyclic
        assertSandboxError(yield* failureOf("1", { inputs: cyclic }), "scope is not JSON-serialisable")
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("honours custom limits", () =>
      Effect.gen(function*() {
        assertSandboxError(yield* failureOf("(() => { while (true) {} })()"), "timed out after 50 ms", true)
      }).pipe(Effect.provide(layerQuickJsWith({ ...defaultLimits, timeoutMs: 50 }))))
  })

  describe("isolation", () => {
    it.effect("keeps no state between evaluations", () =>
      Effect.gen(function*() {
        // Each attempt either fails or stays local to its own evaluation.
        yield* Effect.either(evaluate("(globalThis.leaked = 1)"))
        yield* Effect.either(evaluate("(Object.prototype.leaked = 1)"))
        yield* Effect.either(evaluate("(Array.prototype.map = () => 'hijacked')"))
        yield* Effect.either(evaluate("(Object.getPrototypeOf([].values()).leaked = 1)"))
        yield* Effect.either(evaluate("(JSON.stringify = () => '1')"))
        yield* Effect.either(evaluate("1); let leaked = 1; (1"))
        yield* Effect.either(evaluate("(0, eval)('var leaked = 1')"))
        yield* Effect.either(evaluate("(0, eval)('let leaked = 1')"))
        yield* Effect.either(evaluate("(() => { var leaked = 1; return leaked })()"))
        assert.strictEqual(yield* evaluate("typeof leaked"), "undefined")
        assert.strictEqual(yield* evaluate("({}).leaked === undefined && [].values().leaked === undefined"), true)
        assert.deepStrictEqual(yield* evaluate("[1, 2].map(x => x * 2)"), [2, 4])
        assert.deepStrictEqual(yield* evaluate("({ a: 1 })"), { a: 1 })
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("freezes the scope so an expression cannot mutate it", () =>
      Effect.gen(function*() {
        assertSandboxError(yield* failureOf("(inputs.n = 5)"), "TypeError")
        assertSandboxError(yield* failureOf("run.outputs.classify.score = 1"), "TypeError")
        assertSandboxError(yield* failureOf("inputs.tags.push('c')"), "TypeError")
        assert.strictEqual(yield* evaluate("Object.isFrozen(run) && Object.isFrozen(ctx)"), true)
      }).pipe(Effect.provide(layerQuickJs)))

    it.effect("serves concurrent fibers", () =>
      Effect.gen(function*() {
        const results = yield* Effect.forEach(
          Array.from({ length: 200 }, (_, i) => i),
          (i) => evaluate(`inputs.n + ${i}`),
          { concurrency: 16 }
        )
        assert.deepStrictEqual(results, Array.from({ length: 200 }, (_, i) => 12 + i))
      }).pipe(Effect.provide(layerQuickJs)))
  })
})

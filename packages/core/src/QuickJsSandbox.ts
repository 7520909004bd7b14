/**
 * The `ExpressionSandbox` implemented with QuickJS compiled to WebAssembly.
 *
 * Isolation rests on the wasm heap: no host function or object is ever injected, the scope crosses
 * as JSON text (one string per member, parsed and deep-frozen inside the VM), and the capabilities
 * that would make an expression non-deterministic or I/O-bearing (Date, Math.random, Promise/async,
 * Proxy, typed arrays, the Function constructor) are never created or are removed before any
 * expression runs.
 *
 * Speed: a run evaluates one expression per condition/transform/merge node, so a fresh runtime or
 * context per evaluation (~130-230 µs measured) would dominate. One warmed context is reused instead,
 * and it is made safe to reuse by "locking it down" once: every intrinsic reachable from the global
 * object (and the hidden iterator/generator prototypes) is frozen, the global object is frozen, and
 * expressions run through a strict direct `eval` inside a function, so their declarations stay local
 * to that one evaluation. After any resource trip (timeout, out of memory, stack overflow, or a host
 * fault) the runtime and its wasm instance are dropped and rebuilt on the next call, never reused.
 */
import variant from "@jitl/quickjs-wasmfile-release-sync"
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime, QuickJSWASMModule } from "quickjs-emscripten-core"
import { newQuickJSWASMModuleFromVariant } from "quickjs-emscripten-core"
import { Effect, Either, Layer } from "effect"
import { RunError } from "@relavium/domain"
import type { ExpressionScope } from "@relavium/ports"
import { ExpressionSandbox } from "@relavium/ports"

/** Per-evaluation resource caps. */
export interface QuickJsLimits {
  /** Wall-clock budget per evaluation; the only trip that is retryable. */
  readonly timeoutMs: number
  /** Heap cap of the runtime the expressions share. */
  readonly memoryBytes: number
  /** Cap on the VM stack, which bounds recursion. */
  readonly stackBytes: number
}

/** The v1 caps of the expression-sandbox contract. */
export const defaultLimits: QuickJsLimits = {
  timeoutMs: 1000,
  memoryBytes: 16 * 1024 * 1024,
  stackBytes: 256 * 1024
}

/** Longer messages are cut: an author-thrown message ends up in run events and logs. */
const MAX_MESSAGE_CHARS = 500

/**
 * Deny-by-default intrinsics: only pure, deterministic built-ins are created. `Eval` must stay on
 * because QuickJS needs it to compile any code (and the evaluator below relies on direct eval).
 */
const INTRINSICS = {
  BaseObjects: true,
  Eval: true,
  JSON: true,
  MapSet: true,
  RegExp: true,
  RegExpCompiler: true,
  StringNormalize: true,
  Date: false,
  Promise: false,
  Proxy: false,
  TypedArrays: false
} as const

/**
 * Runs once per context, before any expression. Removes what the contract forbids, disables code
 * generation through `Function` (its constructor would compile code at global level, where a `let`
 * would survive into later evaluations), then freezes every reachable intrinsic so nothing one
 * expression does to a shared built-in is visible to the next. Its completion value is a factory
 * that wraps the evaluator into the runner the host calls.
 */
const BOOTSTRAP = String.raw`
"use strict";
(function () {
  delete Math.random;
  const forbidden = ["Function", "Date", "Promise", "Proxy", "Intl", "WeakRef", "FinalizationRegistry",
    "Atomics", "SharedArrayBuffer", "ArrayBuffer", "WebAssembly", "queueMicrotask", "setTimeout",
    "setInterval", "clearTimeout", "clearInterval", "fetch", "require", "process", "performance",
    "crypto", "console", "print", "std", "os", "scriptArgs", "gc"];
  for (let i = 0; i < forbidden.length; i++) delete globalThis[forbidden[i]];

  const noCodeGeneration = function () {
    throw new TypeError("the Function constructor is disabled in the expression sandbox");
  };
  const functionKinds = [];
  const collect = (make) => { try { functionKinds.push(make()); } catch (e) {} };
  collect(() => function () {});
  collect(() => function* () {});
  for (let i = 0; i < functionKinds.length; i++) {
    const proto = Object.getPrototypeOf(functionKinds[i]);
    if (proto !== null && typeof proto === "object" || typeof proto === "function") {
      Object.defineProperty(proto, "constructor", { value: noCodeGeneration, writable: false, configurable: false });
    }
  }

  // No async function is ever created here: without the Promise intrinsic QuickJS leaks one on
  // creation, and a leaked object makes tearing the runtime down abort.
  // Hidden intrinsics (iterator and generator prototypes) are not reachable from globalThis by
  // property names, so an instance of each seeds the walk.
  const roots = [globalThis, noCodeGeneration];
  const seed = (make) => { try { roots.push(make()); } catch (e) {} };
  seed(() => [][Symbol.iterator]());
  seed(() => new Map()[Symbol.iterator]());
  seed(() => new Set()[Symbol.iterator]());
  seed(() => ""[Symbol.iterator]());
  seed(() => "a".matchAll(/a/g));
  seed(() => (function* () {})());
  seed(() => [].values().map((x) => x));
  seed(() => Iterator.from({ next() { return { done: true, value: undefined }; } }));
  seed(() => (function () { return arguments; })());
  for (let i = 0; i < functionKinds.length; i++) roots.push(functionKinds[i]);

  const seen = new WeakSet();
  while (roots.length > 0) {
    const value = roots.pop();
    if (value === null || (typeof value !== "object" && typeof value !== "function") || seen.has(value)) continue;
    seen.add(value);
    Object.freeze(value);
    roots.push(Object.getPrototypeOf(value));
    const keys = Reflect.ownKeys(value);
    for (let i = 0; i < keys.length; i++) {
      const d = Object.getOwnPropertyDescriptor(value, keys[i]);
      if (d === undefined) continue;
      if ("value" in d) roots.push(d.value);
      else { roots.push(d.get); roots.push(d.set); }
    }
  }

  const parse = JSON.parse;
  const stringify = JSON.stringify;
  const freeze = Object.freeze;
  const keysOf = Object.keys;
  const toText = String;
  const deepFreeze = (root) => {
    const pending = [root];
    while (pending.length > 0) {
      const v = pending.pop();
      if (typeof v === "object" && v !== null) {
        freeze(v);
        const keys = keysOf(v);
        for (let i = 0; i < keys.length; i++) pending.push(v[keys[i]]);
      }
    }
    return root;
  };
  const load = (json) => json === undefined ? undefined : deepFreeze(parse(json));
  // A thrown value is arbitrary author data: read only string name/message, and never let a
  // throwing getter escape.
  const describe = (e) => {
    let name = "";
    let message = "";
    if ((typeof e === "object" && e !== null) || typeof e === "function") {
      try { const n = e.name; if (typeof n === "string") name = n; } catch (_) {}
      try { const m = e.message; if (typeof m === "string") message = m; } catch (_) {}
    } else {
      try { message = toText(e); } catch (_) { message = "a non-Error value"; }
    }
    return stringify([name, message]);
  };

  return (evaluate) => {
    freeze(evaluate);
    // The host reads the first character: J = JSON result, E = thrown [name, message],
    // N = non-JSON typeof, S = JSON.stringify failure [name, message].
    const runner = (source, inputsJson, ctxJson, outputsJson, branchesJson) => {
      let value;
      try {
        value = evaluate(source, load(inputsJson), load(ctxJson), freeze({ outputs: load(outputsJson) }), load(branchesJson));
      } catch (e) {
        return "E" + describe(e);
      }
      const type = typeof value;
      if (type === "undefined") return "Jnull";
      if (type === "function" || type === "symbol" || type === "bigint") return "N" + type;
      let json;
      try { json = stringify(value); } catch (e) { return "S" + describe(e); }
      return json === undefined ? "Jnull" : "J" + json;
    };
    return freeze(runner);
  };
})()
`

/**
 * The evaluator is compiled at global level so a direct eval inside it sees only its parameters and
 * the (frozen) globals, never the bootstrap's closure. Strict direct eval keeps every declaration
 * the source makes local to that call.
 */
const EVALUATOR = `(function (__expression__, inputs, ctx, run, branches) { "use strict"; return eval(__expression__); })`

/** One warmed runtime + locked-down context, and the runner handle the host calls. */
interface Vm {
  readonly runtime: QuickJSRuntime
  readonly context: QuickJSContext
  readonly runner: QuickJSHandle
  /** Read by the interrupt handler; set before each evaluation. */
  deadline: number
}

const disposeQuietly = (dispose: () => void): void => {
  try {
    dispose()
  } catch {
    // Teardown faults must not mask the error that led here; the wasm instance is dropped anyway.
  }
}

/** Only for a healthy VM; a tripped one is abandoned with its module (see `Engine`). */
const disposeVm = (vm: Vm): void => {
  disposeQuietly(() => vm.runner.dispose())
  disposeQuietly(() => vm.context.dispose())
  disposeQuietly(() => vm.runtime.dispose())
}

const createVm = (module: QuickJSWASMModule, limits: QuickJsLimits): Vm => {
  const runtime = module.newRuntime({ memoryLimitBytes: limits.memoryBytes, maxStackSizeBytes: limits.stackBytes })
  let context: QuickJSContext | undefined
  try {
    context = runtime.newContext({ intrinsics: INTRINSICS })
    const ctx = context
    const factory = ctx.unwrapResult(ctx.evalCode(BOOTSTRAP, "relavium-sandbox-bootstrap.js", { type: "global" }))
    try {
      const evaluator = ctx.unwrapResult(ctx.evalCode(EVALUATOR, "relavium-expression.js", { type: "global" }))
      try {
        const runner = ctx.unwrapResult(ctx.callFunction(factory, ctx.undefined, evaluator))
        const vm: Vm = { runtime, context: ctx, runner, deadline: Number.POSITIVE_INFINITY }
        // One handler per runtime reading a mutable deadline avoids re-registering it per call.
        runtime.setInterruptHandler(() => Date.now() > vm.deadline)
        return vm
      } finally {
        evaluator.dispose()
      }
    } finally {
      factory.dispose()
    }
  } catch (cause) {
    const built = context
    if (built !== undefined) disposeQuietly(() => built.dispose())
    disposeQuietly(() => runtime.dispose())
    throw cause
  }
}

const formatBytes = (bytes: number): string =>
  bytes % (1024 * 1024) === 0
    ? `${bytes / (1024 * 1024)} MB`
    : bytes % 1024 === 0
    ? `${bytes / 1024} KB`
    : `${bytes} bytes`

const truncate = (text: string): string =>
  text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text

const sandboxError = (message: string, retryable = false) =>
  RunError.nodeFailure("sandbox_error", truncate(message), retryable)

/** `discardVm`: the failure may have damaged the runtime, so it must not be reused. */
type Outcome =
  | { readonly _tag: "Value"; readonly value: unknown }
  | { readonly _tag: "Failure"; readonly error: RunError.NodeFailure; readonly discardVm: boolean }

const failure = (error: RunError.NodeFailure, discardVm = false): Outcome => ({ _tag: "Failure", error, discardVm })

const parseNameMessage = (json: string): readonly [string, string] => {
  const parsed: unknown = JSON.parse(json)
  if (Array.isArray(parsed) && typeof parsed[0] === "string" && typeof parsed[1] === "string") {
    return [parsed[0], parsed[1]]
  }
  return ["", "an unknown error"]
}

/**
 * Classifies an error by its name, never by author-controlled text alone: a thrown
 * `InternalError("out of memory")` is classified as a memory trip, which is fatal either way.
 */
const classifyThrown = (name: string, message: string, limits: QuickJsLimits): Outcome => {
  const lower = message.toLowerCase()
  if (name === "InternalError" && lower.includes("out of memory")) {
    return failure(sandboxError(`expression ran out of memory (limit ${formatBytes(limits.memoryBytes)})`), true)
  }
  if (
    (name === "InternalError" && lower.includes("stack overflow")) ||
    (name === "RangeError" && lower.includes("call stack"))
  ) {
    return failure(sandboxError(`expression exceeded the stack limit (${formatBytes(limits.stackBytes)})`), true)
  }
  if (name === "InternalError") {
    // Other engine limits ("string too long", …) are resource trips too: fatal, and the VM is renewed.
    return failure(sandboxError(`expression exceeded a sandbox limit: ${message}`), true)
  }
  if (name === "") {
    return failure(sandboxError(`expression threw ${message}`))
  }
  return failure(sandboxError(message === "" ? name : `${name}: ${message}`))
}

const NON_JSON_TYPES: Record<string, string> = {
  function: "a function",
  symbol: "a symbol",
  bigint: "a BigInt"
}

const decodeReply = (reply: string, limits: QuickJsLimits): Outcome => {
  const body = reply.slice(1)
  switch (reply[0]) {
    case "J":
      return { _tag: "Value", value: JSON.parse(body) }
    case "E": {
      const [name, message] = parseNameMessage(body)
      return classifyThrown(name, message, limits)
    }
    case "N":
      return failure(sandboxError(`expression returned ${NON_JSON_TYPES[body] ?? body}, which is not a JSON value`))
    case "S": {
      const [name, message] = parseNameMessage(body)
      const thrown = classifyThrown(name, message, limits)
      if (thrown._tag === "Failure" && thrown.discardVm) return thrown
      return failure(sandboxError(`expression result is not JSON-serialisable: ${name}: ${message}`))
    }
    default:
      return failure(sandboxError("expression sandbox returned an unexpected reply"), true)
  }
}

/** inputs, ctx, run.outputs and (for merge_fn) branches, each as one JSON text. */
type EncodedScope = readonly [string, string, string, string | undefined]

/**
 * A run's inputs and ctx are the same objects for each of its expressions (they never change once
 * the run starts), so their JSON is kept per object rather than rebuilt per evaluation.
 */
const encodedOnce = new WeakMap<object, string>()
const stringifyOnce = (value: Readonly<Record<string, unknown>>): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  let json = encodedOnce.get(value)
  if (json === undefined) {
    json = JSON.stringify(value) ?? "null"
    encodedOnce.set(value, json)
  }
  return json
}

/** Marshals each scope member as one JSON string; the VM parses and deep-freezes it. */
const encodeScope = (scope: ExpressionScope): Either.Either<EncodedScope, RunError.NodeFailure> => {
  try {
    return Either.right([
      stringifyOnce(scope.inputs),
      stringifyOnce(scope.ctx),
      JSON.stringify(scope.outputs) ?? "null",
      scope.branches === undefined ? undefined : JSON.stringify(scope.branches) ?? "null"
    ])
  } catch (cause) {
    return Either.left(
      sandboxError(`expression scope is not JSON-serialisable: ${cause instanceof Error ? cause.message : String(cause)}`)
    )
  }
}

/**
 * QuickJS parses recursively on the host's native stack, so deeply nested source (about a thousand
 * brackets) overflows the host before the VM's own stack limit notices. Real expressions nest a few
 * levels; this bound turns the pathological case into a clear error instead of a wasm reload.
 */
const MAX_NESTING = 200

interface SourceShape {
  readonly nesting: number
  readonly usesAsync: boolean
}

const isIdentifierChar = (ch: string | undefined): boolean => ch !== undefined && /[\w$]/u.test(ch)

/**
 * Bracket depth and whether an async function is written, skipping string literals and comments.
 * Template text is scanned as code, which can only over-count. `async` used as a property name
 * (`x.async`, `{ async: 1 }`) is not a function.
 */
const inspectSource = (source: string): SourceShape => {
  let depth = 0
  let nesting = 0
  let usesAsync = false
  let previous = ""
  let i = 0
  while (i < source.length) {
    const ch = source[i]!
    if (ch === "\"" || ch === "'") {
      i++
      while (i < source.length && source[i] !== ch) i += source[i] === "\\" ? 2 : 1
    } else if (ch === "/" && source[i + 1] === "/") {
      while (i < source.length && source[i] !== "\n") i++
    } else if (ch === "/" && source[i + 1] === "*") {
      const close = source.indexOf("*/", i + 2)
      i = close === -1 ? source.length : close + 1
    } else if (ch === "(" || ch === "[" || ch === "{") {
      depth++
      if (depth > nesting) nesting = depth
    } else if (ch === ")" || ch === "]" || ch === "}") {
      depth--
    } else if (
      ch === "a" && source.startsWith("async", i) && !isIdentifierChar(source[i - 1]) &&
      !isIdentifierChar(source[i + 5]) && previous !== "."
    ) {
      const next = source.slice(i + 5).trimStart()[0]
      if (next !== undefined && next !== ":" && next !== "," && next !== "}" && next !== ")" && next !== ".") usesAsync = true
    }
    if (!/\s/u.test(ch)) previous = ch
    i++
  }
  return { nesting, usesAsync }
}

/**
 * The author writes one expression; trailing semicolons and whitespace are tolerated. The expression
 * sits on its own lines so a trailing `// comment` cannot swallow the closing parenthesis.
 */
const toProgram = (source: string): Either.Either<string, RunError.NodeFailure> => {
  const trimmed = source.replace(/[\s;]+$/u, "")
  if (trimmed.trim() === "") return Either.left(sandboxError("SyntaxError: the expression is empty"))
  const shape = inspectSource(trimmed)
  if (shape.nesting > MAX_NESTING) {
    return Either.left(sandboxError(`expression is nested too deeply (more than ${MAX_NESTING} levels of brackets)`))
  }
  // Async functions cannot run without Promise, and QuickJS leaks each one created in that mode.
  if (shape.usesAsync) return Either.left(sandboxError("async functions are not available in the expression sandbox"))
  return Either.right(`(\n${trimmed}\n)`)
}

const evaluateIn = (vm: Vm, program: string, encoded: EncodedScope, limits: QuickJsLimits): Outcome => {
  const { context } = vm
  const args: Array<QuickJSHandle> = []
  try {
    args.push(context.newString(program))
    for (const json of encoded) args.push(json === undefined ? context.undefined : context.newString(json))
    vm.deadline = Date.now() + limits.timeoutMs
    const result = context.callFunction(vm.runner, context.undefined, args)
    const deadlinePassed = Date.now() > vm.deadline
    vm.deadline = Number.POSITIVE_INFINITY
    if (result.error !== undefined) {
      // The runner catches every catchable error, so what escapes is the uncatchable interrupt or a
      // failure while reporting (for instance, memory exhausted again).
      result.error.dispose()
      return deadlinePassed
        ? failure(sandboxError(`expression timed out after ${limits.timeoutMs} ms`, true), true)
        : failure(sandboxError(`expression ran out of memory (limit ${formatBytes(limits.memoryBytes)})`), true)
    }
    const reply = context.getString(result.value)
    result.value.dispose()
    return decodeReply(reply, limits)
  } finally {
    vm.deadline = Number.POSITIVE_INFINITY
    for (const handle of args) if (handle !== context.undefined) handle.dispose()
  }
}

/**
 * The module and its warmed VM. Both are dropped together after a trip: QuickJS can leave leaked
 * references behind after an interrupt or overflow (tearing such a runtime down aborts the wasm
 * instance), and a host stack overflow inside wasm can stop the allocator mid-update, so only a fresh
 * wasm instance is trusted. Dropping them unreferenced lets the host collect the old wasm memory.
 */
interface Engine {
  readonly module: QuickJSWASMModule
  readonly vm: Vm
}

const loadEngine = (limits: QuickJsLimits): Effect.Effect<Engine, RunError.NodeFailure> =>
  Effect.tryPromise({
    try: () => newQuickJSWASMModuleFromVariant(variant),
    catch: (cause) => sandboxError(`expression sandbox could not start: ${String(cause)}`)
  }).pipe(
    Effect.flatMap((module) =>
      Effect.try({
        try: () => ({ module, vm: createVm(module, limits) }),
        catch: (cause) => sandboxError(`expression sandbox could not start: ${String(cause)}`)
      })
    )
  )

/** Builds the service over a module loaded once (again only after a trip); the VM is released with the scope. */
export const make = (limits: QuickJsLimits = defaultLimits) =>
  Effect.gen(function*() {
    // The VM is synchronous and single-threaded; the permit keeps fibers from interleaving with a
    // reload or with the finalizer.
    const permit = yield* Effect.makeSemaphore(1)
    let engine: Engine | undefined = yield* Effect.orDie(loadEngine(limits))

    yield* Effect.addFinalizer(() =>
      permit.withPermits(1)(Effect.sync(() => {
        if (engine !== undefined) disposeVm(engine.vm)
        engine = undefined
      }))
    )

    const run = (current: Engine, program: string, encoded: EncodedScope): Outcome => {
      let outcome: Outcome
      try {
        outcome = evaluateIn(current.vm, program, encoded, limits)
      } catch (cause) {
        // A host-side throw out of the wasm bridge, typically the host stack overflowing inside the
        // QuickJS parser or JSON code on pathologically nested input.
        outcome = failure(
          sandboxError(
            cause instanceof RangeError
              ? `expression or its data is nested too deeply (host stack exhausted)`
              : `expression sandbox failed: ${String(cause)}`
          ),
          true
        )
      }
      if (outcome._tag === "Failure" && outcome.discardVm) engine = undefined
      return outcome
    }

    const evaluate = (source: string, scope: ExpressionScope): Effect.Effect<unknown, RunError.NodeFailure> => {
      const program = toProgram(source)
      if (Either.isLeft(program)) return Effect.fail(program.left)
      const encoded = encodeScope(scope)
      if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
      // A loaded VM is only ever used synchronously, and the permit is only held across an await
      // while no VM is loaded (a reload, or the finalizer), so a loaded VM needs no permit.
      return Effect.suspend(() => {
        const ready = engine
        if (ready !== undefined) {
          const outcome = run(ready, program.right, encoded.right)
          return outcome._tag === "Value" ? Effect.succeed(outcome.value) : Effect.fail(outcome.error)
        }
        return permit.withPermits(1)(
          Effect.suspend(() => engine === undefined ? loadEngine(limits) : Effect.succeed(engine)).pipe(
            Effect.flatMap((current) => {
              engine = current
              const outcome = run(current, program.right, encoded.right)
              return outcome._tag === "Value" ? Effect.succeed(outcome.value) : Effect.fail(outcome.error)
            })
          )
        )
      })
    }

    return ExpressionSandbox.of({ evaluate })
  })

/** The sandbox with custom caps, e.g. a short timeout in tests. */
export const layerQuickJsWith = (limits: QuickJsLimits): Layer.Layer<ExpressionSandbox> =>
  Layer.scoped(ExpressionSandbox, make(limits))

/** The sandbox with the contract's caps (1000 ms, 16 MB, 256 KB stack). */
export const layerQuickJs: Layer.Layer<ExpressionSandbox> = layerQuickJsWith(defaultLimits)

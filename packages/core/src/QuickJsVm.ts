/**
 * The QuickJS VM behind the expression sandbox, as it runs inside a worker thread (QuickJsWorker.ts;
 * the host side is QuickJsSandbox.ts).
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

/** Per-evaluation resource caps. */
export interface QuickJsLimits {
  /** Wall-clock budget per evaluation; the only trip that is retryable. */
  readonly timeoutMs: number
  /** Heap cap of the runtime the expressions share. */
  readonly memoryBytes: number
  /** Cap on the VM stack, which bounds recursion. */
  readonly stackBytes: number
}

/** inputs, ctx, run.outputs and (for merge_fn) branches, each as one JSON text. */
export type EncodedScope = readonly [string, string, string, string | undefined]

/**
 * What crosses back from the worker: the result as JSON text, or a failure message for a
 * `sandbox_error`. `discardVm` (worker-internal): the runtime may be damaged and is rebuilt.
 */
export type Outcome =
  | { readonly _tag: "Value"; readonly json: string }
  | { readonly _tag: "Failure"; readonly message: string; readonly retryable: boolean; readonly discardVm?: boolean }

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

export const formatBytes = (bytes: number): string =>
  bytes % (1024 * 1024) === 0
    ? `${bytes / (1024 * 1024)} MB`
    : bytes % 1024 === 0
    ? `${bytes / 1024} KB`
    : `${bytes} bytes`

const truncate = (text: string): string =>
  text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text


const failure = (message: string, retryable = false, discardVm = false): Outcome => ({
  _tag: "Failure",
  message: truncate(message),
  retryable,
  discardVm
})

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
    return failure(`expression ran out of memory (limit ${formatBytes(limits.memoryBytes)})`, false, true)
  }
  if (
    (name === "InternalError" && lower.includes("stack overflow")) ||
    (name === "RangeError" && lower.includes("call stack"))
  ) {
    return failure(`expression exceeded the stack limit (${formatBytes(limits.stackBytes)})`, false, true)
  }
  if (name === "InternalError") {
    // Other engine limits ("string too long", …) are resource trips too: fatal, and the VM is renewed.
    return failure(`expression exceeded a sandbox limit: ${message}`, false, true)
  }
  if (name === "") {
    return failure(`expression threw ${message}`)
  }
  return failure(message === "" ? name : `${name}: ${message}`)
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
      return { _tag: "Value", json: body }
    case "E": {
      const [name, message] = parseNameMessage(body)
      return classifyThrown(name, message, limits)
    }
    case "N":
      return failure(`expression returned ${NON_JSON_TYPES[body] ?? body}, which is not a JSON value`)
    case "S": {
      const [name, message] = parseNameMessage(body)
      const thrown = classifyThrown(name, message, limits)
      if (thrown._tag === "Failure" && thrown.discardVm) return thrown
      return failure(`expression result is not JSON-serialisable: ${name}: ${message}`)
    }
    default:
      return failure("expression sandbox returned an unexpected reply", false, true)
  }
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
        ? failure(`expression timed out after ${limits.timeoutMs} ms`, true, true)
        : failure(`expression ran out of memory (limit ${formatBytes(limits.memoryBytes)})`, false, true)
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

const loadEngine = async (limits: QuickJsLimits): Promise<Engine> => {
  const module = await newQuickJSWASMModuleFromVariant(variant)
  return { module, vm: createVm(module, limits) }
}

/** Touches the interpreter loop, closures, arrays, strings, JSON and regular expressions once. */
const WARM_UP = `(
(() => { let x = 0; const a = []; for (let i = 0; i < 20000; i++) { x += i % 7; if (i % 100 === 0) a.push({ i, s: "v" + i }) }
  return [x, JSON.stringify(a).length, /a+b/.test("aaab"), a.map((o) => o.i).filter((i) => i % 2).length] })()
)`

/** Loads QuickJS once (again only after a trip) and returns the evaluation function of one worker. */
export const makeEvaluator = async (
  limits: QuickJsLimits
): Promise<(program: string, encoded: EncodedScope) => Promise<Outcome>> => {
  let engine: Engine | undefined = await loadEngine(limits)
  // The first run of each wasm code path compiles it (about a second on a busy machine); doing it
  // here, before the worker reports ready, keeps that out of the first expression's time limit.
  evaluateIn(engine.vm, WARM_UP, ["{}", "{}", "{}", undefined], { ...limits, timeoutMs: 60_000 })
  return async (program, encoded) => {
    if (engine === undefined) {
      try {
        engine = await loadEngine(limits)
      } catch (cause) {
        return failure(`expression sandbox could not start: ${String(cause)}`)
      }
    }
    let outcome: Outcome
    try {
      outcome = evaluateIn(engine.vm, program, encoded, limits)
    } catch (cause) {
      // A host-side throw out of the wasm bridge, typically the host stack overflowing inside the
      // QuickJS parser or JSON code on pathologically nested input.
      outcome = failure(
        cause instanceof RangeError
          ? `expression or its data is nested too deeply (host stack exhausted)`
          : `expression sandbox failed: ${String(cause)}`,
        false,
        true
      )
    }
    if (outcome._tag === "Failure" && outcome.discardVm === true) engine = undefined
    return outcome
  }
}

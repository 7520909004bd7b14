/**
 * The `ExpressionSandbox` implemented with QuickJS compiled to WebAssembly, evaluated off the main
 * thread: a pool of worker threads (QuickJsWorker.ts, the VM itself in QuickJsVm.ts), each
 * evaluation under a hard time limit that terminates its worker if the VM's own interrupt does not
 * stop it first, and under the VM's heap cap plus a V8 heap cap on the worker. Interrupting the
 * calling fiber (a node's `timeout_ms`, a cancelled run) terminates the worker running its
 * expression. So an expression can never hold the main event loop: the server keeps answering while
 * any run evaluates.
 *
 * Plain lookups (`inputs.a.b`, `run.outputs.n1`, `ctx.x`) and JSON literals (`1`, `true`) cannot
 * loop or allocate, so they are answered on the main thread (ExpressionFastPath.ts) with the same
 * result the VM would give; everything else goes to a worker.
 */
import { Effect, Either, Layer } from "effect"
import { RunError } from "@relavium/domain"
import type { ExpressionScope } from "@relavium/ports"
import { ExpressionSandbox } from "@relavium/ports"
import * as WorkerPool from "@relavium/ports/WorkerPool"
import { fastPath, needsVm } from "./ExpressionFastPath.js"
import type { Request } from "./QuickJsWorker.js"
import { type EncodedScope, formatBytes, type Outcome, type QuickJsLimits } from "./QuickJsVm.js"

export type { QuickJsLimits } from "./QuickJsVm.js"

/** The v1 caps of the expression-sandbox contract. */
export const defaultLimits: QuickJsLimits = {
  timeoutMs: 1000,
  memoryBytes: 16 * 1024 * 1024,
  stackBytes: 256 * 1024
}

/** Longer messages are cut: an author-thrown message ends up in run events and logs. */
const MAX_MESSAGE_CHARS = 500

/**
 * The VM interrupts itself at the limit and answers; the worker is terminated only if that answer
 * has not come this long after (stuck outside the interruptible interpreter loop).
 */
const HARD_LIMIT_GRACE_MS = 500

/** Backstop on the worker's own V8 heap (the scope's JSON texts live there); QuickJS has its own cap. */
const WORKER_HEAP_MB = 128

const truncate = (text: string): string =>
  text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text

const sandboxError = (message: string, retryable = false) =>
  RunError.nodeFailure("sandbox_error", truncate(message), retryable)


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


const poolFailure = (error: WorkerPool.WorkerTimeout | WorkerPool.WorkerFailed, limits: QuickJsLimits): RunError.NodeFailure => {
  if (error._tag === "WorkerTimeout") return sandboxError(`expression timed out after ${limits.timeoutMs} ms`, true)
  if (error.reason === "out_of_memory") {
    return sandboxError(`expression ran out of memory (limit ${formatBytes(limits.memoryBytes)})`)
  }
  return sandboxError(`expression sandbox failed: ${error.message}`)
}

const fromOutcome = (outcome: Outcome): Effect.Effect<unknown, RunError.NodeFailure> =>
  outcome._tag === "Value"
    ? Effect.try({
      try: () => JSON.parse(outcome.json) as unknown,
      catch: () => sandboxError("expression sandbox returned an unexpected reply")
    })
    : Effect.fail(sandboxError(outcome.message, outcome.retryable))

/**
 * A run of nodes answered by the fast path never waits on a worker, so nothing would hand the event
 * loop back to I/O (HTTP, SSE) until the run ends: a chain of 300 such nodes held /health for
 * seconds. At most every 15 ms the answer is delivered from a `setImmediate` instead,
 * which lets pending I/O run first.
 */
const YIELD_EVERY_MS = 15
let lastYieldAt = performance.now()
const answeredOnMainThread = (value: unknown): Effect.Effect<unknown> => {
  if (performance.now() - lastYieldAt < YIELD_EVERY_MS) return Effect.succeed(value)
  return Effect.async<unknown>((resume) => {
    const handle = setImmediate(() => {
      lastYieldAt = performance.now()
      resume(Effect.succeed(value))
    })
    return Effect.sync(() => clearImmediate(handle))
  })
}

/** Whether a list of expressions (one per compiled plan, see Engine.ts) needs the VM, decided once. */
const vmNeeded = new WeakMap<ReadonlyArray<string>, boolean>()

export interface SandboxOptions {
  /** Worker threads; defaults to max(2, available parallelism). */
  readonly workers?: number
  /**
   * Expressions known when the sandbox is built (the workflow a CLI run is about to start): if any
   * needs the VM, one worker starts loading QuickJS at once, beside the rest of the start-up.
   */
  readonly warmFor?: ReadonlyArray<string>
}

/** Builds the service over a pool of workers, terminated with the scope. */
export const make = (limits: QuickJsLimits = defaultLimits, options: SandboxOptions = {}) =>
  Effect.gen(function*() {
    const pool = yield* WorkerPool.make<Request, Outcome, QuickJsLimits>({
      entry: {
        bundled: new URL("./quickjs-worker.mjs", import.meta.url),
        source: new URL("./QuickJsWorker.ts", import.meta.url)
      },
      data: limits,
      ...(options.workers === undefined ? {} : { size: options.workers }),
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB }
    })

    const evaluate = (source: string, scope: ExpressionScope): Effect.Effect<unknown, RunError.NodeFailure> =>
      Effect.suspend(() => {
        // The scope is encoded first even for the fast path, so a scope that is not JSON fails the
        // same way whatever the expression (inputs and ctx are encoded once per run).
        const encoded = encodeScope(scope)
        if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
        const quick = fastPath(source, scope)
        if (quick !== undefined) return answeredOnMainThread(quick.value)
        const program = toProgram(source)
        if (Either.isLeft(program)) return Effect.fail(program.left)
        return pool.run({ program: program.right, encoded: encoded.right }, limits.timeoutMs + HARD_LIMIT_GRACE_MS).pipe(
          Effect.mapError((error) => poolFailure(error, limits)),
          Effect.flatMap(fromOutcome)
        )
      })

    // One worker is enough for the first expression; a second is started only when two run at once.
    const warmFor = (sources: ReadonlyArray<string>) => {
      let needed = vmNeeded.get(sources)
      if (needed === undefined) {
        needed = sources.some(needsVm)
        vmNeeded.set(sources, needed)
      }
      if (needed) pool.warm(1)
    }
    if (options.warmFor !== undefined) warmFor(options.warmFor)

    return ExpressionSandbox.of({ evaluate, prepare: (sources) => Effect.sync(() => warmFor(sources)) })
  })

/** The sandbox with custom caps, e.g. a short timeout in tests. */
export const layerQuickJsWith = (limits: QuickJsLimits, options: SandboxOptions = {}): Layer.Layer<ExpressionSandbox> =>
  Layer.scoped(ExpressionSandbox, make(limits, options))

/** The sandbox with the contract's caps (1000 ms, 16 MB, 256 KB stack). */
export const layerQuickJs: Layer.Layer<ExpressionSandbox> = layerQuickJsWith(defaultLimits)

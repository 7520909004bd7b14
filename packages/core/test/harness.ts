/**
 * Test harness: the local engine on memory layers, with a scripted model and
 * in-process tools, and helpers to run a workflow from YAML text.
 */
import { NodeContext } from "@effect/platform-node"
import { Chunk, Effect, Either, Layer, Ref, Stream, TestClock } from "effect"
import { Llm, type RunEvent as RE, WorkflowYaml } from "@relavium/domain"
import { layerLocal, QuickJsSandbox, WorkflowEngine } from "../src/index.js"
import { DaemonRouter, type InProcessTool, LlmProvider, ModelPricing, RunQueue, RunStore, UpdateHub, WorkflowStore } from "@relavium/ports"
import { Cost } from "@relavium/domain"
import { Option } from "effect"

/** Text chunks of one model answer, then a stop with usage. */
export const answer = (text: string, usage = { inputTokens: 100, outputTokens: 20 }): ReadonlyArray<Llm.StreamChunk> => [
  ...text.split(/(?<= )/).map((t) => ({ type: "text_delta" as const, text: t })),
  { type: "stop", stopReason: "stop", usage }
]

export const toolCall = (id: string, name: string, args: unknown): ReadonlyArray<Llm.StreamChunk> => [
  { type: "tool_call_start", id, name },
  { type: "tool_call_delta", id, argsJsonDelta: JSON.stringify(args) },
  { type: "tool_call_end", id },
  { type: "stop", stopReason: "tool_use", usage: { inputTokens: 50, outputTokens: 10 } }
]

/** A model that answers call N with `calls[N]`, and records the requests it got. */
export const scriptedModel = (calls: ReadonlyArray<ReadonlyArray<Llm.StreamChunk> | Llm.LlmError>) => {
  const requests: Array<Llm.LlmRequest> = []
  const layer = Layer.effect(
    LlmProvider,
    Effect.gen(function* () {
      const next = yield* Ref.make(0)
      return LlmProvider.of({
        stream: (request) =>
          Stream.unwrap(
            Ref.getAndUpdate(next, (n) => n + 1).pipe(
              Effect.map((n) => {
                requests.push(request)
                const call = calls[n]
                if (call === undefined) {
                  return Stream.fail(
                    new Llm.LlmError({ kind: "bad_request", retryable: false, provider: request.provider, message: `unexpected call ${n + 1}` })
                  )
                }
                return call instanceof Llm.LlmError ? Stream.fail(call) : Stream.fromIterable(call)
              })
            )
          )
      })
    })
  )
  return { layer, requests }
}

/** $3 in / $15 out per million tokens for every model. */
export const flatPricing = Layer.succeed(
  ModelPricing,
  ModelPricing.of({
    priceOf: () => Effect.succeed(Option.some(new Cost.ModelPrice({ inputPerMTok: 300_000_000, outputPerMTok: 1_500_000_000 })))
  })
)

export interface HarnessOptions {
  readonly model?: Layer.Layer<LlmProvider> | undefined
  /** Tools served in-process; ignored when `router` is given. */
  readonly tools?: ReadonlyArray<InProcessTool> | undefined
  readonly router?: Layer.Layer<DaemonRouter> | undefined
  /** Default: $3 in / $15 out per million tokens for every model. */
  readonly pricing?: Layer.Layer<ModelPricing> | undefined
  /** Default: the in-memory queue. */
  readonly queue?: Layer.Layer<RunQueue> | undefined
}

export const engineLayer = (options: HarnessOptions = {}) =>
  layerLocal({ executionMode: "local" }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        RunStore.layerMemory,
        UpdateHub.layerMemory,
        options.queue ?? RunQueue.layerMemory(),
        WorkflowStore.layerMemory,
        QuickJsSandbox.layerQuickJs,
        options.model ?? scriptedModel([]).layer,
        options.pricing ?? flatPricing,
        options.router ?? DaemonRouter.layerInProcess(options.tools ?? [])
      )
    ),
    Layer.provideMerge(NodeContext.layer)
  )

export const compile = (yaml: string) => {
  const plan = WorkflowYaml.parseWorkflow(yaml, "test.relavium.yaml")
  if (Either.isLeft(plan)) throw new Error(plan.left.message)
  return plan.right
}

/** Stores the workflow and starts a run; returns the handle. */
export const start = (yaml: string, inputs: Record<string, unknown> = {}) =>
  Effect.gen(function* () {
    const plan = compile(yaml)
    const workflows = yield* WorkflowStore
    const engine = yield* WorkflowEngine
    const stored = yield* workflows.put({ name: plan.spec.id, source: yaml, file: "test.relavium.yaml" })
    return yield* engine.start(stored.workflowId, inputs)
  })

/** Runs to a terminal event or a pause and returns every event seen. */
export const runToRest = (yaml: string, inputs: Record<string, unknown> = {}) =>
  Effect.gen(function* () {
    const handle = yield* start(yaml, inputs)
    const events = yield* collect(handle.runId)
    return { runId: handle.runId, events }
  })

/** Follows a run from `after` until it ends or pauses. */
export const collect = (runId: string, after = -1) =>
  Effect.flatMap(WorkflowEngine, (engine) =>
    engine.events(runId, after).pipe(
      Stream.takeUntil((e) => e.type === "run:completed" || e.type === "run:failed" || e.type === "run:cancelled" || e.type === "run:paused"),
      Stream.runCollect,
      Effect.map((c) => [...c])
    )
  )

/** Follows a run from the start until its terminal event. */
export const collectAll = (runId: string) =>
  Effect.flatMap(WorkflowEngine, (engine) =>
    engine.events(runId).pipe(
      Stream.runCollect,
      Effect.map((c) => [...c])
    )
  )

/** The stored log of a run. */
export const storedEvents = (runId: string) => Effect.flatMap(RunStore, (store) => store.events(runId))

export const ofType = <T extends RE.RunEventType>(events: ReadonlyArray<RE.RunEvent>, type: T) =>
  events.filter((e): e is RE.RunEventOf<T> => e.type === type)

export const last = (events: ReadonlyArray<RE.RunEvent>) => events[events.length - 1]!

/** Sequence numbers run 0..n-1 with no gap, and exactly one terminal event, at the end. */
export const checkLog = (events: ReadonlyArray<RE.RunEvent>) => {
  events.forEach((e, i) => {
    if (e.sequenceNumber !== i) throw new Error(`event ${i} has sequenceNumber ${e.sequenceNumber}`)
  })
  const terminals = events.filter((e) => e.type === "run:completed" || e.type === "run:failed" || e.type === "run:cancelled")
  if (terminals.length !== 1) throw new Error(`expected one terminal event, got ${terminals.length}`)
  if (terminals[0] !== events[events.length - 1]) throw new Error("the terminal event is not the last")
}

/** Ten milliseconds of real time, whatever `Clock` the fiber has (a TestClock stays where it is). */
const realPause = Effect.async<void>((resume) => {
  const timer = setTimeout(() => resume(Effect.void), 10)
  return Effect.sync(() => clearTimeout(timer))
})

/**
 * Polls `check` every 10 ms of real time until it holds: for work outside the test's fiber (worker
 * fibers, expression workers) to reach the point where it waits on the clock.
 */
export const waitUntil = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, timeoutMs = 30_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`waited ${timeoutMs} ms of real time for ${what}`))
      yield* realPause
    }
  })

/**
 * Waits until something sleeps on the TestClock until `atMs` exactly (a delayed job, a deadline),
 * then sets the clock to `atMs`, waking it and everything due before it.
 */
export const advanceTo = (atMs: number, what = `a timer due at ${new Date(atMs).toISOString()}`) =>
  waitUntil(what, Effect.map(TestClock.sleeps(), Chunk.some((due) => due === atMs))).pipe(
    Effect.zipRight(TestClock.setTime(atMs))
  )

/** Waits until the stored log of `runId` holds an event `found` picks, and returns it. */
export const storedEvent = <T extends RE.RunEvent>(runId: string, what: string, found: (event: RE.RunEvent) => event is T) =>
  Effect.gen(function* () {
    let event: T | undefined
    yield* waitUntil(
      what,
      Effect.map(storedEvents(runId), (events) => (event = events.find(found)) !== undefined).pipe(Effect.orDie)
    )
    return event!
  })

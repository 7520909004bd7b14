/**
 * What the engine tells a tracer and a metrics exporter (docs/observability.md): the names of
 * its spans and their attributes, and its metrics. Spans are Effect's own (`Effect.withSpan`);
 * the deployment chooses what records them (apps/cli/src/runtime/Telemetry.ts), and with none
 * the tracer is disabled and every span is a no-op. Metrics are Effect `Metric`s.
 *
 * Never recorded: inputs, outputs, prompts, model text, tool arguments and tool output, keys —
 * only ids, names, types, counts, statuses and durations.
 */
import { Context, Effect, Exit, FiberRef, Metric, MetricBoundaries, Option, Tracer } from "effect"

export const SpanName = {
  run: "run",
  job: (tag: string) => `job ${tag}`,
  node: "node",
  modelCall: "model.call",
  toolCall: "tool.call",
  gateWait: "gate.wait",
  gateDecision: "gate.decision",
  runRecover: "run.recover",
  runSweep: "run.sweep",
  storeCommit: "store.commit",
  queueOffer: "queue.offer"
} as const

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/** Runs started, by execution mode. */
export const runsStarted = Metric.counter("relavium.runs.started", { description: "runs started" })

/** Runs that reached a terminal event, tagged `status` (completed, failed, cancelled). */
export const runsFinished = Metric.counter("relavium.runs.finished", { description: "runs finished, by status" })

/** How long a node attempt ran, in milliseconds, tagged `node_type` and `status`. */
export const nodeDuration = Metric.histogram(
  "relavium.node.duration",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 20 }),
  "node attempt duration in milliseconds"
)

/** Tokens of model calls, tagged `direction` (input, output), `provider` and `model`. */
export const tokens = Metric.counter("relavium.llm.tokens", { description: "model tokens" })

/** The cost of model calls in microcents, tagged `provider` and `model`. */
export const costMicrocents = Metric.counter("relavium.llm.cost_microcents", { description: "model cost in microcents" })

/** Counts a model call's usage and cost. */
export const countUsage = (provider: string, model: string, input: number, output: number, cost: number) => {
  const tagged = <M extends Metric.Metric.Counter<number>>(metric: M) => metric.pipe(Metric.tagged("provider", provider), Metric.tagged("model", model))
  return Effect.all(
    [
      Metric.incrementBy(tagged(tokens).pipe(Metric.tagged("direction", "input")), input),
      Metric.incrementBy(tagged(tokens).pipe(Metric.tagged("direction", "output")), output),
      Metric.incrementBy(tagged(costMicrocents), cost)
    ],
    { discard: true }
  )
}

// ---------------------------------------------------------------------------
// Spans
// ---------------------------------------------------------------------------

/**
 * Where the fiber's spans go: `None` when they are not recorded (the tracer disabled, or the
 * current span a no-op), else `Some` of the parent a new span gets (`None` for a root).
 */
const recording: Effect.Effect<Option.Option<Option.Option<Tracer.AnySpan>>> = Effect.zipWith(
  FiberRef.get(FiberRef.currentTracerEnabled),
  Effect.option(Effect.currentSpan),
  (enabled, span) =>
    !enabled || (Option.isSome(span) && Context.get(span.value.context, Tracer.DisablePropagation))
      ? Option.none()
      : Option.some(span as Option.Option<Tracer.AnySpan>)
)

/**
 * A span that began before this process knew of it (a gate that opened in another job, perhaps
 * another process), recorded now as a child of the current span: from `startMs` to now.
 */
export const pastSpan = (name: string, startMs: number, attributes: Record<string, unknown>) =>
  Effect.flatMap(recording, (where) =>
    Option.isNone(where)
      ? Effect.void
      : Effect.flatMap(Effect.tracer, (tracer) =>
          Effect.flatMap(Effect.clock, (clock) =>
            Effect.sync(() => {
              const start = BigInt(Math.round(startMs)) * 1_000_000n
              const end = clock.unsafeCurrentTimeNanos()
              const span = tracer.span(name, where.value, Context.empty(), [], start < end ? start : end, "internal")
              for (const [key, value] of Object.entries(attributes)) span.attribute(key, value)
              span.end(end, Exit.void)
            })
          )
        )
  )

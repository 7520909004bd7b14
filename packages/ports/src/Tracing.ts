/**
 * Trace context across processes (docs/observability.md). Spans are Effect's own
 * (`Effect.withSpan`); which tracer records them is the deployment's choice
 * (apps/cli/src/runtime/Telemetry.ts) — with none configured the tracer is
 * disabled and every span is a no-op.
 *
 * A run is one trace: its root span `run` is made where the run starts, and its
 * W3C `traceparent` travels with every job of the run (the queue stamps it on
 * offer, the consumer makes it the parent of the job's span) and with every
 * tool call over NATS (a `traceparent` header), so the api, the workers, the
 * gateway and the daemon add their spans to the same trace.
 */
import { Context, Effect, FiberRef, Option, Tracer } from "effect"

/**
 * The `traceparent` of the run the fiber works for: set by a queue consumer from its job, read
 * when a job is offered, so every job of a run hangs under the run's root span (not under the
 * span of whichever job offered it).
 */
export const currentRunTraceparent: FiberRef.FiberRef<string | undefined> = FiberRef.unsafeMake<string | undefined>(undefined)

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** `00-<trace id>-<span id>-<flags>` of a span, W3C Trace Context. */
export const formatTraceparent = (span: Tracer.AnySpan): string =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

/** The span a `traceparent` names, as the parent of spans in this process; `None` when malformed. */
export const parseTraceparent = (traceparent: string | undefined): Option.Option<Tracer.ExternalSpan> => {
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent.trim())
  if (match === null || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return Option.none()
  return Option.some(Tracer.externalSpan({ traceId: match[1]!, spanId: match[2]!, sampled: (Number.parseInt(match[3]!, 16) & 1) === 1 }))
}

/**
 * The `traceparent` of the fiber's current span; `undefined` when there is none or tracing is
 * disabled (its spans are no-ops, whose ids mean nothing elsewhere).
 */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.map(Effect.currentSpan.pipe(Effect.option), (span) =>
  Option.isSome(span) && !Context.get(span.value.context, Tracer.DisablePropagation) ? formatTraceparent(span.value) : undefined
)

/** What a job carries: the run's `traceparent` when the fiber works for a run, else the current span's. */
export const jobTraceparent: Effect.Effect<string | undefined> = Effect.flatMap(FiberRef.get(currentRunTraceparent), (run) =>
  run === undefined ? currentTraceparent : Effect.succeed(run)
)

/**
 * Runs `effect` under the span a `traceparent` names (a job's, a message header's), which also
 * becomes the run's `traceparent` for the jobs it offers. Without one (or a malformed one) the
 * effect runs as it is.
 */
export const withRemoteParent =
  (traceparent: string | undefined) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Option.match(parseTraceparent(traceparent), {
      onNone: () => effect,
      onSome: (parent) => effect.pipe(Effect.withParentSpan(parent), Effect.locally(currentRunTraceparent, traceparent))
    })

/**
 * Makes the current span the run's: jobs offered by `effect` carry its `traceparent` (the root span
 * `run`, where a run starts).
 */
export const asRunTrace = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(currentTraceparent, (traceparent) =>
    traceparent === undefined ? effect : Effect.locally(effect, currentRunTraceparent, traceparent)
  )

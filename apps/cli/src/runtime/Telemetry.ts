/**
 * OpenTelemetry for every deployment (docs/observability.md): one layer, given
 * to each process's composition (local `run`, monolith, api, worker, gateway,
 * daemon), configured by the standard `OTEL_*` environment variables read
 * through Effect `Config` here.
 *
 * Off by default: with no OTLP endpoint (nor `OTEL_TRACES_EXPORTER=otlp`), or
 * with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`, the layer only
 * disables Effect's tracer, so every `Effect.withSpan` of the engine is a no-op
 * and no job or message carries a traceparent; no OpenTelemetry module is
 * loaded. On, it loads the SDK (TelemetrySdk.ts, a chunk of its own in the
 * bundle) and exports spans, and metrics unless `OTEL_METRICS_EXPORTER=none`,
 * over OTLP/HTTP (JSON).
 */
import { Config, type ConfigError, Effect, Layer, Option } from "effect"

/** Which process records: its default `service.name` is `relavium-<role>`. */
export type Role = "cli" | "monolith" | "api" | "worker" | "gateway" | "daemon"

export interface TelemetrySettings {
  readonly serviceName: string
  /** `OTEL_RESOURCE_ATTRIBUTES`, decoded. */
  readonly resourceAttributes: Readonly<Record<string, string>>
  /** Where spans go: the full URL (`…/v1/traces`). */
  readonly tracesUrl: string
  /** Where metrics go (`…/v1/metrics`); `undefined` with `OTEL_METRICS_EXPORTER=none`. */
  readonly metricsUrl: string | undefined
  /** `OTEL_BSP_SCHEDULE_DELAY`: how long spans are batched before export (ms). */
  readonly batchDelayMs: number
  /** `OTEL_METRIC_EXPORT_INTERVAL`: how often metrics are exported (ms). */
  readonly metricIntervalMs: number
}

const text = (name: string) =>
  Config.option(Config.string(name)).pipe(Config.map(Option.map((s) => s.trim())), Config.map(Option.filter((s) => s !== "")))

/** A number of milliseconds; unset, blank or not a number is the default (as the OpenTelemetry SDKs treat it). */
const milliseconds = (name: string, fallback: number) =>
  text(name).pipe(
    Config.map(Option.map(Number)),
    Config.map(Option.filter((n) => Number.isFinite(n) && n >= 0)),
    Config.map(Option.getOrElse(() => fallback))
  )

const DEFAULT_ENDPOINT = "http://localhost:4318"

/** `OTEL_EXPORTER_OTLP_ENDPOINT` is a base the signal's path is added to; a signal's own endpoint is used as it is. */
const signalUrl = (specific: Option.Option<string>, base: Option.Option<string>, path: string) =>
  Option.getOrElse(specific, () => `${Option.getOrElse(base, () => DEFAULT_ENDPOINT).replace(/\/+$/, "")}${path}`)

/** `key1=value1,key2=value2`, values percent-decoded (W3C Baggage octets); malformed pairs are ignored. */
export const parseResourceAttributes = (value: string): Record<string, string> => {
  const attributes: Record<string, string> = {}
  for (const pair of value.split(",")) {
    const at = pair.indexOf("=")
    if (at <= 0) continue
    const key = pair.slice(0, at).trim()
    let decoded: string
    try {
      decoded = decodeURIComponent(pair.slice(at + 1).trim())
    } catch {
      continue
    }
    if (key !== "") attributes[key] = decoded
  }
  return attributes
}

/** The settings, or `None` when telemetry is off (the default). */
export const settings = (role: Role): Config.Config<Option.Option<TelemetrySettings>> =>
  Config.all({
    disabled: text("OTEL_SDK_DISABLED").pipe(Config.map(Option.exists((v) => v.toLowerCase() === "true"))),
    tracesExporter: text("OTEL_TRACES_EXPORTER"),
    metricsExporter: text("OTEL_METRICS_EXPORTER"),
    endpoint: text("OTEL_EXPORTER_OTLP_ENDPOINT"),
    tracesEndpoint: text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    metricsEndpoint: text("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
    serviceName: text("OTEL_SERVICE_NAME"),
    resourceAttributes: text("OTEL_RESOURCE_ATTRIBUTES"),
    batchDelayMs: milliseconds("OTEL_BSP_SCHEDULE_DELAY", 5000),
    metricIntervalMs: milliseconds("OTEL_METRIC_EXPORT_INTERVAL", 60_000)
  }).pipe(
    Config.map((c): Option.Option<TelemetrySettings> => {
      const exporter = Option.getOrUndefined(c.tracesExporter)?.toLowerCase()
      const configured = exporter === "otlp" || Option.isSome(c.endpoint) || Option.isSome(c.tracesEndpoint)
      if (c.disabled || exporter === "none" || !configured) return Option.none()
      const metricsOff = Option.getOrUndefined(c.metricsExporter)?.toLowerCase() === "none"
      return Option.some({
        serviceName: Option.getOrElse(c.serviceName, () => `relavium-${role}`),
        resourceAttributes: Option.match(c.resourceAttributes, { onNone: () => ({}), onSome: parseResourceAttributes }),
        tracesUrl: signalUrl(c.tracesEndpoint, c.endpoint, "/v1/traces"),
        metricsUrl: metricsOff ? undefined : signalUrl(c.metricsEndpoint, c.endpoint, "/v1/metrics"),
        batchDelayMs: Math.max(0, c.batchDelayMs),
        metricIntervalMs: Math.max(100, c.metricIntervalMs)
      })
    })
  )

/** The SDK, loaded only when telemetry is on. */
const loadSdk = () => import("./TelemetrySdk.js")

/**
 * The telemetry of a `role` process: the OpenTelemetry SDK exporting over OTLP/HTTP when
 * configured, else Effect's tracer disabled (spans are no-ops). Its scope's end flushes what is
 * batched. A malformed `OTEL_*` value fails the process's start, naming the variable.
 */
export const layer = (role: Role): Layer.Layer<never, ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.map(settings(role), (configured) =>
      Option.match(configured, {
        onNone: () => Layer.setTracerEnabled(false),
        onSome: (s) => Layer.unwrapEffect(Effect.map(Effect.promise(loadSdk), (sdk) => sdk.layer(s)))
      })
    )
  )

/** Runs `effect` with the telemetry of a `role` process (a malformed `OTEL_*` value is a defect, reported by name). */
export const provide =
  (role: Role) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.provide(effect, Layer.orDie(layer(role)))

/**
 * The OpenTelemetry SDK behind Telemetry.ts, imported by it only when
 * telemetry is configured (this module and everything it imports are a chunk
 * of their own in the bundle, never loaded by a plain `relavium run`).
 *
 * Spans: Effect's spans through @effect/opentelemetry's tracer, batched and
 * exported as OTLP/HTTP JSON. Metrics: Effect's metrics, read periodically
 * and exported the same way.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Headers } from "@effect/platform"
import { Effect, Layer } from "effect"
import type { TelemetrySettings } from "./Telemetry.js"

/** apps/cli/package.json's version, put in by build.mjs (absent when run from source in tests). */
declare const __RELAVIUM_VERSION__: string | undefined

const version = typeof __RELAVIUM_VERSION__ === "string" ? __RELAVIUM_VERSION__ : "dev"

/**
 * Header values the HTTP spans of @effect/platform (server requests, provider calls) never record,
 * beyond its defaults (authorization, cookie, set-cookie, x-api-key): any header whose name
 * speaks of a key, a token, a secret, a signature, a password or a session (Gemini's
 * `x-goog-api-key`, webhook signatures, …).
 */
export const redactedHeaders: ReadonlyArray<RegExp> = [/key|token|secret|signature|passw|session|auth|cookie/i]

const redacting = Layer.scopedDiscard(Effect.locallyScopedWith(Headers.currentRedactedNames, (names) => [...names, ...redactedHeaders]))

export const layer = (settings: TelemetrySettings): Layer.Layer<never> =>
  Layer.merge(redacting, sdk(settings))

const sdk = (settings: TelemetrySettings): Layer.Layer<never> =>
  NodeSdk.layer(() => ({
    resource: { serviceName: settings.serviceName, serviceVersion: version, attributes: { ...settings.resourceAttributes } },
    spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.tracesUrl }), {
      scheduledDelayMillis: settings.batchDelayMs
    }),
    ...(settings.metricsUrl === undefined
      ? {}
      : {
          metricReader: new PeriodicExportingMetricReader({
            exporter: new OTLPMetricExporter({ url: settings.metricsUrl }),
            exportIntervalMillis: settings.metricIntervalMs,
            exportTimeoutMillis: Math.min(30_000, settings.metricIntervalMs)
          })
        }),
    shutdownTimeout: "5 seconds"
  })) as unknown as Layer.Layer<never>

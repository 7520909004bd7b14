/**
 * How the OTEL_* variables configure telemetry (apps/cli/src/runtime/Telemetry.ts,
 * docs/observability.md): off unless an OTLP endpoint or `OTEL_TRACES_EXPORTER=otlp` is set,
 * `none` and `OTEL_SDK_DISABLED=true` win, a signal's own endpoint wins over the base, the
 * service name defaults per process, resource attributes are percent-decoded.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option } from "effect"
import { parseResourceAttributes, type Role, settings } from "../src/runtime/Telemetry.js"

const read = (env: Record<string, string>, role: Role = "worker") =>
  Effect.runSync(Effect.withConfigProvider(settings(role), ConfigProvider.fromMap(new Map(Object.entries(env)))))

describe("telemetry settings", () => {
  it("are off by default and when disabled or set to none", () => {
    for (const env of <ReadonlyArray<Record<string, string>>>[
      {},
      { OTEL_SERVICE_NAME: "x" },
      { OTEL_EXPORTER_OTLP_ENDPOINT: "" },
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" },
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_TRACES_EXPORTER: "none" },
      { OTEL_TRACES_EXPORTER: "otlp", OTEL_SDK_DISABLED: "TRUE" }
    ]) {
      assert.isTrue(Option.isNone(read(env)), JSON.stringify(env))
    }
  })

  it("are on with an endpoint: the signal paths are added to the base", () => {
    const on = Option.getOrThrow(read({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/", OTEL_SDK_DISABLED: "false" }))
    assert.strictEqual(on.tracesUrl, "http://collector:4318/v1/traces")
    assert.strictEqual(on.metricsUrl, "http://collector:4318/v1/metrics")
    assert.strictEqual(on.serviceName, "relavium-worker")
    assert.strictEqual(on.batchDelayMs, 5000)
  })

  it("a signal's own endpoint is used as it is, and wins over the base", () => {
    const on = Option.getOrThrow(
      read({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example/otlp/spans",
        OTEL_METRICS_EXPORTER: "none",
        OTEL_SERVICE_NAME: "edge-api",
        OTEL_BSP_SCHEDULE_DELAY: "250"
      }, "api")
    )
    assert.strictEqual(on.tracesUrl, "https://traces.example/otlp/spans")
    assert.isUndefined(on.metricsUrl)
    assert.strictEqual(on.serviceName, "edge-api")
    assert.strictEqual(on.batchDelayMs, 250)
  })

  it("OTEL_TRACES_EXPORTER=otlp alone sends to the default local collector", () => {
    const on = Option.getOrThrow(read({ OTEL_TRACES_EXPORTER: "otlp", OTEL_BSP_SCHEDULE_DELAY: "soon" }, "gateway"))
    assert.strictEqual(on.tracesUrl, "http://localhost:4318/v1/traces")
    assert.strictEqual(on.serviceName, "relavium-gateway")
    assert.strictEqual(on.batchDelayMs, 5000, "a value that is not a number is the default")
  })

  it("resource attributes are key=value pairs, values percent-decoded, malformed pairs ignored", () => {
    assert.deepStrictEqual(parseResourceAttributes("deployment.environment=prod, team=a%20b,=x,novalue,bad=%E0%A4%A"), {
      "deployment.environment": "prod",
      team: "a b"
    })
    const on = Option.getOrThrow(read({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_RESOURCE_ATTRIBUTES: "region=eu-west-1" }))
    assert.deepStrictEqual(on.resourceAttributes, { region: "eu-west-1" })
  })
})

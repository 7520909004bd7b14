/**
 * A local OTLP/HTTP receiver for tests: an HTTP server on 127.0.0.1 that
 * accepts `POST /v1/traces` and `POST /v1/metrics` in OTLP JSON (what the
 * Telemetry layer's exporters send) and keeps what it got, decoded to spans
 * (hex ids, the sending process's `service.name`, attributes as plain values)
 * and metric names.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"

export interface ReceivedSpan {
  readonly service: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  readonly attributes: Readonly<Record<string, unknown>>
}

interface OtlpValue {
  readonly stringValue?: string
  readonly intValue?: number | string
  readonly doubleValue?: number
  readonly boolValue?: boolean
  readonly arrayValue?: { readonly values?: ReadonlyArray<OtlpValue> }
}
interface OtlpAttribute {
  readonly key: string
  readonly value: OtlpValue
}

const valueOf = (value: OtlpValue): unknown =>
  value.stringValue ??
  (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
  value.doubleValue ??
  value.boolValue ??
  (value.arrayValue !== undefined ? (value.arrayValue.values ?? []).map(valueOf) : undefined)

const attributesOf = (attributes: ReadonlyArray<OtlpAttribute> | undefined): Record<string, unknown> =>
  Object.fromEntries((attributes ?? []).map((a) => [a.key, valueOf(a.value)]))

export interface Receiver {
  /** `http://127.0.0.1:PORT`: the value of OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string
  readonly spans: Array<ReceivedSpan>
  readonly metricNames: Set<string>
  /** Content types of the requests, by path. */
  readonly contentTypes: Set<string>
  /** Every request body as received (to check what is never sent). */
  readonly bodies: Array<string>
  /** Resolves once `done(spans)` holds, or fails after `timeoutMs`. */
  readonly waitFor: (done: (spans: ReadonlyArray<ReceivedSpan>) => boolean, timeoutMs?: number) => Promise<void>
  readonly close: () => Promise<void>
}

export const startReceiver = async (): Promise<Receiver> => {
  const spans: Array<ReceivedSpan> = []
  const metricNames = new Set<string>()
  const contentTypes = new Set<string>()
  const bodies: Array<string> = []
  const server: Server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      contentTypes.add(`${request.url} ${request.headers["content-type"] ?? ""}`)
      bodies.push(body)
      if (request.method !== "POST" || !String(request.headers["content-type"]).includes("json")) {
        response.writeHead(415).end()
        return
      }
      try {
        const parsed = JSON.parse(body) as Record<string, ReadonlyArray<Record<string, unknown>> | undefined>
        if (request.url === "/v1/traces") {
          for (const rs of (parsed.resourceSpans ?? []) as ReadonlyArray<{
            resource?: { attributes?: ReadonlyArray<OtlpAttribute> }
            scopeSpans?: ReadonlyArray<{ spans?: ReadonlyArray<{ traceId: string; spanId: string; parentSpanId?: string; name: string; attributes?: ReadonlyArray<OtlpAttribute> }> }>
          }>) {
            const service = String(attributesOf(rs.resource?.attributes)["service.name"] ?? "")
            for (const ss of rs.scopeSpans ?? []) {
              for (const span of ss.spans ?? []) {
                spans.push({
                  service,
                  traceId: span.traceId,
                  spanId: span.spanId,
                  parentSpanId: span.parentSpanId === undefined || span.parentSpanId === "" ? undefined : span.parentSpanId,
                  name: span.name,
                  attributes: attributesOf(span.attributes)
                })
              }
            }
          }
        } else if (request.url === "/v1/metrics") {
          for (const rm of (parsed.resourceMetrics ?? []) as ReadonlyArray<{ scopeMetrics?: ReadonlyArray<{ metrics?: ReadonlyArray<{ name: string }> }> }>) {
            for (const sm of rm.scopeMetrics ?? []) for (const metric of sm.metrics ?? []) metricNames.add(metric.name)
          }
        }
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      } catch {
        response.writeHead(400).end()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    metricNames,
    contentTypes,
    bodies,
    waitFor: async (done, timeoutMs = 30_000) => {
      const until = Date.now() + timeoutMs
      while (!done(spans)) {
        if (Date.now() > until) throw new Error(`the receiver did not get the expected spans; it got: ${spans.map((s) => `${s.service}:${s.name}`).join(", ")}`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

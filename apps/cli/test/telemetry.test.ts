/**
 * Telemetry of the CLI (docs/observability.md), on the bundled binary:
 *
 * - Off by default at no cost: a `relavium run` with no OTEL_* variable loads
 *   no OpenTelemetry module — neither in the bundle's static graph (esbuild's
 *   metafile) nor at run time (a module loader hook lists every file the
 *   process loads, and none is the SDK's chunk).
 * - On (OTEL_EXPORTER_OTLP_ENDPOINT to a receiver on 127.0.0.1): the same run
 *   loads the SDK and exports one trace over OTLP/HTTP JSON — `run` at its
 *   root, the agent's node under it, the model and tool calls under the node,
 *   as `relavium-cli` — and metrics, with no tool argument or output in any
 *   request.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { startMonolith } from "../../../packages/server/test/support/monolith.js"
import { type Receiver, startReceiver } from "../../../test/support/otlp.js"
import { relaviumAsync, root } from "./relavium.js"

const cli = join(root, "apps/cli")
const fixtures = join(cli, "test/fixtures")

interface Metafile {
  readonly outputs: Record<
    string,
    {
      readonly entryPoint?: string
      readonly imports: ReadonlyArray<{ readonly path: string; readonly kind: string; readonly external?: boolean }>
      readonly inputs: Record<string, { readonly bytesInOutput: number }>
    }
  >
}

const meta = JSON.parse(readFileSync(join(cli, "dist/meta.json"), "utf8")) as Metafile
const isOtel = (file: string) => /node_modules\/(@opentelemetry\/|@effect\/opentelemetry\/)/.test(file)
const inputsOf = (output: string) => Object.entries(meta.outputs[output]!.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([file]) => file)

/** The outputs loading `entries` loads before any dynamic import. */
const staticClosure = (entries: ReadonlyArray<string>): ReadonlyArray<string> => {
  const seen = new Set<string>()
  const stack = entries.map((entry) => Object.entries(meta.outputs).find(([, o]) => o.entryPoint?.endsWith(entry))![0])
  while (stack.length > 0) {
    const output = stack.pop()!
    if (seen.has(output)) continue
    seen.add(output)
    for (const imported of meta.outputs[output]!.imports) {
      if (imported.kind === "import-statement" && imported.external !== true) stack.push(imported.path)
    }
  }
  return [...seen]
}

/** The bundle's files that hold OpenTelemetry code (the SDK's chunks). */
const otelOutputs = Object.keys(meta.outputs).filter((output) => output.endsWith(".mjs") && inputsOf(output).some(isOtel))

/** A loader hook writing every URL the process loads to `LOAD_LOG`. */
const hookDir = mkdtempSync(join(tmpdir(), "relavium-hooks-"))
writeFileSync(
  join(hookDir, "hooks.mjs"),
  `import { appendFileSync } from "node:fs"\nexport async function load(url, context, next) {\n  if (process.env.LOAD_LOG) appendFileSync(process.env.LOAD_LOG, url + "\\n")\n  return next(url, context)\n}\n`
)
writeFileSync(join(hookDir, "register.mjs"), `import { register } from "node:module"\nregister(${JSON.stringify(pathToFileURL(join(hookDir, "hooks.mjs")).href)})\n`)

const runWriter = async (env: Record<string, string>) => {
  const workspace = mkdtempSync(join(tmpdir(), "relavium-ws-"))
  const log = join(hookDir, `loaded-${Math.random().toString(36).slice(2)}.txt`)
  writeFileSync(log, "")
  const result = await relaviumAsync(
    ["run", join(fixtures, "remote-writer.relavium.yaml"), "--cassette", join(fixtures, "remote-writer.cassette.json"), "--workspace", workspace, "--json"],
    {
      env: {
        NODE_OPTIONS: `--import=${pathToFileURL(join(hookDir, "register.mjs")).href}`,
        LOAD_LOG: log,
        OTEL_EXPORTER_OTLP_ENDPOINT: "",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "",
        OTEL_TRACES_EXPORTER: "",
        OTEL_SDK_DISABLED: "",
        ...env
      }
    }
  )
  const loaded = readFileSync(log, "utf8").split("\n").filter((line) => line !== "")
  return { result, loaded, written: readFileSync(join(workspace, "hello.txt"), "utf8") }
}

describe("telemetry off (the default)", () => {
  it("the bundle keeps the OpenTelemetry SDK out of what `relavium run` loads", () => {
    assert.isAbove(otelOutputs.length, 0, "the SDK is bundled, in chunks of its own")
    assert.isTrue(
      otelOutputs.some((output) => inputsOf(output).some((file) => file.endsWith("apps/cli/src/runtime/TelemetrySdk.ts"))),
      "TelemetrySdk.ts is with the SDK"
    )
    const forRun = staticClosure(["apps/cli/src/main.ts", "apps/cli/src/handlers/Run.ts"])
    assert.deepStrictEqual(forRun.flatMap(inputsOf).filter(isOtel), [], "relavium run loads OpenTelemetry statically")
    assert.isTrue(forRun.flatMap(inputsOf).some((file) => file.endsWith("apps/cli/src/runtime/Telemetry.ts")), "the switch itself is loaded")
  })

  it("a `relavium run` loads no OpenTelemetry module", async () => {
    const { loaded, result, written } = await runWriter({})
    assert.strictEqual(result.status, 0, result.stderr)
    assert.strictEqual(written, "written by the agent")
    assert.isTrue(loaded.some((url) => url.endsWith("/dist/relavium.mjs")), "the hook sees the bundle load")
    const otel = loaded.filter((url) => otelOutputs.some((output) => url.endsWith(`/${output}`)) || /opentelemetry/.test(url))
    assert.deepStrictEqual(otel, [])
  }, 60_000)
})

describe("telemetry on (OTEL_EXPORTER_OTLP_ENDPOINT)", () => {
  let receiver: Receiver
  beforeAll(async () => {
    receiver = await startReceiver()
  })
  afterAll(() => receiver.close())

  it("a `relavium run` exports one trace: run → node → model.call / tool.call", async () => {
    const { loaded, result } = await runWriter({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test,team=a%20b"
    })
    assert.strictEqual(result.status, 0, result.stderr)
    assert.isTrue(loaded.some((url) => otelOutputs.some((output) => url.endsWith(`/${output}`))), "the SDK was loaded")
    // Spans and metrics are flushed as the process ends.
    await receiver.waitFor((spans) => spans.some((s) => s.name === "run"), 10_000)
    const spans = receiver.spans
    const run = spans.find((s) => s.name === "run")!
    assert.strictEqual(run.service, "relavium-cli")
    assert.isUndefined(run.parentSpanId)
    const trace = spans.filter((s) => s.traceId === run.traceId)
    const nodes = trace.filter((s) => s.name === "node")
    assert.deepStrictEqual(nodes.map((n) => n.attributes["relavium.node_id"]).sort(), ["result", "write"])
    for (const node of nodes) assert.strictEqual(node.parentSpanId, run.spanId)
    const write = nodes.find((n) => n.attributes["relavium.node_id"] === "write")!
    const calls = trace.filter((s) => s.name === "model.call")
    assert.lengthOf(calls, 2)
    for (const call of calls) {
      assert.strictEqual(call.parentSpanId, write.spanId)
      assert.strictEqual(call.attributes["gen_ai.request.model"], "claude-sonnet-4")
    }
    assert.deepStrictEqual(calls.map((c) => c.attributes["gen_ai.usage.input_tokens"]).sort(), [40, 60])
    const tools = trace.filter((s) => s.name === "tool.call")
    assert.lengthOf(tools, 1)
    assert.strictEqual(tools[0]!.parentSpanId, write.spanId)
    assert.strictEqual(tools[0]!.attributes["gen_ai.tool.name"], "write_file")
    assert.strictEqual(tools[0]!.attributes["relavium.tool_status"], "ok")
    // The resource attributes of OTEL_RESOURCE_ATTRIBUTES (percent-decoded) are on every span's resource.
    assert.isTrue(receiver.bodies.some((b) => b.includes('"team"') && b.includes("a b")))
    assert.isTrue(receiver.metricNames.has("relavium.runs.started"), [...receiver.metricNames].join(", "))
    assert.isTrue(receiver.metricNames.has("relavium.llm.tokens"))
    // Never a tool argument or output.
    for (const body of receiver.bodies) assert.notInclude(body, "written by the agent")
  }, 60_000)

  it("the monolith traces a run it serves as relavium-monolith: run → node → model.call / tool.call", async () => {
    const saved = { endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT, delay: process.env.OTEL_BSP_SCHEDULE_DELAY }
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint
    process.env.OTEL_BSP_SCHEDULE_DELAY = "100"
    const monolith = await startMonolith(mkdtempSync(join(tmpdir(), "relavium-otel-monolith-")), [
      "--workspace",
      mkdtempSync(join(tmpdir(), "relavium-ws-")),
      "--cassette",
      join(fixtures, "remote-writer.cassette.json")
    ]).finally(() => {
      if (saved.endpoint === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT
      else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved.endpoint
      if (saved.delay === undefined) delete process.env.OTEL_BSP_SCHEDULE_DELAY
      else process.env.OTEL_BSP_SCHEDULE_DELAY = saved.delay
    })
    try {
      const uploaded = await monolith.api("POST", "/workflows", { yaml: readFileSync(join(fixtures, "remote-writer.relavium.yaml"), "utf8"), file: "w.relavium.yaml" })
      assert.strictEqual(uploaded.status, 201, uploaded.text)
      const started = await monolith.api("POST", "/runs", { workflowId: uploaded.json.workflowId })
      assert.strictEqual(started.status, 201, started.text)
      const runId = started.json.runId as string
      const rootOf = () => receiver.spans.find((s) => s.name === "run" && s.attributes["relavium.run_id"] === runId)
      await receiver.waitFor(
        (spans) => rootOf() !== undefined && spans.filter((s) => s.traceId === rootOf()!.traceId && s.name === "node").length === 2,
        30_000
      )
      const run = rootOf()!
      assert.strictEqual(run.service, "relavium-monolith")
      const trace = receiver.spans.filter((s) => s.traceId === run.traceId)
      const write = trace.find((s) => s.name === "node" && s.attributes["relavium.node_id"] === "write")!
      assert.strictEqual(write.parentSpanId, run.spanId)
      assert.deepStrictEqual(trace.filter((s) => s.name === "model.call").map((s) => s.parentSpanId), [write.spanId, write.spanId])
      assert.deepStrictEqual(trace.filter((s) => s.name === "tool.call").map((s) => s.parentSpanId), [write.spanId])
    } finally {
      await monolith.stop()
    }
  }, 90_000)

  it("OTEL_SDK_DISABLED=true keeps it off", async () => {
    const before = receiver.bodies.length
    const { loaded, result } = await runWriter({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_SDK_DISABLED: "true" })
    assert.strictEqual(result.status, 0, result.stderr)
    assert.deepStrictEqual(loaded.filter((url) => otelOutputs.some((output) => url.endsWith(`/${output}`))), [])
    assert.strictEqual(receiver.bodies.length, before)
  }, 60_000)
})

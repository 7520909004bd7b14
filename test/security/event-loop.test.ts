/**
 * Issue 14, findings 1, 2 and 6 ([z-a]): nothing a model or a workflow sends runs unbounded on the
 * monolith's event loop. Against a real `relavium monolith` child process (the built CLI), a client
 * polls /health while a run executes, and its p99 must stay within 100 ms:
 * - a cassette agent's catastrophic grep (`^(a+)+$` over 40 a's and a `!`) and pathological glob
 *   (`*a*a*a*a*a*a*a*a*a*a*a*b` over a 200-a file name) are stopped at their limit
 *   (RELAVIUM_SEARCH_TIMEOUT_MS=2000) as tool errors, an invalid character class (`[z-a]`) is a tool
 *   error the model can correct, and the run completes;
 * - a 300-node chain of transform expressions runs to completion;
 * - a run of expensive expressions is stopped by its `timeout_ms`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { EventSource } from "eventsource"
import { Agent, fetch } from "undici"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { collect, exited, type SseEvent } from "../../packages/server/test/support/monolith.js"

const root = fileURLToPath(new URL("../../", import.meta.url))
const bin = join(root, "apps/cli/bin/relavium.mjs")

interface Server {
  readonly url: string
  readonly api: (method: string, path: string, body?: unknown) => Promise<{ status: number; json: any; text: string }>
  readonly events: (runId: string) => EventSource
  readonly health: () => Promise<number>
  readonly child: ChildProcess
  readonly stop: () => Promise<void>
}

const startMonolith = async (args: ReadonlyArray<string>, env: Record<string, string>): Promise<Server> => {
  const dataDir = mkdtempSync(join(tmpdir(), "relavium-cpu-data-"))
  const child = spawn(process.execPath, [bin, "monolith", "--data-dir", dataDir, "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", ...env }
  })
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => (output += chunk))
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", () => {
      const match = /listening on (https:\/\/\S+)/.exec(output)
      if (match) resolve(match[1]!)
    })
    child.once("exit", (code) => reject(new Error(`monolith exited with ${code}:\n${output}`)))
    setTimeout(() => reject(new Error(`monolith did not start:\n${output}`)), 60_000).unref()
  })
  const token = readFileSync(join(dataDir, "monolith.token"), "utf8").trim()
  const dispatcher = new Agent({ connect: { ca: readFileSync(join(dataDir, "monolith-cert.pem"), "utf8") } })
  const api: Server["api"] = async (method, path, body) => {
    const response = await fetch(`${url}${path}`, {
      method,
      dispatcher,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await response.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, json, text }
  }
  const events: Server["events"] = (runId) =>
    new EventSource(`${url}/runs/${runId}/events`, {
      fetch: (input, init) =>
        fetch(input, { ...init, dispatcher, headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${token}` } }) as unknown as Promise<Response>
    })
  const health = async () => {
    const started = performance.now()
    const response = await fetch(`${url}/health`, { dispatcher })
    await response.text()
    expect(response.status).toBe(200)
    return performance.now() - started
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
    await exited(child)
    await dispatcher.close()
  }
  return { url, api, events, health, child, stop }
}

/** Polls /health every 10 ms until `done` settles; resolves with the run's events and the latencies. */
const pollWhile = async (server: Server, done: Promise<Array<SseEvent>>) => {
  const latencies: Array<number> = []
  let finished = false
  const events = done.finally(() => (finished = true))
  while (!finished) {
    latencies.push(await server.health())
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const sorted = [...latencies].sort((a, b) => a - b)
  const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!
  return { events: await events, p99, samples: latencies.length }
}

const runWorkflow = async (server: Server, yaml: string) => {
  const uploaded = await server.api("POST", "/workflows", { yaml, file: "cpu.relavium.yaml" })
  expect(uploaded.status, uploaded.text).toBe(201)
  const started = await server.api("POST", "/runs", { workflowId: uploaded.json.workflowId })
  expect(started.status, started.text).toBe(201)
  const runId = started.json.runId as string
  // Warm-up request so connection set-up is not counted in the latencies.
  await server.health()
  return pollWhile(server, collect(server.events(runId), () => false))
}

const toolCall = (id: string, name: string, args: Record<string, unknown>) => [
  { type: "tool_call_start", id, name },
  { type: "tool_call_delta", id, argsJsonDelta: JSON.stringify(args) },
  { type: "tool_call_end", id },
  { type: "stop", stopReason: "tool_use", usage: { inputTokens: 10, outputTokens: 10 } }
]

const searchAgentYaml = `schema_version: '1.0'
workflow:
  id: cpu-search-abuse
  agents:
    - id: searcher
      provider: anthropic
      model: claude-sonnet-4
      max_tokens: 256
      system_prompt: You search files.
      tools: [grep, glob, list_directory]
  nodes:
    - { id: search, type: agent, agent_ref: searcher, prompt_template: Search. }
    - { id: result, type: output }
  edges:
    - { from: search, to: result }
`

const chainYaml = (id: string, length: number, expression: string, timeoutMs?: number) => {
  const nodes = [`    - { id: start, type: input }`]
  const edges: Array<string> = []
  let previous = "start"
  for (let i = 1; i <= length; i++) {
    nodes.push(`    - { id: step-${i}, type: transform, transform: '${expression}' }`)
    edges.push(`    - { from: ${previous}, to: step-${i} }`)
    previous = `step-${i}`
  }
  nodes.push("    - { id: result, type: output }")
  edges.push(`    - { from: ${previous}, to: result }`)
  const timeout = timeoutMs === undefined ? "" : `  timeout_ms: ${timeoutMs}\n`
  return `schema_version: '1.0'\nworkflow:\n  id: ${id}\n${timeout}  nodes:\n${nodes.join("\n")}\n  edges:\n${edges.join("\n")}\n`
}

describe("the monolith's event loop stays free while a run executes", () => {
  let server: Server
  let workspace: string

  beforeAll(async () => {
    workspace = mkdtempSync(join(tmpdir(), "relavium-cpu-ws-"))
    mkdirSync(join(workspace, "docs"))
    writeFileSync(join(workspace, "docs/redos.txt"), `${"a".repeat(40)}!\n`)
    writeFileSync(join(workspace, "a".repeat(200)), "x\n")
    const cassette = join(mkdtempSync(join(tmpdir(), "relavium-cpu-cassette-")), "search.cassette.json")
    writeFileSync(
      cassette,
      JSON.stringify({
        schema_version: "1.0",
        provider: "anthropic",
        model: "claude-sonnet-4",
        calls: [
          toolCall("call_1", "grep", { pattern: "^(a+)+$", path: "docs" }),
          toolCall("call_2", "glob", { pattern: "*a*a*a*a*a*a*a*a*a*a*a*b" }),
          toolCall("call_3", "list_directory", { glob: "[z-a]" }),
          toolCall("call_4", "glob", { pattern: "**/*.txt" }),
          [
            { type: "text_delta", text: "Searched." },
            { type: "stop", stopReason: "stop", usage: { inputTokens: 10, outputTokens: 2 } }
          ]
        ]
      })
    )
    server = await startMonolith(["--workspace", workspace, "--cassette", cassette], { RELAVIUM_SEARCH_TIMEOUT_MS: "2000" })
  }, 90_000)

  afterAll(async () => {
    await server?.stop()
  })

  it("stops a catastrophic grep and a pathological glob at their limit, reports [z-a] as a tool error, and completes the run", async () => {
    const { events, p99, samples } = await runWorkflow(server, searchAgentYaml)
    expect(events.at(-1)?.type).toBe("run:completed")
    const calls = events.filter((e) => e.type === "agent:tool_call")
    const results = events.filter((e) => e.type === "agent:tool_result")
    expect(results.map((e) => e.data.success)).toEqual([false, false, false, true])
    const [grep, glob, badClass, honest] = results.map((e) => e.data as unknown as { outputSummary: string; errorCode?: string })
    expect(grep!.outputSummary).toContain("grep was stopped after 2000 ms")
    expect(glob!.outputSummary).toContain("glob was stopped after 2000 ms")
    expect(badClass!.outputSummary).toContain(`"[z-a]" is not a valid glob`)
    expect(badClass!.outputSummary).not.toMatch(/\n\s+at /)
    expect(badClass!.errorCode).toBe("tool_failed")
    expect(honest!.outputSummary).toContain("docs/redos.txt")
    // Each stopped search took its limit, not much more.
    for (const i of [0, 1]) {
      const took = Date.parse(String(results[i]!.data.timestamp)) - Date.parse(String(calls[i]!.data.timestamp))
      expect(took).toBeGreaterThanOrEqual(1900)
      expect(took).toBeLessThan(6000)
    }
    expect(samples).toBeGreaterThan(20)
    expect(p99, `/health p99 over ${samples} requests`).toBeLessThanOrEqual(100)
  }, 60_000)

  it("answers /health within 100 ms p99 during a 300-node chain of transform expressions", async () => {
    const expression = "(() => { let x = 0; for (let i = 0; i < 100000; i++) x += i % 7; return x })()"
    const { events, p99, samples } = await runWorkflow(server, chainYaml("cpu-chain-300", 300, expression))
    expect(events.at(-1)?.type).toBe("run:completed")
    expect(events.filter((e) => e.type === "node:completed").length).toBeGreaterThanOrEqual(300)
    expect(samples).toBeGreaterThan(20)
    expect(p99, `/health p99 over ${samples} requests`).toBeLessThanOrEqual(100)
  }, 120_000)

  it("fires the run's timeout_ms during a run of expensive expressions", async () => {
    const expression = "(() => { let x = 0; for (let i = 0; i < 1000000; i++) x += i % 7; return x })()"
    const { events, p99, samples } = await runWorkflow(server, chainYaml("cpu-timeout", 40, expression, 2000))
    const last = events.at(-1)!
    expect(last.type).toBe("run:failed")
    expect((last.data as unknown as { error: { code: string } }).error.code).toBe("run_timeout")
    const timeout = events.find((e) => e.type === "run:timeout")!.data as unknown as { elapsedMs: number }
    expect(timeout.elapsedMs).toBeGreaterThanOrEqual(2000)
    expect(timeout.elapsedMs).toBeLessThan(3000)
    expect(p99, `/health p99 over ${samples} requests`).toBeLessThanOrEqual(100)
  }, 60_000)
})

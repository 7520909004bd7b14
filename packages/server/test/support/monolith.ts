/**
 * Driving a `relavium monolith` child process from a test: start it on a data
 * directory, talk HTTPS to it trusting its self-signed certificate, follow run
 * events with the stock `eventsource` client.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { EventSource } from "eventsource"
import { Agent, fetch as undiciFetch } from "undici"
import { monolithBinary } from "./buildMonolith.js"
import { RunEvent } from "@relavium/domain"

export interface Monolith {
  readonly url: string
  readonly token: string
  readonly process: ChildProcess
  readonly output: () => string
  readonly api: (method: string, path: string, body?: unknown, options?: { token?: string | null; raw?: string }) => Promise<ApiResponse>
  readonly events: (runId: string, options?: { lastEventId?: number }) => EventSource
  /** A request to the monolith, trusting its certificate (for streams the helpers above do not read). */
  readonly fetch: (url: string, init: { readonly headers: Record<string, string>; readonly signal?: AbortSignal }) => Promise<Response>
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

export interface ApiResponse {
  readonly status: number
  readonly json: any
  readonly text: string
}

export const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode)
    else child.once("exit", (code) => resolve(code))
  })

export interface MonolithOptions {
  /** Wraps the client's fetch (the API and the SSE streams go through it): to record every response. */
  readonly wrapFetch?: (fetch: typeof undiciFetch) => typeof undiciFetch
}

/** Runs `relavium monolith ARGS` and resolves once it prints its URL (or rejects when it exits first). */
export const startMonolith = async (dataDir: string, args: ReadonlyArray<string> = [], options: MonolithOptions = {}): Promise<Monolith> => {
  const clientFetch = options.wrapFetch?.(undiciFetch) ?? undiciFetch
  const binary = await monolithBinary()
  const child = spawn(process.execPath, [binary, "monolith", "--data-dir", dataDir, "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" }
  })
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => (output += chunk))
  const url = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const match = /listening on (https:\/\/\S+)/.exec(output)
      if (match) resolve(match[1]!)
    }
    child.stdout!.on("data", onData)
    child.once("exit", (code) => reject(new Error(`monolith exited with ${code} before listening:\n${output}`)))
    setTimeout(() => reject(new Error(`monolith did not start in time:\n${output}`)), 20_000).unref()
  })
  const token = readFileSync(`${dataDir}/monolith.token`, "utf8").trim()
  const dispatcher = new Agent({ connect: { ca: readFileSync(`${dataDir}/monolith-cert.pem`, "utf8") } })
  const api: Monolith["api"] = async (method, path, body, options = {}) => {
    const headers: Record<string, string> = {}
    const bearer = options.token === undefined ? token : options.token
    if (bearer !== null) headers.authorization = `Bearer ${bearer}`
    let payload: string | undefined = options.raw
    if (body !== undefined) payload = JSON.stringify(body)
    if (payload !== undefined) headers["content-type"] = "application/json"
    const response = await clientFetch(`${url}${path}`, { method, headers, body: payload, dispatcher })
    const text = await response.text()
    let json: unknown = undefined
    try {
      json = JSON.parse(text)
    } catch {
      // not JSON
    }
    return { status: response.status, json, text }
  }
  const events: Monolith["events"] = (runId, options = {}) =>
    new EventSource(`${url}/runs/${runId}/events`, {
      fetch: (input, init) =>
        clientFetch(input, {
          ...init,
          dispatcher,
          headers: {
            ...(init?.headers as Record<string, string>),
            authorization: `Bearer ${token}`,
            ...(options.lastEventId !== undefined ? { "last-event-id": String(options.lastEventId) } : {})
          }
        }) as unknown as Promise<Response>
    })
  return {
    url,
    token,
    process: child,
    output: () => output,
    api,
    events,
    fetch: (input, init) => clientFetch(input, { ...init, dispatcher }) as unknown as Promise<Response>,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      const code = await exited(child)
      await dispatcher.close()
      return code
    }
  }
}

export interface SseEvent {
  readonly id: number
  readonly type: string
  readonly data: { readonly type: string; readonly sequenceNumber: number; readonly [k: string]: unknown }
}

export const RUN_EVENT_TYPES = RunEvent.runEventTypes

/**
 * Reads events from an EventSource until `stop(events)` says so (or the run ends), then closes it.
 * Resolves with the events received.
 */
export const collect = (source: EventSource, stop: (received: ReadonlyArray<SseEvent>) => boolean) =>
  new Promise<Array<SseEvent>>((resolve, reject) => {
    const received: Array<SseEvent> = []
    const timer = setTimeout(() => {
      source.close()
      reject(new Error(`no end of stream after ${received.length} events`))
    }, 20_000)
    const done = () => {
      clearTimeout(timer)
      source.close()
      resolve(received)
    }
    for (const type of RUN_EVENT_TYPES) {
      source.addEventListener(type, (message) => {
        if (source.readyState === source.CLOSED) return
        const event = { id: Number(message.lastEventId), type: message.type, data: JSON.parse(message.data) }
        received.push(event)
        if (stop(received) || ["run:completed", "run:failed", "run:cancelled"].includes(event.type)) done()
      })
    }
    source.onerror = (error) => {
      // A server-side close after the terminal event is handled above; anything else is a failure.
      if (source.readyState === source.CLOSED) {
        clearTimeout(timer)
        reject(new Error(`event stream failed: ${String((error as { message?: string }).message)}`))
      }
    }
  })

/** A chain of `length` transform nodes, with an approval gate after every `gateEvery`-th (if given). */
export const chainWorkflow = (id: string, length: number, gateEvery?: number) => {
  const nodes: Array<string> = ["    - { id: start, type: input }"]
  const edges: Array<string> = []
  let previous = "start"
  for (let i = 1; i <= length; i++) {
    nodes.push(`    - { id: step-${i}, type: transform, transform: '({ n: ${i} })' }`)
    edges.push(`    - { from: ${previous}, to: step-${i} }`)
    previous = `step-${i}`
    if (gateEvery !== undefined && i % gateEvery === 0 && i < length) {
      nodes.push(`    - { id: gate-${i}, type: human_gate, gate_type: approval, message_template: 'continue after ${i}?' }`)
      edges.push(`    - { from: ${previous}, to: gate-${i} }`)
      previous = `gate-${i}`
    }
  }
  nodes.push("    - { id: result, type: output }")
  edges.push(`    - { from: ${previous}, to: result }`)
  return `schema_version: '1.0'\nworkflow:\n  id: ${id}\n  nodes:\n${nodes.join("\n")}\n  edges:\n${edges.join("\n")}\n`
}

/**
 * One model call of an agent loop, shared by workflow agent nodes and chats:
 * the provider's stream is read into text and reasoning parts and tool calls,
 * streamed deltas are coalesced (at most every 50 ms or 64 chunks) before the
 * caller stores them, so a long answer costs a few commits instead of one per
 * token, and what a tool returns is bounded before a model sees it. When a
 * `KnownSecrets` is provided, every known key is scrubbed from the model's
 * text, reasoning and tool arguments and from tool output before anyone
 * stores, publishes or sends them (docs/security/files.md).
 */
import { Effect, Stream } from "effect"
import { Llm, RunError } from "@relavium/domain"
import { currentScrubber, type LlmProvider, SCRUBBED, type Scrubber } from "@relavium/ports"

/** Streamed deltas are handed over at most this often, or every `DELTA_CHUNKS` chunks. */
export const DELTA_WINDOW = "50 millis"
export const DELTA_CHUNKS = 64

/** What the model sees of one tool result (docs/workflow-format.md, "Tools"). */
export const MAX_TOOL_OUTPUT_BYTES = 50 * 1024
export const MAX_TOOL_OUTPUT_LINES = 2000

export interface Part {
  readonly kind: "text" | "reasoning"
  text: string
}

export interface StreamedToolCall {
  readonly id: string
  readonly name: string
  argsJson: string
}

/** What a batch of chunks added, in the order it arrived (consecutive deltas of one kind merged). */
export type BatchItem =
  | { readonly type: "delta"; readonly kind: "text" | "reasoning"; readonly text: string }
  | Extract<Llm.StreamChunk, { readonly type: "attempt" }>

export interface Batch {
  readonly items: ReadonlyArray<BatchItem>
  /** Indexes into `parts` of the parts this batch grew. */
  readonly touched: ReadonlyArray<number>
}

export interface ModelCall {
  /** Text and reasoning, one part per run of one kind, in order. */
  readonly parts: ReadonlyArray<Part>
  readonly text: string
  readonly toolCalls: ReadonlyArray<StreamedToolCall>
  readonly usage: Llm.Usage
  readonly stopReason: Llm.StopReason
  /** The provider failed; usage is what it reported before failing. */
  readonly failure?: Llm.LlmError | undefined
}

/**
 * Streams one request; `onBatch` runs for every coalesced batch that added
 * something (it stores and publishes). A provider failure ends the call with
 * `failure` set and what arrived kept; a failure of `onBatch` ends it with that error.
 */
export const stream = <E, R>(
  llm: LlmProvider["Type"],
  request: Llm.LlmRequest,
  onBatch: (batch: Batch, parts: ReadonlyArray<Part>) => Effect.Effect<void, E, R>
): Effect.Effect<ModelCall, E, R> =>
  Effect.gen(function* () {
    const scrubber = yield* currentScrubber
    const parts: Array<Part> = []
    const pending: Array<PendingText> = []
    const calls = new Map<string, StreamedToolCall>()
    let stop: { readonly usage: Llm.Usage; readonly stopReason: Llm.StopReason } | undefined
    let failure: Llm.LlmError | undefined
    /** Releases what of part `index` is safe to show, as a delta; `final` releases the rest. */
    const release = (items: Array<BatchItem>, touched: Set<number>, index: number, final: boolean) => {
      const text = releaseScrubbed(pending[index]!, scrubber, final)
      if (text === "") return
      const kind = parts[index]!.kind
      parts[index]!.text += text
      touched.add(index)
      const last = items.at(-1)
      if (last !== undefined && last.type === "delta" && last.kind === kind) {
        items[items.length - 1] = { ...last, text: last.text + text }
      } else items.push({ type: "delta", kind, text })
    }
    const partFor = (kind: Part["kind"], items: Array<BatchItem>, touched: Set<number>) => {
      const last = parts.length - 1
      if (last >= 0 && parts[last]!.kind === kind) return last
      // A part ends where the other kind begins: what it held back is released first.
      if (last >= 0) release(items, touched, last, true)
      parts.push({ kind, text: "" })
      pending.push({ raw: "", released: 0 })
      return parts.length - 1
    }
    yield* llm.stream(request).pipe(
      // The provider's failure ends the stream; what arrived before it is still handed over.
      Stream.catchAll((error) => Stream.sync(() => void (failure = error)).pipe(Stream.drain)),
      Stream.groupedWithin(DELTA_CHUNKS, DELTA_WINDOW),
      Stream.runForEachWhile((group) => {
        const items: Array<BatchItem> = []
        const touched = new Set<number>()
        for (const chunk of group) {
          if (failure !== undefined) break
          switch (chunk.type) {
            case "text_delta":
            case "reasoning_delta": {
              const kind = chunk.type === "text_delta" ? "text" : "reasoning"
              const index = partFor(kind, items, touched)
              pending[index]!.raw += chunk.text
              release(items, touched, index, false)
              break
            }
            case "attempt":
              items.push(chunk)
              break
            case "tool_call_start":
              calls.set(chunk.id, { id: chunk.id, name: chunk.name, argsJson: "" })
              break
            case "tool_call_delta": {
              const call = calls.get(chunk.id)
              if (call !== undefined) call.argsJson += chunk.argsJsonDelta
              break
            }
            case "stop":
              stop = { usage: chunk.usage, stopReason: chunk.stopReason }
              break
            case "error":
              failure = new Llm.LlmError({ ...chunk.error, model: request.model })
              break
            default:
              break
          }
        }
        const write = items.length === 0 ? Effect.void : onBatch({ items, touched: [...touched] }, parts)
        return Effect.as(write, failure === undefined)
      })
    )
    if (parts.length > 0) {
      // The tail held back in case a secret continued in the next chunk.
      const items: Array<BatchItem> = []
      const touched = new Set<number>()
      release(items, touched, parts.length - 1, true)
      if (items.length > 0) yield* onBatch({ items, touched: [...touched] }, parts)
    }
    return {
      parts,
      text: parts.filter((p) => p.kind === "text").map((p) => p.text).join(""),
      toolCalls: [...calls.values()].map((call) => (scrubber === undefined ? call : { ...call, argsJson: scrubber.scrub(call.argsJson) })),
      usage: stop?.usage ?? { inputTokens: 0, outputTokens: 0 },
      stopReason: stop?.stopReason ?? (failure !== undefined ? "error" : "stop"),
      failure
    }
  })

/** A part's text as it streams in, and how much of it was released (scrubbed) to the caller. */
interface PendingText {
  raw: string
  released: number
}

/**
 * The next piece of `pending` that is safe to release, with known secrets
 * replaced. The last `longest - 1` characters are held back (unless `final`):
 * a secret starting there may continue in the next chunk.
 */
const releaseScrubbed = (pending: PendingText, scrubber: Scrubber | undefined, final: boolean): string => {
  const { raw } = pending
  if (scrubber === undefined || scrubber.longest === 0) {
    const text = raw.slice(pending.released)
    pending.released = raw.length
    return text
  }
  const limit = final ? raw.length : raw.length - (scrubber.longest - 1)
  let position = pending.released
  let out = ""
  while (position < limit) {
    const hit = scrubber.find(raw, position)
    if (hit === undefined || hit.at >= limit) {
      out += raw.slice(position, limit)
      position = limit
      break
    }
    out += raw.slice(position, hit.at) + SCRUBBED
    position = hit.at + hit.length
  }
  pending.released = Math.max(position, pending.released)
  return out
}

/** A tool's output as the model, the events and the store see it: known secrets scrubbed, then bounded. */
export const toolOutput = (output: string): Effect.Effect<string> =>
  Effect.map(currentScrubber, (scrubber) => boundToolOutput(scrubber === undefined ? output : scrubber.scrub(output)))

/** A tool's output as the model sees it: at most 2,000 lines and 50 KiB, with a note when cut. */
export const boundToolOutput = (output: string): string => {
  let text = output
  const lines = text.split("\n")
  let note = ""
  if (lines.length > MAX_TOOL_OUTPUT_LINES) {
    text = lines.slice(0, MAX_TOOL_OUTPUT_LINES).join("\n")
    note = `\n[output truncated: ${lines.length} lines, showing the first ${MAX_TOOL_OUTPUT_LINES}]`
  }
  if (Buffer.byteLength(text, "utf8") > MAX_TOOL_OUTPUT_BYTES) {
    text = Buffer.from(text, "utf8").subarray(0, MAX_TOOL_OUTPUT_BYTES).toString("utf8")
    note = `\n[output truncated to ${MAX_TOOL_OUTPUT_BYTES} bytes]`
  }
  return text + note
}

/** Tool arguments as the model streamed them; undefined when they are not JSON. */
export const parseArgs = (argsJson: string): unknown => {
  if (argsJson.trim() === "") return {}
  try {
    return JSON.parse(argsJson)
  } catch {
    return undefined
  }
}

/** A provider's failure as a node failure (chats report its code and message too). */
export const llmFailure = (error: Llm.LlmError): RunError.NodeFailure => {
  const where = `${error.provider}${error.model ? `/${error.model}` : ""}${error.status ? ` (HTTP ${error.status})` : ""}`
  const message = `${where}: ${error.message}`
  switch (error.kind) {
    case "rate_limit":
      return RunError.nodeFailure("provider_rate_limit", message, true)
    case "overloaded":
    case "timeout":
    case "transport":
      return RunError.nodeFailure("provider_unavailable", message, true)
    case "auth":
      return RunError.nodeFailure("provider_auth", message)
    case "content_filter":
      return RunError.nodeFailure("content_filter", message)
    case "cancelled":
      return RunError.nodeFailure("cancelled", message)
    case "bad_request":
      return RunError.nodeFailure("validation", message)
    case "unknown":
      return RunError.nodeFailure("internal", message)
  }
}

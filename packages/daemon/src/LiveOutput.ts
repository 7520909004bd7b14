/**
 * Live output of a running command, as it is forwarded while the command
 * runs (docs/events.md, `tool:output`):
 *
 * - `Coalescer` joins the pieces a process prints into chunks of at most
 *   `maxBytes` (8 KiB): they are sent when that much is pending, when the
 *   other stream (stdout, stderr) prints, when `flushMs` (50 ms) have passed
 *   since the first pending piece, and when the process ends. A command printing a line at a time costs at
 *   most one chunk per 50 ms per stream.
 * - `LiveBound` caps what is forwarded per call at `MAX_LIVE_BYTES` (the
 *   model's own cap, 50 KiB) and `MAX_LIVE_CHUNKS` chunks (a command that
 *   drips a byte every 50 ms for an hour is not 72,000 events); beyond either
 *   one note says the live output was truncated, and nothing more is
 *   forwarded. The final result (the model's
 *   copy, with the totals) is bounded separately and is unchanged.
 */
import { cutUtf8, MAX_OUTPUT_BYTES } from "./Bounding.js"

export type OutputStream = "stdout" | "stderr"

export interface LiveChunk {
  readonly stream: OutputStream
  readonly text: string
}

export const COALESCE_MS = 50
export const COALESCE_BYTES = 8 * 1024
/** What one call forwards live at most: the same cap as the model's copy. */
export const MAX_LIVE_BYTES = MAX_OUTPUT_BYTES
/** How many chunks one call forwards at most (the note included). */
export const MAX_LIVE_CHUNKS = 1000

export interface CoalescerOptions {
  readonly flushMs?: number | undefined
  readonly maxBytes?: number | undefined
}

/** Joins small pieces of output into chunks; `send` receives each chunk in order. */
export class Coalescer {
  private stream: OutputStream | undefined
  private pieces: Array<string> = []
  private bytes = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly flushMs: number
  private readonly maxBytes: number

  constructor(
    private readonly send: (chunk: LiveChunk) => void,
    options: CoalescerOptions = {}
  ) {
    this.flushMs = options.flushMs ?? COALESCE_MS
    this.maxBytes = options.maxBytes ?? COALESCE_BYTES
  }

  push(stream: OutputStream, text: string): void {
    if (text.length === 0) return
    if (this.stream !== undefined && this.stream !== stream) this.flush()
    this.stream = stream
    this.pieces.push(text)
    this.bytes += Buffer.byteLength(text, "utf8")
    if (this.bytes >= this.maxBytes) this.flush()
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs)
  }

  /** Sends what is pending now (the process ended, or the timer fired). */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const stream = this.stream
    if (stream === undefined || this.pieces.length === 0) return
    let text = this.pieces.join("")
    this.pieces = []
    this.bytes = 0
    this.stream = undefined
    // One read can bring more than a chunk (a pipe holds 64 KiB): it goes out in chunks of at most maxBytes.
    while (Buffer.byteLength(text, "utf8") > this.maxBytes) {
      const head = cutUtf8(text, this.maxBytes)
      if (head.length === 0) break
      this.send({ stream, text: head })
      text = text.slice(head.length)
    }
    if (text.length > 0) this.send({ stream, text })
  }

  /** Drops what is pending and stops the timer (the call was interrupted). */
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.pieces = []
    this.bytes = 0
  }
}

export const truncationNote = (maxBytes: number) =>
  `\n[live output truncated after ${maxBytes} bytes; the command keeps running and its result shows how it ended]\n`

const chunkNote = (maxChunks: number) =>
  `\n[live output truncated after ${maxChunks} chunks; the command keeps running and its result shows how it ended]\n`

/** Caps the bytes and chunks forwarded for one call; past a cap, one truncation note and then nothing. */
export class LiveBound {
  private sent = 0
  private chunks = 0
  private truncated = false

  constructor(
    private readonly maxBytes = MAX_LIVE_BYTES,
    private readonly maxChunks = MAX_LIVE_CHUNKS
  ) {}

  /** The chunks to forward for `chunk`: itself, its head and the note, or nothing. */
  admit(chunk: LiveChunk): ReadonlyArray<LiveChunk> {
    if (this.truncated) return []
    if (this.chunks >= this.maxChunks - 1) {
      this.truncated = true
      return [{ stream: chunk.stream, text: chunkNote(this.maxChunks) }]
    }
    const size = Buffer.byteLength(chunk.text, "utf8")
    if (this.sent + size <= this.maxBytes) {
      this.sent += size
      this.chunks++
      return [{ stream: chunk.stream, text: chunk.text }]
    }
    this.truncated = true
    const head = cutUtf8(chunk.text, this.maxBytes - this.sent)
    this.sent += Buffer.byteLength(head, "utf8")
    const note = { stream: chunk.stream, text: truncationNote(this.maxBytes) }
    return head.length > 0 ? [{ stream: chunk.stream, text: head }, note] : [note]
  }
}

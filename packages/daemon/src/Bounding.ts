/**
 * What the model sees of one tool result (docs/workflow-format.md, "Tools"): at most 50 KB and
 * 2000 lines, marker included, so the agent loop's own bound is a no-op on a
 * result the daemon already bounded.
 */
export const MAX_OUTPUT_BYTES = 50 * 1024
export const MAX_OUTPUT_LINES = 2000
/** Room kept for the truncation marker. */
const MARKER_BYTES = 256

export interface OutputTotals {
  /** Bytes the tool produced, when more than the text given (a capped capture). */
  readonly bytes?: number | undefined
  readonly lines?: number | undefined
}

/** Lines as a person counts them: a final newline does not start another line. */
export const countLines = (text: string) => (text.length === 0 ? 0 : text.split("\n").length - (text.endsWith("\n") ? 1 : 0))

/** Cuts `text` to at most `maxBytes` of UTF-8 without splitting a character. */
export const cutUtf8 = (text: string, maxBytes: number): string => {
  const bytes = Buffer.from(text, "utf8")
  if (bytes.length <= maxBytes) return text
  let end = maxBytes
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.subarray(0, end).toString("utf8")
}

/**
 * Bounds `text` for the model. `totals` describes the full output when the
 * caller kept only its head (so the marker tells the model what it missed);
 * `reserve` leaves room for a note the caller appends after the bounded text.
 */
export const boundOutput = (
  text: string,
  totals: OutputTotals = {},
  reserve: { readonly lines: number; readonly bytes: number } = { lines: 0, bytes: 0 }
): string => {
  const maxLines = MAX_OUTPUT_LINES - reserve.lines
  const maxBytes = MAX_OUTPUT_BYTES - reserve.bytes
  const textBytes = Buffer.byteLength(text, "utf8")
  const totalBytes = totals.bytes ?? textBytes
  const totalLines = totals.lines ?? countLines(text)
  if (totalBytes === textBytes && totalBytes <= maxBytes && text.split("\n").length <= maxLines) return text
  let kept = text
  const lines = kept.split("\n")
  if (lines.length > maxLines - 1) kept = lines.slice(0, maxLines - 1).join("\n")
  kept = cutUtf8(kept, maxBytes - MARKER_BYTES)
  const shownLines = countLines(kept)
  const shownBytes = Buffer.byteLength(kept, "utf8")
  const separator = kept === "" || kept.endsWith("\n") ? "" : "\n"
  return `${kept}${separator}[output truncated: ${totalBytes} bytes in ${totalLines} lines; showing the first ${shownBytes} bytes (${shownLines} lines)]`
}

/**
 * Keeps the head of a growing output (enough for the model's bound) and counts
 * the whole, so a command printing gigabytes costs the daemon kilobytes.
 */
export class HeadCapture {
  private readonly chunks: Array<string> = []
  private keptBytes = 0
  bytes = 0
  private newlines = 0
  private last = ""

  constructor(private readonly keepBytes = MAX_OUTPUT_BYTES * 2) {}

  push(text: string): void {
    if (text.length === 0) return
    this.last = text[text.length - 1]!
    const size = Buffer.byteLength(text, "utf8")
    this.bytes += size
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) this.newlines++
    if (this.keptBytes < this.keepBytes) {
      const piece = cutUtf8(text, this.keepBytes - this.keptBytes)
      this.chunks.push(piece)
      this.keptBytes += Buffer.byteLength(piece, "utf8")
    }
  }

  get lines(): number {
    return this.last === "" ? 0 : this.newlines + (this.last === "\n" ? 0 : 1)
  }

  /** Whether the output so far ends a line (or is empty). */
  get atLineStart(): boolean {
    return this.last === "" || this.last === "\n"
  }

  get text(): string {
    return this.chunks.join("")
  }

  /** The head, bounded for the model, with the totals in the marker. */
  bounded(note?: string): string {
    if (note === undefined) return boundOutput(this.text, { bytes: this.bytes, lines: this.lines })
    // The note (how the command ended) always survives truncation: it goes after the bounded head.
    const head = boundOutput(
      this.text,
      { bytes: this.bytes, lines: this.lines },
      { lines: note.split("\n").length, bytes: Buffer.byteLength(note, "utf8") + 1 }
    )
    const separator = head === "" || head.endsWith("\n") ? "" : "\n"
    return head + separator + note
  }
}

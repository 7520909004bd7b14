/**
 * Forwards a tool's output while it runs (`DaemonRouter.execute`'s
 * `onOutput`) to the caller's events: `tool:output` of a run, of a chat.
 * Shared by agent nodes and chat turns. The daemon has already coalesced and
 * bounded the chunks; here every known secret is scrubbed before a chunk is
 * stored or published. The end of a chunk that could begin a secret is held
 * back (per stream) until the next chunk, or the end of the call, says
 * whether it does. Forwarding is best effort: a chunk that cannot be stored is
 * logged and dropped, and the tool's result (what the model sees) never
 * depends on it.
 */
import { Effect } from "effect"
import { currentScrubber, type ToolOutputChunk } from "@relavium/ports"

export interface OutputForwarder {
  /** Pass as `DaemonRouter.execute`'s `onOutput`. */
  readonly onOutput: (chunk: ToolOutputChunk) => Effect.Effect<void>
  /** Sends what was held back; call when the tool has returned, before its result is recorded. */
  readonly flush: Effect.Effect<void>
}

/** A forwarder that hands each scrubbed chunk to `send`. */
export const makeOutputForwarder = <E, R>(
  send: (chunk: ToolOutputChunk) => Effect.Effect<unknown, E, R>
): Effect.Effect<OutputForwarder, never, R> =>
  Effect.gen(function* () {
    const scrubber = yield* currentScrubber
    const context = yield* Effect.context<R>()
    const held: Record<ToolOutputChunk["stream"], string> = { stdout: "", stderr: "" }
    const deliver = (chunk: ToolOutputChunk) =>
      chunk.text.length === 0
        ? Effect.void
        : send(chunk).pipe(
            Effect.asVoid,
            Effect.catchAllCause((cause) => Effect.logWarning("live tool output was not forwarded", cause)),
            Effect.provide(context)
          )
    const onOutput = (chunk: ToolOutputChunk): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (scrubber === undefined) return deliver(chunk)
        const text = scrubber.scrub(held[chunk.stream] + chunk.text)
        const keep = scrubber.partialAtEnd(text)
        held[chunk.stream] = text.slice(text.length - keep)
        return deliver({ stream: chunk.stream, text: text.slice(0, text.length - keep) })
      })
    const flush = Effect.suspend(() => {
      const rest = (["stdout", "stderr"] as const).map((stream) => ({ stream, text: held[stream] }))
      held.stdout = ""
      held.stderr = ""
      return Effect.forEach(rest, deliver, { discard: true })
    })
    return { onOutput, flush }
  })

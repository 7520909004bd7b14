/**
 * Run (and chat) events as Server-Sent Events: `id:` is the event's sequence
 * number (so a client's `Last-Event-ID` is where to resume), `event:` its type
 * and `data:` the JSON event. Comments keep idle connections alive through
 * proxies; the response ends when the event stream does (a run's after its
 * terminal event; a chat's when the client leaves).
 *
 * Events are written as they become ready, all the ready ones at once: the
 * events a follower gets together (one chunk of its stream: what the hub
 * delivered in one go, or a replay from the store) go out as one write, so one
 * chunked-encoding frame and one TLS record, instead of one per event; an
 * event that arrives alone is written at once, so nothing waits for a batch.
 *
 * The body is written after the handler has returned, outside the request's
 * context: the response keeps the org it was made for (`CurrentOrg`), so the
 * stream reads the caller's org and no other.
 */
import { HttpServerResponse } from "@effect/platform"
import { Chunk, Duration, Effect, Stream } from "effect"
import { RunEvent as RE } from "@relavium/domain"
import { CurrentOrg } from "@relavium/ports"

export interface SseOptions {
  /** How often an idle stream sends a comment (default 15 s). */
  readonly heartbeat?: Duration.DurationInput | undefined
}

/** One event in the SSE wire format. JSON has no raw newlines, so `data` is one line. */
export const formatEvent = (event: RE.RunEvent): string => formatMessage(event.sequenceNumber, event.type, RE.encodeRunEventJson(event))

/** One SSE message; `json` must be one line (JSON.stringify output is). */
export const formatMessage = (id: number, type: string, json: string): string => `id: ${id}\nevent: ${type}\ndata: ${json}\n\n`

export const eventStreamResponse = <E>(events: Stream.Stream<RE.RunEvent, E>, options: SseOptions = {}) =>
  sseResponse(events, formatEvent, options)

/** At most this many events go in one write (a long replay is several writes, not one huge string). */
const EVENTS_PER_WRITE = 256

/** The SSE text of events that are ready together: one string per write. */
const writes = <A>(ready: Chunk.Chunk<A>, format: (event: A) => string): Chunk.Chunk<string> => {
  const events = Chunk.toReadonlyArray(ready)
  const out: Array<string> = []
  for (let i = 0; i < events.length; i += EVENTS_PER_WRITE) {
    let text = ""
    const end = Math.min(i + EVENTS_PER_WRITE, events.length)
    for (let j = i; j < end; j++) text += format(events[j]!)
    out.push(text)
  }
  return Chunk.unsafeFromArray(out)
}

/**
 * Any numbered events as an SSE response, each written by `format` (see {@link formatMessage}),
 * read for the org of the fiber that makes the response.
 */
export const sseResponse = <A, E>(events: Stream.Stream<A, E>, format: (event: A) => string, options: SseOptions = {}) =>
  Effect.map(CurrentOrg, (org) => sseBody(events.pipe(Stream.provideService(CurrentOrg, org)), format, options))

const sseBody = <A, E>(events: Stream.Stream<A, E>, format: (event: A) => string, options: SseOptions) => {
  const heartbeat = Stream.tick(options.heartbeat ?? Duration.seconds(15)).pipe(
    Stream.drop(1),
    Stream.map(() => ": keep-alive\n\n")
  )
  const body = Stream.make("retry: 1000\n\n").pipe(
    Stream.concat(
      Stream.merge(
        events.pipe(
          Stream.mapChunks((ready) => writes(ready, format)),
          // The store failed mid-stream: say so and end; the client reconnects with Last-Event-ID.
          Stream.catchAll(() => Stream.make(": the event store failed; reconnect to resume\n\n"))
        ),
        heartbeat,
        { haltStrategy: "left" }
      )
    ),
    Stream.encodeText
  )
  return HttpServerResponse.stream(body, {
    contentType: "text/event-stream",
    headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
  })
}

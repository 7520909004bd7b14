/**
 * Run (and chat) events as Server-Sent Events: `id:` is the event's sequence
 * number (so a client's `Last-Event-ID` is where to resume), `event:` its type
 * and `data:` the JSON event. Comments keep idle connections alive through
 * proxies; the response ends when the event stream does (a run's after its
 * terminal event; a chat's when the client leaves).
 */
import { HttpServerResponse } from "@effect/platform"
import { Duration, Stream } from "effect"
import { RunEvent as RE } from "@relavium/domain"

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

/** Any numbered events as an SSE response, each written by `format` (see {@link formatMessage}). */
export const sseResponse = <A, E>(events: Stream.Stream<A, E>, format: (event: A) => string, options: SseOptions = {}) => {
  const heartbeat = Stream.tick(options.heartbeat ?? Duration.seconds(15)).pipe(
    Stream.drop(1),
    Stream.map(() => ": keep-alive\n\n")
  )
  const body = Stream.make("retry: 1000\n\n").pipe(
    Stream.concat(
      Stream.merge(
        events.pipe(
          Stream.map(format),
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

/**
 * Run events as Server-Sent Events: `id:` is the event's sequence number (so a
 * client's `Last-Event-ID` is where to resume), `event:` its type and `data:`
 * the JSON event. Comments keep idle connections alive through proxies; the
 * response ends after the run's terminal event.
 */
import { HttpServerResponse } from "@effect/platform"
import { Duration, Stream } from "effect"
import { RunEvent as RE } from "@relavium/domain"

export interface SseOptions {
  /** How often an idle stream sends a comment (default 15 s). */
  readonly heartbeat?: Duration.DurationInput | undefined
}

/** One event in the SSE wire format. JSON has no raw newlines, so `data` is one line. */
export const formatEvent = (event: RE.RunEvent): string =>
  `id: ${event.sequenceNumber}\nevent: ${event.type}\ndata: ${RE.encodeRunEventJson(event)}\n\n`

export const eventStreamResponse = <E>(events: Stream.Stream<RE.RunEvent, E>, options: SseOptions = {}) => {
  const heartbeat = Stream.tick(options.heartbeat ?? Duration.seconds(15)).pipe(
    Stream.drop(1),
    Stream.map(() => ": keep-alive\n\n")
  )
  const body = Stream.make("retry: 1000\n\n").pipe(
    Stream.concat(
      Stream.merge(
        events.pipe(
          Stream.map(formatEvent),
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

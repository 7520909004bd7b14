/**
 * Talking to a running `relavium monolith` instead of opening the database:
 * a typed client derived from `RelaviumApi` (requests and responses are
 * Schema-checked) over undici, with the bearer token kept `Redacted`, and run
 * events followed over Server-Sent Events (resuming with `Last-Event-ID` when
 * the connection drops).
 *
 * Trust: `--ca FILE`, else for a loopback URL the data directory's
 * `monolith-cert.pem` (the monolith's self-signed certificate) when present,
 * else the system's CAs. Token: `--token`, else `RELAVIUM_TOKEN`, else
 * `<dataDir>/monolith.token`.
 */
import { HttpApiClient, HttpClient, HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import Undici from "@effect/platform-node/Undici"
import { Duration, Effect, Either, Layer, Option, Redacted, Schema, Stream } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { isIP } from "node:net"
import { join } from "node:path"
import { RunEvent as RE } from "@relavium/domain"
import { RelaviumApi } from "@relavium/server"
import { ExitCode } from "./ExitCodes.js"
import { exitCodeFor } from "./Follow.js"
import * as Settings from "./runtime/Settings.js"
import { UsageProblem } from "./Problem.js"
import { colors, makeRenderer, plain } from "./Render.js"

export interface RemoteOptions {
  readonly server: string
  readonly token: Option.Option<Redacted.Redacted<string>>
  readonly ca: Option.Option<string>
  readonly dataDir: Option.Option<string>
}

const startHint = "start one with `relavium monolith` (it prints its URL)"

// ---------------------------------------------------------------------------
// Connection settings
// ---------------------------------------------------------------------------

const isLoopback = (hostname: string): boolean => {
  const host = hostname.replace(/^\[|\]$/g, "")
  if (host === "localhost" || host.endsWith(".localhost")) return true
  if (isIP(host) === 4) return host.startsWith("127.")
  return host === "::1"
}

interface Connection {
  readonly baseUrl: string
  readonly token: Redacted.Redacted<string>
  readonly ca: string | undefined
}

const connection = (options: RemoteOptions): Effect.Effect<Connection, UsageProblem> =>
  Effect.gen(function* () {
    const url = yield* Effect.try({
      try: () => new URL(options.server),
      catch: () => new UsageProblem(`--server ${options.server}: not a URL (expected e.g. https://127.0.0.1:7430)`)
    })
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      return yield* Effect.fail(new UsageProblem(`--server ${options.server}: expected an https:// (or http://) URL`))
    }
    const baseUrl = url.toString().replace(/\/+$/, "")
    const dataDir = yield* Settings.dataDir(options.dataDir)
    const readFile = (file: string, what: string) =>
      Effect.try({
        try: () => readFileSync(file, "utf8"),
        catch: (e) => new UsageProblem(`cannot read ${what} ${file}: ${(e as Error).message}`)
      })
    // Trust
    let ca: string | undefined
    if (Option.isSome(options.ca)) ca = yield* readFile(options.ca.value, "the certificate")
    else if (url.protocol === "https:" && isLoopback(url.hostname) && existsSync(join(dataDir, "monolith-cert.pem"))) {
      ca = yield* readFile(join(dataDir, "monolith-cert.pem"), "the monolith's certificate")
    }
    // Token
    let token: Redacted.Redacted<string> | undefined = Option.getOrUndefined(options.token)
    const fromEnv = yield* Settings.clientToken
    if (token === undefined && Option.isSome(fromEnv)) token = Redacted.make(Redacted.value(fromEnv.value).trim())
    if (token === undefined) {
      const file = join(dataDir, "monolith.token")
      if (!existsSync(file)) {
        return yield* Effect.fail(
          new UsageProblem(
            `no token for ${baseUrl}: pass --token, set RELAVIUM_TOKEN, or point --data-dir at the monolith's data directory (no ${file})`,
            "unauthorized"
          )
        )
      }
      token = Redacted.make((yield* readFile(file, "the token file")).trim())
    }
    return { baseUrl, token, ca }
  })

/** undici with the chosen trust anchor (else the system's CAs). */
const httpLayer = (ca: string | undefined) =>
  NodeHttpClient.layerUndiciWithoutDispatcher.pipe(
    Layer.provide(
      Layer.scoped(
        NodeHttpClient.Dispatcher,
        Effect.acquireRelease(
          Effect.sync(() => new Undici.Agent(ca === undefined ? {} : { connect: { ca } })),
          (agent) => Effect.promise(() => agent.destroy())
        )
      )
    )
  )

// ---------------------------------------------------------------------------
// Errors → one clear line
// ---------------------------------------------------------------------------

const causeMessage = (cause: unknown): string => {
  const error = cause as { readonly message?: string; readonly code?: string; readonly cause?: unknown } | undefined
  const inner = error?.cause as { readonly message?: string; readonly code?: string } | undefined
  const code = inner?.code ?? error?.code
  const message = inner?.message ?? error?.message ?? String(cause)
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message
}

const isTlsProblem = (text: string) => /CERT|certificate|SELF_SIGNED|UNABLE_TO_VERIFY|TLS|SSL/i.test(text)

/** Turns anything a request can fail with into a UsageProblem (exit 2). */
export const describeError = (baseUrl: string) => (error: unknown): UsageProblem => {
  if (error instanceof UsageProblem) return error
  const tagged = error as {
    readonly _tag?: string
    readonly message?: string
    readonly reason?: string
    readonly cause?: unknown
    readonly issues?: ReadonlyArray<{ path: string; line?: number; column?: number; message: string }>
    readonly response?: HttpClientResponse.HttpClientResponse
  }
  switch (tagged._tag) {
    case "Unauthorized":
      return new UsageProblem(
        `${baseUrl}: the monolith refused the bearer token (401); pass the contents of its monolith.token with --token or RELAVIUM_TOKEN`,
        "unauthorized"
      )
    case "BadRequest": {
      const located = (tagged.issues ?? [])
        .filter((i) => !(tagged.message ?? "").includes(i.message))
        .map((i) => `${i.path}${i.line !== undefined ? ` (line ${i.line}, column ${i.column})` : ""}: ${i.message}`)
      return new UsageProblem([tagged.message ?? "bad request", ...located].join("\n"), "validation")
    }
    case "Forbidden":
      return new UsageProblem(`${baseUrl}: refused (403): ${tagged.message ?? "the token's role may not do this"}`, "forbidden")
    case "NotFound":
      return new UsageProblem(tagged.message ?? "not found", "not_found")
    case "Conflict":
      return new UsageProblem(tagged.message ?? "conflict", "conflict")
    case "InternalError":
    case "NotReady":
      return new UsageProblem(`${baseUrl}: the monolith failed: ${tagged.message ?? "internal error"}`, "server")
    case "RequestError": {
      const why = causeMessage(tagged.cause)
      if (isTlsProblem(why)) {
        return new UsageProblem(
          `${baseUrl}: the server's TLS certificate is not trusted (${why}); pass --ca with the monolith's monolith-cert.pem, or --data-dir with its data directory`,
          "unreachable"
        )
      }
      return new UsageProblem(`cannot reach a relavium monolith at ${baseUrl} (${why}); ${startHint}`, "unreachable")
    }
    case "ResponseError": {
      const status = tagged.response?.status
      if (status === 401) return describeError(baseUrl)({ _tag: "Unauthorized" })
      return new UsageProblem(
        `${baseUrl}: unexpected answer${status !== undefined ? ` (HTTP ${status})` : ""}: ${tagged.message ?? "?"} — is this a relavium monolith?`,
        "server"
      )
    }
    case "ParseError":
      return new UsageProblem(`${baseUrl}: the answer did not match the Relavium API: ${tagged.message ?? ""}`, "server")
    default:
      return new UsageProblem(`${baseUrl}: ${tagged.message ?? String(error)}`, "server")
  }
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

export interface FollowRemoteOptions {
  readonly json: boolean
  readonly workflowName: string
  /** Print only events after this sequence number. */
  readonly after?: number | undefined
  /** Keep following through pauses (someone else decides the gate). */
  readonly throughPauses?: boolean | undefined
  /** Cancel the run when this process is interrupted (Ctrl-C), as a local run is. */
  readonly cancelOnInterrupt?: boolean | undefined
  /** Stop after the event with this sequence number (print a stored log without following it). */
  readonly until?: number | undefined
}

/** A typed client and an SSE follower bound to one monolith. */
const makeRemote = (conn: Connection) =>
  Effect.gen(function* () {
    const base = yield* HttpClient.HttpClient
    const authed = base.pipe(HttpClient.mapRequest(HttpClientRequest.bearerToken(conn.token)))
    const api = yield* HttpApiClient.make(RelaviumApi, { baseUrl: conn.baseUrl }).pipe(
      Effect.provideService(HttpClient.HttpClient, authed)
    )
    const describe = describeError(conn.baseUrl)
    /** Runs one API call; any failure becomes a UsageProblem. */
    const call = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.mapError(effect, describe)

    /** The run's events after `after`, over one SSE connection (ends when the server ends it). */
    const connect = (runId: string, after: number) =>
      authed
        .execute(
          HttpClientRequest.get(`${conn.baseUrl}/runs/${encodeURIComponent(runId)}/events`).pipe(
            HttpClientRequest.setHeaders({ accept: "text/event-stream", "last-event-id": String(after) })
          )
        )
        .pipe(
          Effect.flatMap((response) => {
            if (response.status === 204) return Effect.succeed(Stream.empty)
            if (response.status === 200) return Effect.succeed(parseSse(response.stream))
            return response.json.pipe(
              Effect.orElseSucceed(() => ({})),
              Effect.flatMap((body) =>
                Effect.fail(
                  response.status === 401
                    ? describe({ _tag: "Unauthorized" })
                    : describe({ _tag: response.status === 404 ? "NotFound" : "InternalError", ...(body as object) })
                )
              )
            )
          })
        )

    /**
     * Follows the run to its end (or its next pause), printing each event, and returns the exit code.
     * A dropped connection is resumed with Last-Event-ID after the last event seen.
     */
    const follow = (runId: string, options: FollowRemoteOptions) =>
      followEvents(runId, options).pipe(
        Effect.tap((code) =>
          Effect.sync(() => {
            if (code !== ExitCode.paused || options.json || options.until !== undefined) return
            process.stderr.write(
              `relavium: run ${runId} is paused at a human gate (exit 3); decide it with: relavium gate ${runId} --approve | --reject | --input JSON --server ${conn.baseUrl}\n`
            )
          })
        ),
        options.cancelOnInterrupt
          ? Effect.onInterrupt(() =>
              api.runs.cancel({ path: { runId }, urlParams: { reason: "interrupted" } }).pipe(Effect.ignore)
            )
          : (self) => self
      )

    const followEvents = (runId: string, options: FollowRemoteOptions) =>
      Effect.gen(function* () {
        const render = makeRenderer((yield* Settings.colors) ? colors : plain, options.workflowName)
        let last: RE.RunEvent | undefined
        let lastSeq = options.after ?? -1
        const reachedUntil = () => options.until !== undefined && lastSeq >= options.until
        const done = () =>
          reachedUntil() || (last !== undefined && (RE.isTerminal(last) || (!options.throughPauses && last.type === "run:paused")))
        let failures = 0
        while (!done()) {
          const before = lastSeq
          const attempt = yield* connect(runId, lastSeq).pipe(
            Effect.flatMap((events) =>
              events.pipe(
                Stream.takeUntil(
                  (e) =>
                    RE.isTerminal(e) ||
                    (!options.throughPauses && e.type === "run:paused") ||
                    (options.until !== undefined && e.sequenceNumber >= options.until)
                ),
                Stream.runForEach((event) =>
                  Effect.sync(() => {
                    if (event.sequenceNumber <= lastSeq) return // never print an event twice
                    last = event
                    lastSeq = event.sequenceNumber
                    process.stdout.write(options.json ? `${RE.encodeRunEventJson(event)}\n` : render(event))
                  })
                )
              )
            ),
            Effect.either
          )
          if (done()) break
          if (Either.isLeft(attempt)) {
            const problem = attempt.left instanceof UsageProblem ? attempt.left : describe(attempt.left)
            // A refused token or an unknown run will not get better by retrying.
            if (problem.code !== "unreachable" && problem.code !== "server") return yield* Effect.fail(problem)
          }
          // The stream ended or dropped before the end: ask where the run stands, then reconnect.
          const status = yield* call(api.runs.get({ path: { runId } })).pipe(Effect.either)
          if (Either.isRight(status) && status.right.lastSequenceNumber <= lastSeq && status.right.status !== "running") {
            const s = status.right.status
            if (s === "waiting" && !options.throughPauses) return ExitCode.paused
            if (s === "completed") return ExitCode.ok
            if (s === "failed" || s === "cancelled") return ExitCode.failed
          }
          failures = lastSeq > before ? 0 : failures + 1
          if (failures > 20) {
            return yield* Effect.fail(
              Either.isLeft(attempt) && attempt.left instanceof UsageProblem
                ? attempt.left
                : new UsageProblem(`${conn.baseUrl}: lost the event stream of run ${runId}; ${startHint}`, "unreachable")
            )
          }
          yield* Effect.sleep(Duration.millis(Math.min(2000, 100 * 2 ** Math.min(failures, 5))))
        }
        return exitCodeFor(last)
      })

    return { api, call, follow, baseUrl: conn.baseUrl }
  })

export type Remote = Effect.Effect.Success<ReturnType<typeof makeRemote>>

/** Runs `use` with a client for the monolith at `options.server`. */
export const withRemote = <A, E, R>(options: RemoteOptions, use: (remote: Remote) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const conn = yield* connection(options)
    return yield* makeRemote(conn).pipe(Effect.flatMap(use), Effect.provide(httpLayer(conn.ca)))
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------
// Server-Sent Events
// ---------------------------------------------------------------------------

interface Frame {
  readonly id?: string | undefined
  readonly event?: string | undefined
  readonly data: ReadonlyArray<string>
}

const decodeEventJson = Schema.decodeUnknown(Schema.parseJson(RE.RunEvent))

/** Parses an SSE body (per the WHATWG rules: fields, comments, blank-line dispatch) into run events. */
export const parseSse = <E>(body: Stream.Stream<Uint8Array, E>) =>
  body.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.mapAccum({ data: [] } as Frame, (frame, line): readonly [Frame, ReadonlyArray<Frame>] => {
      if (line === "") return frame.data.length > 0 ? [{ data: [] }, [frame]] : [{ data: [] }, []]
      if (line.startsWith(":")) return [frame, []]
      const colon = line.indexOf(":")
      const field = colon === -1 ? line : line.slice(0, colon)
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "")
      switch (field) {
        case "data":
          return [{ ...frame, data: [...frame.data, value] }, []]
        case "id":
          return [{ ...frame, id: value }, []]
        case "event":
          return [{ ...frame, event: value }, []]
        default:
          return [frame, []]
      }
    }),
    Stream.mapConcat((frames) => frames),
    Stream.mapEffect((frame) =>
      decodeEventJson(frame.data.join("\n")).pipe(
        Effect.mapError(
          (e) => new UsageProblem(`the monolith sent an event that is not a run event (id ${frame.id ?? "?"}): ${e.message}`, "protocol")
        )
      )
    )
  )

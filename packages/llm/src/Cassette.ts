/**
 * Offline model cassettes (docs/cli.md, "Cassettes"): a JSON recording of the chunks a
 * model streamed, replayed in place of a real provider so a workflow with
 * agents runs with no key and no network — for `agent run --fixture`, demos
 * and deterministic tests.
 *
 * Call N to the provider's `stream` replays `calls[N]`. The cassette stands in
 * for whichever model the workflow names, so a provider/model mismatch is
 * replayed anyway unless `strict` is set.
 */
import { FileSystem } from "@effect/platform"
import { KnownSecrets, LlmProvider, makeScrubber } from "@relavium/ports"
import { Llm } from "@relavium/domain"
import { Duration, Effect, Layer, Option, ParseResult, Ref, Schema, Stream } from "effect"

/**
 * A cassette that cannot be read, parsed or decoded. `message` is the whole
 * located sentence a user sees (`review.cassette.json: calls[1][0].type:
 * expected one of …`), so any printer shows where the problem is; `path`,
 * `line` and `column` are there for callers that want to point at it.
 */
export class CassetteError extends Schema.TaggedError<CassetteError>()("CassetteError", {
  /** Where the text came from: a file path, or a label such as `<stdin>`. */
  source: Schema.String,
  /** Location inside the document, e.g. `calls[1][0].type`; empty for the whole document. */
  path: Schema.String,
  line: Schema.optional(Schema.Int),
  column: Schema.optional(Schema.Int),
  message: Schema.String
}) {}

export interface ReplayOptions {
  /**
   * Fail a call whose request names a different provider (or, when the
   * cassette records one, a different model). Off by default: a cassette is
   * usually the stand-in for whatever model a workflow names.
   */
  readonly strict?: boolean | undefined
  /**
   * Pause before each chunk, so a terminal shows the replay as live streaming.
   * Default 0: tests and CI replay instantly.
   */
  readonly tokenDelayMs?: number | undefined
}

// ---------------------------------------------------------------------------
// Decoding

const decodeCassette = Schema.decodeUnknown(Llm.Cassette)

/**
 * Parse and decode a cassette. Invalid JSON is reported with line and column;
 * a schema violation with the path of the first offending value.
 */
export const loadCassette = (text: string, source: string): Effect.Effect<Llm.Cassette, CassetteError> =>
  Effect.try({ try: (): unknown => JSON.parse(text), catch: (error) => jsonError(text, source, error) }).pipe(
    Effect.flatMap((json) => Effect.mapError(decodeCassette(json), (error) => schemaError(source, error)))
  )

const jsonError = (text: string, source: string, error: unknown): CassetteError => {
  const reason = error instanceof Error ? error.message : String(error)
  if (text.trim() === "") {
    return new CassetteError({ source, path: "", line: 1, column: 1, message: `${source}: the cassette is empty` })
  }
  // V8 appends its own "at position N" / "(line L column C)"; we say it once, in editor form.
  const detail = reason
    .replace(/\s*\(line \d+ column \d+\)/, "")
    .replace(/\s+in JSON at position \d+/, "")
    .replace(/\s+at position \d+/, "")
  const location = jsonErrorLocation(text, reason)
  if (location === undefined) {
    return new CassetteError({ source, path: "", message: `${source}: invalid JSON: ${detail}` })
  }
  return new CassetteError({
    source,
    path: "",
    line: location.line,
    column: location.column,
    message: `${source}:${location.line}:${location.column}: invalid JSON: ${detail}`
  })
}

/**
 * V8 reports a JSON syntax error with "at position N" (Node 20) and/or
 * "(line L column C)" (Node 22+); an unexpected end names neither and is
 * placed at the end of the text. Some messages carry no location at all.
 */
const jsonErrorLocation = (text: string, reason: string): { line: number; column: number } | undefined => {
  const lineColumn = /line (\d+) column (\d+)/.exec(reason)
  if (lineColumn !== null) return { line: Number(lineColumn[1]), column: Number(lineColumn[2]) }
  const position = /position (\d+)/.exec(reason)
  if (position === null && !/end of JSON/i.test(reason)) return undefined
  const offset = position === null ? text.length : Math.min(Number(position[1]), text.length)
  const before = text.slice(0, offset)
  const lastNewline = before.lastIndexOf("\n")
  return { line: before.split("\n").length, column: offset - lastNewline }
}

const schemaError = (source: string, error: ParseResult.ParseError): CassetteError => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  const path = first === undefined ? [] : first.path
  // A union reports one issue per member at the same path; they are merged into one sentence.
  const atPath = issues.filter((issue) => samePath(issue.path, path))
  const pathText = formatPath(path)
  const detail = describeIssues(atPath)
  return new CassetteError({
    source,
    path: pathText,
    message: pathText === "" ? `${source}: ${detail}` : `${source}: ${pathText}: ${detail}`
  })
}

const samePath = (a: ReadonlyArray<PropertyKey>, b: ReadonlyArray<PropertyKey>): boolean =>
  a.length === b.length && a.every((key, i) => key === b[i])

/** `["calls", 1, 0, "type"]` → `calls[1][0].type`, the way one would index it in JavaScript. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((acc, key) => {
    if (typeof key === "number") return `${acc}[${key}]`
    const name = String(key)
    if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name)) return acc === "" ? name : `${acc}.${name}`
    return `${acc}[${JSON.stringify(name)}]`
  }, "")

const EXPECTED_ACTUAL = /^Expected ([\s\S]*), actual ([\s\S]*)$/
const LITERAL_UNION = /^"[^"]*"( \| "[^"]*")*$/

/**
 * Schema messages spell out whole TypeScript types ("Expected { readonly
 * type: … } | …"); a cassette author needs the short version: which literals
 * are allowed, or what kind of value was expected, and what was found.
 */
const describeIssues = (issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>): string => {
  const first = issues[0]
  if (first === undefined) return "does not match the cassette schema"
  if (first._tag === "Missing") return "required field is missing"
  if (first._tag === "Unexpected") return "unexpected field"
  const parsed = issues.map((issue) => EXPECTED_ACTUAL.exec(issue.message))
  const actual = parsed[0]?.[2]
  if (actual === undefined) return lowerFirst(first.message)
  const literalUnions = parsed
    .map((match) => match?.[1])
    .filter((expected): expected is string => expected !== undefined && LITERAL_UNION.test(expected))
  if (literalUnions.length === issues.length) {
    const literals = [
      ...new Set(literalUnions.flatMap((union) => union.split(" | ").map((literal) => literal.slice(1, -1))))
    ]
    const expected = literals.length === 1 ? `"${literals[0]}"` : `one of ${literals.join(", ")}`
    return `expected ${expected}, got ${truncate(actual)}`
  }
  return `expected ${describeType(parsed[0]?.[1] ?? "")}, got ${truncate(actual)}`
}

const describeType = (expected: string): string => {
  if (expected.startsWith("ReadonlyArray<")) return "an array"
  if (expected.startsWith("{")) return "an object"
  if (expected === "string" || expected === "boolean" || expected === "number") return `a ${expected}`
  // Refinements already read as prose ("a non-negative number", "an integer").
  return expected.length > 60 ? "a different value" : expected
}

const truncate = (text: string): string => (text.length > 60 ? `${text.slice(0, 57)}...` : text)

const lowerFirst = (text: string): string => text.charAt(0).toLowerCase() + text.slice(1)

// ---------------------------------------------------------------------------
// Replay

/**
 * A provider that replays `cassette.calls[N]` for the N-th stream that runs.
 * The counter advances when a stream is run (not when it is built), so a
 * retried stream consumes the next recording — exactly what a real provider's
 * second attempt would have produced when the cassette was recorded.
 */
export const layerCassette = (cassette: Llm.Cassette, options: ReplayOptions = {}): Layer.Layer<LlmProvider> =>
  Layer.effect(
    LlmProvider,
    Effect.gen(function*() {
      const nextCall = yield* Ref.make(0)
      const strict = options.strict ?? false
      const delay = Duration.millis(Math.max(0, options.tokenDelayMs ?? 0))
      return LlmProvider.of({
        stream: (request) =>
          Stream.unwrap(
            Effect.gen(function*() {
              const index = yield* Ref.getAndUpdate(nextCall, (n) => n + 1)
              if (strict) {
                const mismatch = describeMismatch(cassette, request)
                if (Option.isSome(mismatch)) return yield* badRequest(cassette, request, mismatch.value)
              }
              const chunks = cassette.calls[index]
              if (chunks === undefined) {
                return yield* badRequest(
                  cassette,
                  request,
                  `the cassette has only ${cassette.calls.length} recorded calls; call ${index + 1} was made`
                )
              }
              return replayChunks(chunks, request, delay)
            })
          )
      })
    })
  )

const replayChunks = (
  chunks: ReadonlyArray<Llm.StreamChunk>,
  request: Llm.LlmRequest,
  delay: Duration.Duration
): Stream.Stream<Llm.StreamChunk, Llm.LlmError> => {
  const emit = (chunk: Llm.StreamChunk): Effect.Effect<Llm.StreamChunk, Llm.LlmError> =>
    chunk.type === "error"
      ? Effect.fail(new Llm.LlmError({ ...chunk.error, model: request.model }))
      : Effect.succeed(chunk)
  const paced = Duration.greaterThan(delay, Duration.zero)
    ? (chunk: Llm.StreamChunk) => Effect.zipRight(Effect.sleep(delay), emit(chunk))
    : emit
  // The stream fails at the first error chunk; a recording never continues past one.
  return Stream.fromIterable(chunks).pipe(Stream.mapEffect(paced))
}

const describeMismatch = (cassette: Llm.Cassette, request: Llm.LlmRequest): Option.Option<string> => {
  const providerDiffers = cassette.provider !== request.provider
  const modelDiffers = cassette.model !== undefined && cassette.model !== request.model
  if (!providerDiffers && !modelDiffers) return Option.none()
  const recorded = cassette.model === undefined ? cassette.provider : `${cassette.provider}/${cassette.model}`
  const requested = `${request.provider}/${request.model}`
  return Option.some(`the cassette was recorded for ${recorded} but the request is for ${requested} (strict replay)`)
}

const badRequest = (cassette: Llm.Cassette, request: Llm.LlmRequest, message: string) =>
  Effect.fail(
    new Llm.LlmError({
      kind: "bad_request",
      retryable: false,
      provider: cassette.provider,
      model: request.model,
      message
    })
  )

// ---------------------------------------------------------------------------
// Files

/** Read and decode a cassette file; an unreadable file is a `CassetteError` too, so callers map one error to exit 2. */
export const readCassetteFile = (
  path: string
): Effect.Effect<Llm.Cassette, CassetteError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((error) =>
        new CassetteError({ source: path, path: "", message: `${path}: cannot read the cassette: ${error.message}` })
      )
    )
    return yield* loadCassette(text, path)
  })

/** {@link layerCassette} over a cassette file, read once when the layer is built. */
export const layerCassetteFile = (
  path: string,
  options: ReplayOptions = {}
): Layer.Layer<LlmProvider, CassetteError, FileSystem.FileSystem> =>
  Layer.unwrapEffect(Effect.map(readCassetteFile(path), (cassette) => layerCassette(cassette, options)))

// ---------------------------------------------------------------------------
// Recording

/**
 * The cassette text for `calls`: the format {@link loadCassette} reads, one chunk per line.
 * `provider` and `model` are those of the first call (replay stands in for any model anyway).
 */
export const formatCassette = (
  first: { readonly provider: string; readonly model: string } | undefined,
  calls: ReadonlyArray<ReadonlyArray<Llm.StreamChunk>>
): string => {
  const head = [
    `  "schema_version": "1.0",`,
    `  "provider": ${JSON.stringify(first?.provider ?? "unknown")},`,
    ...(first === undefined ? [] : [`  "model": ${JSON.stringify(first.model)},`])
  ]
  const body = calls.map((chunks) => `    [\n${chunks.map((chunk) => `      ${JSON.stringify(chunk)}`).join(",\n")}\n    ]`)
  return `{\n${head.join("\n")}\n  "calls": [\n${body.join(",\n")}\n  ]\n}\n`
}

/** A provider error as the chunk that makes a replay fail the same way. */
const errorChunk = (error: Llm.LlmError): Llm.StreamChunk => ({
  type: "error",
  error: { kind: error.kind, retryable: error.retryable, provider: error.provider, message: error.message }
})

/**
 * Records the model calls of the `LlmProvider` below it into a cassette at `file`: call N is the
 * N-th stream that runs (as replay numbers them), with every chunk it streamed and, when it failed,
 * the error as its last chunk. The file is rewritten after each call ends and when the layer closes,
 * so a run that stops midway leaves the calls it made. Only what the model streamed is kept — never
 * a request, a header or a key — and every known secret in it is replaced as it is in events.
 */
export const layerRecording = (
  file: string
): Layer.Layer<LlmProvider, never, LlmProvider | FileSystem.FileSystem | KnownSecrets> =>
  Layer.scoped(
    LlmProvider,
    Effect.gen(function*() {
      const inner = yield* LlmProvider
      const fs = yield* FileSystem.FileSystem
      const secrets = yield* KnownSecrets
      const calls: Array<Array<Llm.StreamChunk>> = []
      let first: { provider: string; model: string } | undefined
      const lock = yield* Effect.makeSemaphore(1)
      const write = lock.withPermits(1)(
        Effect.gen(function*() {
          const scrubber = makeScrubber(yield* secrets.values)
          const text = scrubber.scrub(formatCassette(first, calls))
          yield* fs.writeFileString(file, text).pipe(
            Effect.catchAll((error) => Effect.logWarning(`cannot write the cassette ${file}: ${error.message}`))
          )
        })
      )
      yield* Effect.addFinalizer(() => write)
      return LlmProvider.of({
        stream: (request) =>
          Stream.unwrap(
            Effect.sync(() => {
              first ??= { provider: request.provider, model: request.model }
              const chunks: Array<Llm.StreamChunk> = []
              calls.push(chunks)
              return inner.stream(request).pipe(
                Stream.tap((chunk) => Effect.sync(() => void chunks.push(chunk))),
                Stream.tapError((error) => Effect.sync(() => void chunks.push(errorChunk(error)))),
                Stream.ensuring(write)
              )
            })
          )
      })
    })
  )

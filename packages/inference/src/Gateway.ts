/**
 * The managed inference gateway's HTTP app (docs/inference.md): an OpenAI-compatible API in front
 * of the providers, for the orgs of the `Tenancy` port.
 *
 * Every request to `/v1/chat/completions`, in order: the bearer token (an org API token, resolved
 * before a byte of the body is read), the body (size limit, JSON, the request schema), the route
 * of its model and the org's managed key for it (`KeyStore` under the caller's org), the rate
 * limit and the budget hold of the worst case (`RateLimiter`, `Metering`), the upstream call
 * through @relavium/llm's adapters (fallbacks followed before any output), and exactly one
 * `settle` with the upstream's own usage however it ended: `ok`, `error` (failed before any
 * output), `cut` (the upstream stopped midway) or `cancelled` (the client left; the upstream call
 * is cancelled with it).
 *
 * Nothing of a prompt or a completion is logged or stored: one log line per request with the
 * model, the counts, the timing and the status. The adapters' own warnings (they may quote a
 * provider's error text) are silenced inside the upstream call for the same reason.
 */
import { type HttpApp, type HttpClient, HttpIncomingMessage, HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cost, type Llm } from "@relavium/domain"
import { can, currentOrgId, forOrg, KeyStore, LlmProvider, type Principal, Tenancy } from "@relavium/ports"
import { Chunk, Clock, Context, Effect, Either, Exit, FiberRef, Layer, LogLevel, Option, Redacted, Stream } from "effect"
import { Providers } from "@relavium/llm"
import { randomBytes } from "node:crypto"
import { type BudgetExceeded, Metering, type RateLimited, RateLimiter, type Reservation, type UsageStatus } from "./Metering.js"
import { type ApiFailure, type ChatCompletionRequest, errorBody, failure, parseRequest } from "./OpenAi.js"
import type { Route, Routes } from "./Routing.js"
import { ChunkWriter, Completion, estimateInputTokens, outputCap, SSE_DONE, sseEvent, toLlmRequest } from "./Translate.js"

/** Larger request bodies are refused with 413. */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

export interface GatewayOptions {
  readonly routes: Routes
  readonly maxBodyBytes?: number | undefined
}

export const OVERHEAD_HEADER = "x-relavium-overhead-ms"

const respond = (f: ApiFailure) =>
  HttpServerResponse.unsafeJson(errorBody(f), { status: f.status, ...(f.headers !== undefined ? { headers: f.headers } : {}) })

const unauthorized = failure(401, "invalid_request_error", "invalid_api_key", "missing or wrong API key (Authorization: Bearer rlv_...)")

const budgetFailure = (e: BudgetExceeded): ApiFailure =>
  e.scope === "org"
    ? failure(402, "insufficient_quota", "budget_exceeded", "the org's monthly inference budget is spent", null, { "x-should-retry": "false" })
    : failure(429, "insufficient_quota", "token_budget_exceeded", "this API token's monthly inference budget is spent", null, { "x-should-retry": "false" })

const rateFailure = (e: RateLimited): ApiFailure => {
  const seconds = Math.max(1, Math.ceil(e.retryAfterMs / 1000))
  return failure(429, "rate_limit_error", "rate_limit_exceeded", `rate limit of ${e.limit} per minute reached for this ${e.scope}; retry after ${seconds} s`, null, {
    "retry-after": String(seconds),
    "retry-after-ms": String(Math.max(0, Math.round(e.retryAfterMs)))
  })
}

/** An upstream failure as the client sees it: never the provider's own text, which may quote the request. */
const upstreamFailure = (error: Llm.LlmError): ApiFailure => {
  const detail = `${error.provider}${error.status !== undefined ? ` answered HTTP ${error.status}` : ` failed (${error.kind})`}`
  return error.kind === "bad_request" || error.kind === "content_filter"
    ? failure(400, "invalid_request_error", error.kind === "content_filter" ? "content_filter" : "upstream_rejected", `the upstream provider refused the request: ${detail}`)
    : failure(502, "upstream_error", "upstream_failed", `the upstream provider failed: ${detail}`)
}

const bearerOf = (header: string | undefined): string | undefined => {
  const match = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return match?.[1]
}

const parseJson = (text: string): Either.Either<unknown, ApiFailure> => {
  try {
    return Either.right(JSON.parse(text) as unknown)
  } catch (e) {
    return Either.left(failure(400, "invalid_request_error", "invalid_json", `the request body is not valid JSON: ${(e as Error).message}`))
  }
}

const requestIdOf = () => `chatcmpl-${randomBytes(12).toString("hex")}`

const nowNanos = Clock.currentTimeNanos
const msSince = (start: bigint, end: bigint) => Number(end - start) / 1e6

/** Runs `effect` with every log below `Fatal` dropped: the upstream call. */
const silenced = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.locally(effect, FiberRef.currentMinimumLogLevel, LogLevel.None)

interface Metered {
  readonly route: Route
  readonly chain: ReadonlyArray<Route>
  readonly reservation: Reservation
  readonly estimateInput: number
  readonly startedNanos: bigint
}

/** The app: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`; OpenAI-shaped errors everywhere. */
export const makeApp = (options: GatewayOptions) =>
  Effect.gen(function* () {
    const tenancy = yield* Tenancy
    const keys = yield* KeyStore
    const llm = yield* LlmProvider
    const metering = yield* Metering
    const limiter = yield* RateLimiter
    const maxBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
    const { routes, fallbacks } = options.routes

    /** The caller of the request's token, or the failure to answer with. */
    const authenticate = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const given = bearerOf(request.headers["authorization"])
      if (given === undefined) return Either.left(unauthorized)
      const resolved = yield* Effect.either(tenancy.tokens.resolve(Redacted.make(given)))
      if (Either.isLeft(resolved)) {
        yield* Effect.logError("inference: the API token could not be checked (token store unavailable)")
        return Either.left(failure(503, "server_error", "service_unavailable", "the API token could not be checked now; try again"))
      }
      if (Option.isNone(resolved.right)) return Either.left(unauthorized)
      return Either.right(resolved.right.value)
    })

    const readBody = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const length = request.headers["content-length"]
      const tooLarge = failure(413, "invalid_request_error", "request_too_large", `the request body is over the limit of ${maxBytes} bytes`)
      if (length !== undefined && Number(length) > maxBytes) return Either.left(tooLarge)
      const text = yield* HttpIncomingMessage.withMaxBodySize(Effect.either(request.text), Option.some(maxBytes))
      if (Either.isLeft(text)) {
        const e = text.left
        return Either.left(
          /too large|max.*size|exceed/i.test(`${e.description ?? ""} ${String(e.cause ?? "")}`)
            ? tooLarge
            : failure(400, "invalid_request_error", "invalid_body", "the request body could not be read")
        )
      }
      return parseJson(text.right)
    })

    const logRequest = (m: Metered, served: Route, status: UsageStatus, usage: Llm.Usage, ms: number) =>
      Effect.logInfo(
        `inference ${m.reservation.requestId}: model=${m.route.name} served_by=${served.provider}/${served.model} status=${status} input_tokens=${usage.inputTokens} output_tokens=${usage.outputTokens} duration_ms=${ms.toFixed(1)}`
      )

    /**
     * What one upstream call needs to be settled exactly once: the route that serves (moves along
     * the fallbacks on `attempt` chunks), the upstream's usage (from its `stop` chunk, also sent
     * on a cut), and the output seen (to estimate a cut or cancelled call the upstream never counted).
     */
    const tracker = (m: Metered) => {
      let served = m.route
      let usage: Llm.Usage | undefined
      let outputChars = 0
      let output = false
      let settled = false
      return {
        served: () => served,
        output: () => output,
        usage: () => usage,
        see: (chunk: Llm.StreamChunk) => {
          switch (chunk.type) {
            case "attempt": {
              const next = m.chain.find((r) => r.provider === chunk.provider && r.model === chunk.model)
              if (next !== undefined) served = next
              break
            }
            case "stop":
              usage = chunk.usage
              break
            case "text_delta":
            case "reasoning_delta":
              output = true
              outputChars += chunk.text.length
              break
            case "tool_call_delta":
              output = true
              outputChars += chunk.argsJsonDelta.length
              break
            case "tool_call_start":
              output = true
              outputChars += chunk.name.length
              break
            default:
              break
          }
        },
        /** Settles once; the usage is the upstream's own, else an estimate of what arrived. */
        settle: (status: UsageStatus) =>
          Effect.suspend(() => {
            if (settled) return Effect.void
            settled = true
            const counted: Llm.Usage =
              usage ?? (status === "error" && !output ? { inputTokens: 0, outputTokens: 0 } : { inputTokens: m.estimateInput, outputTokens: Math.ceil(outputChars / 4) })
            return Effect.gen(function* () {
              const end = yield* nowNanos
              const ms = msSince(m.startedNanos, end)
              yield* metering
                .settle(m.reservation, {
                  provider: served.provider,
                  model: served.model,
                  inputTokens: counted.inputTokens,
                  outputTokens: counted.outputTokens,
                  costMicrocents: Cost.costOf(served.price, counted),
                  status,
                  durationMs: Math.round(ms)
                })
                .pipe(Effect.catchAll((e) => Effect.logError(`inference ${m.reservation.requestId}: could not settle the usage: ${e.message}`)))
              yield* logRequest(m, served, status, counted, ms)
            })
          })
      }
    }

    const headersOf = (m: Metered, overheadMs: number, served: Route) => ({
      [OVERHEAD_HEADER]: overheadMs.toFixed(3),
      "x-request-id": m.reservation.requestId,
      "x-relavium-served-by": served.name
    })

    const chatCompletions = Effect.gen(function* () {
      const startedNanos = yield* nowNanos
      const caller = yield* authenticate
      if (Either.isLeft(caller)) return respond(caller.left)
      const principal: Principal = caller.right
      if (!can(principal.role, "runs.start")) {
        return respond(failure(403, "permission_error", "permission_denied", "this API token's role may not use inference (viewer); use a member's token"))
      }
      const parsed = yield* readBody
      if (Either.isLeft(parsed)) return respond(parsed.left)
      const body = parseRequest(parsed.right)
      if (Either.isLeft(body)) return respond(body.left)
      return yield* chat(body.right, principal, startedNanos).pipe(forOrg(principal.orgId))
    })

    const chat = (body: ChatCompletionRequest, principal: Principal, startedNanos: bigint) =>
      Effect.gen(function* () {
        const route = options.routes.resolve(body.model)
        if (route === undefined) {
          return respond(failure(404, "invalid_request_error", "model_not_found", `the model '${body.model}' does not exist or you do not have access to it`, "model"))
        }
        // One look at which keys the org holds (names only, nothing decrypted); the adapter reads the one it calls with.
        const held = yield* Effect.either(keys.list)
        if (Either.isLeft(held)) {
          yield* Effect.logError(`inference: the managed keys could not be listed (${held.left.reason ?? "key store unavailable"})`)
          return respond(failure(503, "server_error", "service_unavailable", "the managed keys could not be read now; try again"))
        }
        const hasKey = (r: Route) => !r.keyRequired || held.right.includes(r.keyName)
        if (!hasKey(route)) {
          return respond(failure(400, "invalid_request_error", "model_not_enabled", `the model '${body.model}' is not enabled for your org: it holds no managed key for ${route.provider}`, "model"))
        }
        const chain = [route, ...(fallbacks.get(route.name) ?? []).filter(hasKey)]
        const request = toLlmRequest(body, route, chain.slice(1))
        if (Either.isLeft(request)) return respond(request.left)
        const estimateInput = estimateInputTokens(body)
        const cap = outputCap(body, route)
        const worstCase = Math.max(...chain.map((r) => Cost.costOf(r.price, { inputTokens: estimateInput, outputTokens: Math.max(cap, 0) })))
        const requestId = requestIdOf()
        const limited = yield* Effect.either(limiter.acquire({ orgId: principal.orgId, tokenId: principal.tokenId, tokens: estimateInput + cap }))
        if (Either.isLeft(limited)) {
          if (limited.left._tag === "RateLimited") return respond(rateFailure(limited.left))
          yield* Effect.logError(`inference ${requestId}: the rate limiter could not answer: ${limited.left.message}`)
          return respond(failure(503, "server_error", "service_unavailable", "the rate limiter could not answer now; try again"))
        }
        const reserved = yield* Effect.either(
          metering.reserve({ requestId, orgId: principal.orgId, tokenId: principal.tokenId, worstCaseMicrocents: worstCase })
        )
        if (Either.isLeft(reserved)) {
          if (reserved.left._tag === "BudgetExceeded") return respond(budgetFailure(reserved.left))
          yield* Effect.logError(`inference ${requestId}: the budget could not be checked: ${reserved.left.message}`)
          return respond(failure(503, "server_error", "service_unavailable", "the budget could not be checked now; try again"))
        }
        const metered: Metered = { route, chain, reservation: reserved.right, estimateInput, startedNanos }
        const upstream = llm.stream(request.right)
        return body.stream === true
          ? yield* streamed(metered, upstream, body.stream_options?.include_usage === true, principal.orgId)
          : yield* whole(metered, upstream)
      })

    /** Non-streamed: the upstream's whole answer as one `chat.completion`. */
    const whole = (m: Metered, upstream: Stream.Stream<Llm.StreamChunk, Llm.LlmError>) => {
      const track = tracker(m)
      return Effect.gen(function* () {
        const completion = new Completion()
        const upstreamStart = yield* nowNanos
        const result = yield* upstream.pipe(
          Stream.runForEach((chunk) =>
            Effect.sync(() => {
              track.see(chunk)
              completion.add(chunk)
            })
          ),
          silenced,
          Effect.either
        )
        const upstreamEnd = yield* nowNanos
        if (Either.isLeft(result)) {
          yield* track.settle(track.output() ? "cut" : "error")
          return respond(upstreamFailure(result.left))
        }
        yield* track.settle("ok")
        const usage = track.usage() ?? { inputTokens: 0, outputTokens: 0 }
        const served = track.served()
        const json = completion.body(m.reservation.requestId, Math.floor(Number(m.startedNanos / 1_000_000_000n)), served.name, usage)
        const overhead = msSince(m.startedNanos, yield* nowNanos) - msSince(upstreamStart, upstreamEnd)
        return HttpServerResponse.unsafeJson(json, { headers: headersOf(m, overhead, served) })
      }).pipe(
        // A client that leaves cancels the upstream call; anything unforeseen still releases the hold.
        Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : track.settle(Exit.isInterrupted(exit) ? "cancelled" : "error")))
      )
    }

    /**
     * Streamed: the upstream is pulled until its first output (a failure before it is still an
     * HTTP error), then the response streams the rest. The pull lives in the request's scope, so
     * a client that leaves interrupts it, which cancels the upstream call; the settle finalizer,
     * added first, runs after that.
     */
    const streamed = (m: Metered, upstream: Stream.Stream<Llm.StreamChunk, Llm.LlmError>, includeUsage: boolean, orgId: string) =>
      Effect.gen(function* () {
        const track = tracker(m)
        let ended: UsageStatus | undefined
        yield* Effect.addFinalizer(() => Effect.suspend(() => track.settle(ended ?? "cancelled")))
        const pull = yield* Stream.toPull(upstream)
        const pullOnce = pull.pipe(silenced, forOrg(orgId))
        const upstreamStart = yield* nowNanos
        const first: Array<Llm.StreamChunk> = []
        let endedEarly: Option.Option<Llm.LlmError> | undefined
        // Attempts, and the usage a failing upstream reported before failing, are not output yet.
        const isOutput = (c: Llm.StreamChunk) => c.type !== "attempt" && !(c.type === "stop" && c.stopReason === "error")
        while (endedEarly === undefined && !first.some(isOutput)) {
          const next = yield* Effect.either(pullOnce)
          if (Either.isLeft(next)) endedEarly = next.left
          else first.push(...Chunk.toReadonlyArray(next.right))
        }
        const upstreamEnd = yield* nowNanos
        for (const chunk of first) track.see(chunk)
        if (endedEarly !== undefined && Option.isSome(endedEarly) && !track.output()) {
          ended = "error"
          yield* track.settle("error")
          return respond(upstreamFailure(endedEarly.value))
        }
        const writer = new ChunkWriter(m.reservation.requestId, Math.floor(Number(m.startedNanos / 1_000_000_000n)), m.route.name, includeUsage)
        const encode = (chunks: ReadonlyArray<Llm.StreamChunk>) => chunks.flatMap((c) => writer.write(c))
        // Settled before the last events leave, so a client that saw [DONE] finds the call in the ledger.
        const tail = Stream.suspend(() => {
          ended = "ok"
          const usage = track.usage() ?? { inputTokens: 0, outputTokens: 0 }
          return Stream.concat(Stream.execute(track.settle("ok")), Stream.fromIterable(includeUsage ? [writer.usage(usage), SSE_DONE] : [SSE_DONE]))
        })
        const cutShort = (error: Llm.LlmError) =>
          Stream.suspend(() => {
            ended = "cut"
            return Stream.concat(Stream.execute(track.settle("cut")), Stream.make(sseEvent(errorBody(upstreamFailure(error)))))
          })
        const rest: Stream.Stream<Uint8Array> =
          endedEarly === undefined
            ? Stream.repeatEffectChunkOption(
                Effect.map(pullOnce, (chunks) => {
                  const list = Chunk.toReadonlyArray(chunks)
                  for (const chunk of list) track.see(chunk)
                  return Chunk.unsafeFromArray(encode(list))
                })
              ).pipe(
                Stream.concat(tail),
                Stream.catchAll(cutShort)
              )
            : Option.isNone(endedEarly)
              ? tail
              : cutShort(endedEarly.value)
        const head = [writer.start(), ...encode(first)]
        const overhead = msSince(m.startedNanos, yield* nowNanos) - msSince(upstreamStart, upstreamEnd)
        return HttpServerResponse.stream(Stream.concat(Stream.fromIterable(head), rest), {
          contentType: "text/event-stream",
          headers: { ...headersOf(m, overhead, track.served()), "cache-control": "no-cache", connection: "keep-alive" }
        })
      })

    const listModels = Effect.gen(function* () {
      const caller = yield* authenticate
      if (Either.isLeft(caller)) return respond(caller.left)
      const held = yield* Effect.either(forOrg(caller.right.orgId)(keys.list))
      if (Either.isLeft(held)) return respond(failure(503, "server_error", "service_unavailable", "the managed keys could not be read now; try again"))
      const names = new Set(held.right)
      const data = [...routes.values()]
        .filter((r) => !r.keyRequired || names.has(r.keyName))
        .map((r) => ({ id: r.name, object: "model", created: 0, owned_by: r.provider }))
      return HttpServerResponse.unsafeJson({ object: "list", data })
    })

    const notFound = (path: string) =>
      respond(failure(404, "invalid_request_error", "unknown_url", `unknown request URL: ${path}; the gateway serves POST /v1/chat/completions and GET /v1/models`))

    const router = HttpRouter.empty.pipe(
      HttpRouter.post("/v1/chat/completions", chatCompletions),
      HttpRouter.get("/v1/models", listModels),
      HttpRouter.get("/health", HttpServerResponse.unsafeJson({ status: "ok" }))
    )
    const app: HttpApp.Default = router.pipe(
      Effect.catchTag("RouteNotFound", (e) => Effect.succeed(notFound(e.request.method + " " + new URL(e.request.url, "http://x").pathname))),
      Effect.catchAllCause((cause) =>
        Effect.zipRight(
          Effect.logError(`inference: an unexpected failure (${cause._tag})`),
          Effect.succeed(respond(failure(500, "server_error", "internal_error", "the gateway failed unexpectedly")))
        )
      )
    )
    return app
  })

/** The gateway served on the `HttpServer` of the context, for the layer's lifetime. */
export const layer = (options: GatewayOptions) =>
  Layer.scopedDiscard(Effect.flatMap(makeApp(options), (app) => HttpServer.serveEffect(app)))

/**
 * The upstream side: @relavium/llm's adapters for the routes' providers, keys read from the
 * `KeyStore` per call (under the caller's org). Each org gets a provider layer of its own: the
 * layer remembers which targets answered "rate limited" and skips them for a while, and one org's
 * limit on its own managed key must not send another org's calls to a fallback.
 */
export const layerUpstream = (routes: Routes): Layer.Layer<LlmProvider, never, HttpClient.HttpClient | KeyStore> =>
  Layer.scoped(
    LlmProvider,
    Effect.gen(function* () {
      const context = yield* Effect.context<HttpClient.HttpClient | KeyStore>()
      const scope = yield* Effect.scope
      const byOrg = new Map<string, LlmProvider["Type"]>()
      const forOrgOf = Effect.gen(function* () {
        const orgId = yield* currentOrgId
        const known = byOrg.get(orgId)
        if (known !== undefined) return known
        const built = yield* Layer.buildWithScope(Providers.layer(routes.providers), scope).pipe(Effect.provide(context))
        const provider = Context.get(built, LlmProvider)
        byOrg.set(orgId, provider)
        return provider
      })
      return LlmProvider.of({ stream: (request) => Stream.unwrap(Effect.map(forOrgOf, (provider) => provider.stream(request))) })
    })
  )

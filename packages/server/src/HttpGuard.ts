/**
 * What every request passes before a route sees it, in this order: the bearer
 * token (every path but `/health`, resolved to the caller by `Authentication`
 * before a byte of the body is read; any token it does not accept gets the same
 * 401), the body size limit (413; a body without a Content-Length gets 411),
 * and for JSON bodies a nesting depth limit
 * and a syntax check (400 with a message saying why). The Node server's
 * request and header timeouts (slow or trickling clients get 408 and are
 * dropped) are set where the server is created, from {@link nodeServerOptions}.
 *
 * The request then runs for the caller: `CurrentPrincipal` is the caller and
 * every store statement acts for the caller's org (`forOrg`). This is the one
 * place that scopes requests to an org; SSE bodies, written after the handler
 * returned, keep the org they were made for (Sse.ts).
 *
 * Documented for users in docs/security/http.md.
 */
import { type HttpApp, HttpIncomingMessage, HttpMethod, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Either, Option, Redacted } from "effect"
import { CurrentPrincipal, forOrg } from "@relavium/ports"
import { Authentication, UNAUTHORIZED_MESSAGE } from "./Auth.js"
import { routes } from "./Routes.js"
import { isHookPath } from "./Webhooks.js"

/** Larger request bodies are refused with 413. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024
/** JSON bodies nested deeper than this are refused with 400. */
export const DEFAULT_MAX_JSON_DEPTH = 64
/** The whole request (headers and body) must arrive within this time, else 408 and the connection is closed. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000
/** The request's headers must arrive within this time, else 408 and the connection is closed. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000

/** The paths served without a token: the routes whose action is `public` in Routes.ts. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(routes.filter((route) => route.action === "public").map((route) => route.path))

/** The public paths with parameters (`/gate-links/:token`) as patterns of one path segment per parameter. */
const publicPatterns: ReadonlyArray<RegExp> = [...PUBLIC_PATHS]
  .filter((path) => path.includes(":"))
  .map((path) => new RegExp(`^${path.split("/").map((part) => (part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("/")}$`))

/** Whether `path` (a request's path) is served without a token. */
export const isPublicPath = (path: string): boolean => PUBLIC_PATHS.has(path) || publicPatterns.some((pattern) => pattern.test(path))

export interface GuardOptions {
  readonly maxBodyBytes?: number | undefined
  readonly maxJsonDepth?: number | undefined
}

export interface ServerTimeouts {
  /** Milliseconds for the whole request to arrive (default 30 s). */
  readonly requestTimeoutMs?: number | undefined
  /** Milliseconds for the request's headers to arrive (default 10 s; never more than the request timeout). */
  readonly headersTimeoutMs?: number | undefined
}

/**
 * Options for `http.createServer` / `https.createServer`: Node answers a request that has not fully
 * arrived in time with 408 and closes the connection. Connections are checked four times per
 * (shorter) timeout, so a slow client is dropped at most a quarter late.
 */
export const nodeServerOptions = (timeouts: ServerTimeouts = {}) => {
  const requestTimeout = positive(timeouts.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS)
  const headersTimeout = Math.min(positive(timeouts.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS), requestTimeout)
  return {
    // Node's default, stated: small writes (an SSE event) leave at once instead of waiting on Nagle.
    noDelay: true,
    requestTimeout,
    headersTimeout,
    connectionsCheckingInterval: Math.max(25, Math.min(30_000, Math.floor(headersTimeout / 4)))
  }
}

const positive = (value: number | undefined, fallback: number) =>
  value !== undefined && Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback

const problem = (status: number, tag: string, message: string) => HttpServerResponse.unsafeJson({ _tag: tag, message }, { status })

const bearerOf = (header: string | undefined): string | undefined => {
  const match = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return match?.[1]
}

const pathOf = (url: string): string => {
  try {
    return new URL(url, "http://localhost").pathname
  } catch {
    return url
  }
}

/**
 * How deep the JSON text nests objects and arrays, stopping as soon as it passes `limit` (a linear
 * scan that never recurses, so it is safe on any input).
 */
export const jsonDepthExceeds = (text: string, limit: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92 /* \ */) i++
      else if (c === 34 /* " */) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > limit) return true
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--
  }
  return false
}

const syntaxProblem = (text: string): string | undefined => {
  try {
    JSON.parse(text)
    return undefined
  } catch (e) {
    return `not valid JSON: ${(e as Error).message}`
  }
}

/** Wraps the server's app: token first, then the body's size, depth and syntax; the app runs for the caller's org. */
export const guard =
  (options: GuardOptions) =>
  (app: HttpApp.Default): HttpApp.Default<never, Authentication> =>
    Effect.gen(function* () {
      const maxBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
      const maxDepth = options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH
      const request = yield* HttpServerRequest.HttpServerRequest
      let forCaller: HttpApp.Default = app
      // A webhook delivery is authenticated by its signature, over its raw body (Webhooks.ts).
      const hook = request.method === "POST" && isHookPath(pathOf(request.url))
      if (!isPublicPath(pathOf(request.url)) && !hook) {
        const given = bearerOf(request.headers["authorization"])
        const resolved =
          given === undefined
            ? Either.right(Option.none())
            : yield* Effect.either((yield* Authentication).resolve(Redacted.make(given)))
        if (Either.isLeft(resolved)) {
          // The token store did not answer: not the caller's fault, so not a 401.
          yield* Effect.logError(`the bearer token could not be checked: ${resolved.left.message}`)
          return problem(503, "NotReady", "the bearer token could not be checked now; try again")
        }
        // Answered before the body is read: an unauthenticated client cannot make the server buffer or parse anything.
        if (Option.isNone(resolved.right)) return problem(401, "Unauthorized", UNAUTHORIZED_MESSAGE)
        const caller = resolved.right.value
        forCaller = app.pipe(forOrg(caller.orgId), Effect.provideService(CurrentPrincipal, caller))
      }
      const length = request.headers["content-length"]
      const tooLarge = (size: string) =>
        problem(413, "PayloadTooLarge", `the request body is ${size}; the limit is ${maxBytes} bytes (${(maxBytes / 1024 / 1024).toFixed(1)} MiB)`)
      if (length !== undefined && Number(length) > maxBytes) return tooLarge(`${length} bytes`)
      if (length === undefined && request.headers["transfer-encoding"] !== undefined) {
        // A body of unknown length could only be cut off mid-stream, which drops the connection
        // without an answer; every client of a JSON API can say the length up front.
        return problem(411, "LengthRequired", `send the request body with a Content-Length header (at most ${maxBytes} bytes)`)
      }
      // The API reads a JSON body before its decoder runs, and a body that is not JSON would end there
      // as an empty 400; read it first (the request caches it) to say why.
      const contentType = request.headers["content-type"]?.toLowerCase() ?? "application/json"
      if (!hook && HttpMethod.hasBody(request.method) && contentType.includes("application/json") && length !== "0") {
        const body = yield* HttpIncomingMessage.withMaxBodySize(Effect.either(request.text), Option.some(maxBytes))
        if (Either.isLeft(body)) {
          const error = body.left
          if (/too large|max.*size|exceed/i.test(`${error.description ?? ""} ${String(error.cause ?? "")}`)) {
            return tooLarge(`over the limit`)
          }
          return problem(400, "BadRequest", `the request body could not be read: ${error.description ?? error.reason}`)
        }
        const text = body.right
        if (text.trim() !== "") {
          if (jsonDepthExceeds(text, maxDepth)) {
            return problem(400, "BadRequest", `the request body nests objects and arrays deeper than ${maxDepth} levels`)
          }
          const syntax = syntaxProblem(text)
          if (syntax !== undefined) return problem(400, "BadRequest", `the request body could not be read as JSON: ${syntax}`)
        }
      }
      return yield* HttpIncomingMessage.withMaxBodySize(forCaller, Option.some(maxBytes))
    })

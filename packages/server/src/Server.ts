/**
 * The HTTP server of the API: routes, OpenAPI document (`/openapi.json`), a
 * browsable reference (`/docs`), bearer auth, and a request body limit.
 * Needs an `HttpServer` (plain or TLS) and the component tags.
 */
import {
  type HttpApi,
  HttpApiBuilder,
  HttpApiScalar,
  type HttpApp,
  HttpIncomingMessage,
  HttpMethod,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Effect, Either, Layer, Option, type Redacted } from "effect"
import { MonolithApi, RelaviumApi } from "./Api.js"
import { layerBearer } from "./Auth.js"
import * as ChatHandlers from "./ChatHandlers.js"
import { layerHandlers } from "./Handlers.js"
import type { SseOptions } from "./Sse.js"

export interface ServerOptions extends SseOptions {
  readonly token: Redacted.Redacted<string>
  /** Larger request bodies are refused with 413 (default 4 MiB). */
  readonly maxBodyBytes?: number | undefined
  /** GET routes served beside the API on the same server, outside the OpenAPI document (the daemons' websocket). */
  readonly routes?: ReadonlyArray<ExtraRoute> | undefined
}

/** A route that is not part of the API: it does its own authentication. */
export interface ExtraRoute {
  readonly path: `/${string}`
  readonly handler: HttpApp.Default<never, HttpServerRequest.HttpServerRequest>
}

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

const jsonProblem = (text: string): string | undefined => {
  if (text.trim() === "") return undefined
  try {
    JSON.parse(text)
    return undefined
  } catch (e) {
    return `not valid JSON: ${(e as Error).message}`
  }
}

/** Refuses a body over the limit with 413 before reading it; a body without a length is cut off at the limit. */
export const limitBody =
  (maxBytes: number) =>
  (app: HttpApp.Default): HttpApp.Default =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const length = request.headers["content-length"]
      if (length !== undefined && Number(length) > maxBytes) {
        return HttpServerResponse.unsafeJson(
          { _tag: "PayloadTooLarge", message: `the request body is ${length} bytes; the limit is ${maxBytes}` },
          { status: 413 }
        )
      }
      // The API reads a JSON body before its decoder runs, and a body that is not JSON would end there
      // as an empty 400; read it first (the request caches it) to say why.
      const contentType = request.headers["content-type"]?.toLowerCase() ?? "application/json"
      if (HttpMethod.hasBody(request.method) && contentType.includes("application/json") && length !== "0") {
        const body = yield* HttpIncomingMessage.withMaxBodySize(Effect.either(request.text), Option.some(maxBytes))
        const problem = Either.isLeft(body) ? (body.left.description ?? body.left.reason) : jsonProblem(body.right)
        if (problem !== undefined) {
          return HttpServerResponse.unsafeJson(
            { _tag: "BadRequest", message: `the request body could not be read as JSON: ${problem}` },
            { status: 400 }
          )
        }
      }
      return yield* HttpIncomingMessage.withMaxBodySize(app, Option.some(maxBytes))
    })

/** The API implementation (no server): for tests with `HttpApiBuilder.toWebHandler` or any `HttpServer`. */
export const layerApi = (options: ServerOptions) =>
  HttpApiBuilder.api(RelaviumApi).pipe(Layer.provide(layerHandlers(options)), Layer.provide(layerBearer(options.token)))

const layerRoutes = (routes: ReadonlyArray<ExtraRoute>) =>
  HttpApiBuilder.Router.use((router) => Effect.forEach(routes, (route) => router.get(route.path, route.handler), { discard: true }))

/** Serves the API (and `options.routes`) on the `HttpServer` in context, for as long as the layer lives. */
export const layer = (options: ServerOptions) => serve(options, layerApi(options))

/** `MonolithApi` (every route of the API and the chats; needs `ChatService` too). */
export const layerMonolithApi = (options: ServerOptions) =>
  HttpApiBuilder.api(MonolithApi).pipe(
    Layer.provide(layerHandlers(options)),
    Layer.provide(ChatHandlers.layer(options)),
    Layer.provide(layerBearer(options.token))
  )

/** Serves `MonolithApi` (and `options.routes`) on the `HttpServer` in context, for as long as the layer lives. */
export const layerMonolith = (options: ServerOptions) => serve(options, layerMonolithApi(options))

const serve = <E, R>(options: ServerOptions, api: Layer.Layer<HttpApi.Api, E, R>) =>
  HttpApiBuilder.serve(limitBody(options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES)).pipe(
    Layer.provide(HttpApiScalar.layer({ path: "/docs" })),
    Layer.provide(layerRoutes(options.routes ?? [])),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(api)
  )

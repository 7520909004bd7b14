/**
 * The HTTP server of the API: routes, OpenAPI document (`/openapi.json`), a
 * browsable reference (`/docs`), all behind the bearer token but `/health`,
 * and the request limits of HttpGuard.ts.
 * Needs an `HttpServer` (plain or TLS), the component tags, `Tenancy` and
 * `AuditLog`, and who may call: `Auth.layerSingleUser(token)` (the monolith) or
 * `Auth.layerTenancy()` (tokens of orgs, through the `Tenancy` port), chosen by
 * the composition root.
 */
import { type HttpApi, HttpApiBuilder, HttpApiScalar, type HttpApp, type HttpServerRequest } from "@effect/platform"
import { Effect, Layer } from "effect"
import { MonolithApi, RelaviumApi } from "./Api.js"
import * as ChatHandlers from "./ChatHandlers.js"
import { layerHandlers } from "./Handlers.js"
import { guard } from "./HttpGuard.js"
import * as NotifyHandlers from "./NotifyHandlers.js"
import * as TenancyHandlers from "./TenancyHandlers.js"
import * as TriggerHandlers from "./TriggerHandlers.js"
import * as Webhooks from "./Webhooks.js"
import type { SseOptions } from "./Sse.js"

export { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_JSON_DEPTH } from "./HttpGuard.js"

export interface ServerOptions extends SseOptions {
  /** Larger request bodies are refused with 413 (default 1 MiB). */
  readonly maxBodyBytes?: number | undefined
  /** JSON bodies nested deeper are refused with 400 (default 64). */
  readonly maxJsonDepth?: number | undefined
  /** The user's price file (`prices.json`), listed by `GET /models` beside the shipped prices; none: the shipped list alone. */
  readonly pricesFile?: string | undefined
  /** `POST /projects` accepts only directories under this one (after resolving symlinks); none: anywhere allowed. */
  readonly projectsRoot?: string | undefined
  /** GET routes served beside the API on the same server, outside the OpenAPI document (the daemons' websocket). */
  readonly routes?: ReadonlyArray<ExtraRoute> | undefined
}

/** A route that is not part of the API: behind the same token (any role); it may check more itself. */
export interface ExtraRoute {
  readonly path: `/${string}`
  readonly handler: HttpApp.Default<never, HttpServerRequest.HttpServerRequest>
}

/**
 * The API implementation (no server). Serve it behind `HttpGuard.guard` (as `layer` does): the guard
 * resolves the caller, without which the `Authorization` middleware refuses every request.
 */
export const layerApi = (options: ServerOptions) =>
  HttpApiBuilder.api(RelaviumApi).pipe(
    Layer.provide(layerHandlers(options)),
    Layer.provide(TenancyHandlers.layer),
    Layer.provide(TriggerHandlers.layer),
    Layer.provide(NotifyHandlers.layer)
  )

const layerRoutes = (routes: ReadonlyArray<ExtraRoute>) =>
  HttpApiBuilder.Router.use((router) =>
    Effect.zipRight(Effect.forEach(routes, (route) => router.get(route.path, route.handler), { discard: true }), Webhooks.route(router))
  )

/** Serves the API (and `options.routes`) on the `HttpServer` in context, for as long as the layer lives. */
export const layer = (options: ServerOptions) => serve(options, layerApi(options))

/** `MonolithApi` (every route of the API and the chats; needs `ChatService` too). */
export const layerMonolithApi = (options: ServerOptions) =>
  HttpApiBuilder.api(MonolithApi).pipe(
    Layer.provide(layerHandlers(options)),
    Layer.provide(ChatHandlers.layer(options)),
    Layer.provide(TenancyHandlers.layer),
    Layer.provide(TriggerHandlers.layer),
    Layer.provide(NotifyHandlers.layer)
  )

/** Serves `MonolithApi` (and `options.routes`) on the `HttpServer` in context, for as long as the layer lives. */
export const layerMonolith = (options: ServerOptions) => serve(options, layerMonolithApi(options))

const serve = <E, R>(options: ServerOptions, api: Layer.Layer<HttpApi.Api, E, R>) =>
  HttpApiBuilder.serve(guard(options)).pipe(
    Layer.provide(HttpApiScalar.layer({ path: "/docs" })),
    Layer.provide(layerRoutes(options.routes ?? [])),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(api)
  )

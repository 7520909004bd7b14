/**
 * The managed inference gateway (`relavium server inference`, docs/inference.md): a stateless
 * process serving the OpenAI-compatible API of @relavium/inference for the orgs of Postgres.
 *
 * - Postgres (as the application role or the operator; the schema is verified, never migrated
 *   here): the orgs' API tokens (`SqlTenancy`) and their managed provider keys, envelope
 *   encrypted per org (`SqlKeyStore`, read under the caller's org); master keys are required.
 * - The upstream: @relavium/llm's adapters over undici, for the providers of the routes file.
 * - Metering: the shared SQL ledger ({@link metering}); rate limits: {@link rateLimiter}, none yet
 *   (moving it to the Redis limiter is one line).
 */
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, type Option, Redacted } from "effect"
import { createServer } from "node:http"
import { Gateway, layerRateLimiterNone, SqlMetering, type Metering, type RateLimiter, type Routing } from "@relavium/inference"
import { HttpGuard } from "@relavium/server"
import { Database, SqlKeyStore, SqlTenancy } from "@relavium/store"
import type { MasterKeySettings } from "./Settings.js"

export interface InferenceOptions {
  readonly databaseUrl: Redacted.Redacted<string>
  /** Where the shared rate-limit counters live (the Redis limiter); none: no rate limits. */
  readonly redisUrl: Option.Option<Redacted.Redacted<string>>
  readonly host: string
  readonly port: number
  readonly routes: Routing.Routes
  readonly masterKey: MasterKeySettings
  readonly maxBodyBytes?: number | undefined
  readonly timeouts?: HttpGuard.ServerTimeouts | undefined
}

/** The ledger and budgets: the shared SQL ledger on the deployment's Postgres (migration 8). */
export const metering: Layer.Layer<Metering, never, Postgres> = SqlMetering.layer

/** What the deployment's Postgres provides (its `SqlClient`). */
type Postgres = Layer.Layer.Success<ReturnType<typeof Database.layerPg>>

/** The rate limiter: none until the Redis limiter is wired here (on `redisUrl`). */
export const rateLimiter = (_redisUrl: Option.Option<Redacted.Redacted<string>>): Layer.Layer<RateLimiter> => layerRateLimiterNone

/** What the start-up lines say about metering and rate limits. */
export const describeMetering = "budgets and the usage ledger in Postgres; rate limits: none"

/** The whole gateway on `host:port`, on Postgres. */
export const layerInference = (options: InferenceOptions) => {
  const postgres = Database.layerPg({ url: Redacted.make(Redacted.value(options.databaseUrl)), migrate: "verify" })
  return Gateway.layer({ routes: options.routes, maxBodyBytes: options.maxBodyBytes }).pipe(
    Layer.provide(Gateway.layerUpstream(options.routes).pipe(Layer.provide(NodeHttpClient.layerUndici))),
    Layer.provideMerge(NodeHttpServer.layer(() => createServer(HttpGuard.nodeServerOptions(options.timeouts)), { host: options.host, port: options.port })),
    Layer.provide(Layer.mergeAll(SqlTenancy.layer, SqlKeyStore.layerPgEncrypted(options.masterKey), metering).pipe(Layer.provide(postgres))),
    Layer.provide(rateLimiter(options.redisUrl))
  )
}

/** Reads and checks a routes file (JSON): the first problem, located, fails the start. */
export const readRoutes = (file: string) =>
  Effect.gen(function* () {
    const { Routing } = yield* Effect.promise(() => import("@relavium/inference"))
    const text = yield* Effect.tryPromise({
      try: () => import("node:fs/promises").then((fs) => fs.readFile(file, "utf8")),
      catch: (e) => `cannot read ${file}: ${(e as Error).message}`
    })
    return yield* Effect.mapError(Routing.parse(text, file), (e) => e.message)
  })

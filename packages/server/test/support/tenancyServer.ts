/**
 * A real HTTP server on loopback serving only the tenancy routes of
 * `RelaviumApi` (TenancyHandlers.layer) on the memory tenancy stores, for the
 * server's and the CLI's tests.
 *
 * Authentication here is a small stand-in for HttpGuard.ts: a bearer token is
 * accepted when `Tenancy.tokens.resolve` finds a live token, and its principal
 * is provided as `CurrentPrincipal`; the real `Authorization` middleware
 * (`layerAuthorization`) then refuses a caller without one (401) or whose role
 * the route's action does not allow (403).
 */
import { HttpApi, HttpApiBuilder, HttpServer, HttpServerRequest } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime, Option, Redacted } from "effect"
import { createServer } from "node:http"
import { CurrentPrincipal, layerTenancyMemory, Tenancy } from "@relavium/ports"
import { AuditGroup, MembersGroup, OrgGroup, TokensGroup } from "../../src/Api.js"
import { layerAuthorization } from "../../src/Auth.js"
import * as TenancyHandlers from "../../src/TenancyHandlers.js"

/** The tenancy groups under the API's own name, so the handler layers of `RelaviumApi` serve them. */
const TenancyOnlyApi = HttpApi.make("relavium").add(OrgGroup).add(MembersGroup).add(TokensGroup).add(AuditGroup)

const principalOf = (tenancy: Tenancy["Type"], token: Redacted.Redacted<string>) => tenancy.tokens.resolve(token).pipe(Effect.orDie)

/** Provides the caller's principal to every request that carries a live token. */
const layerTestPrincipal = HttpApiBuilder.middleware(
  Effect.map(Tenancy, (tenancy) => (app) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const bearer = /^Bearer (\S+)$/.exec(request.headers.authorization ?? "")
      const principal = bearer === null ? Option.none() : yield* principalOf(tenancy, Redacted.make(bearer[1]!))
      return yield* Option.isSome(principal) ? Effect.provideService(app, CurrentPrincipal, principal.value) : app
    })
  )
)

export interface TenancyServer {
  readonly url: string
  /** A new org and its first owner token. */
  readonly createOrg: (name: string, ownerEmail: string) => Promise<{ readonly orgId: string; readonly ownerToken: string }>
  readonly close: () => Promise<void>
}

export const startTenancyServer = async (): Promise<TenancyServer> => {
  const serve = HttpApiBuilder.serve().pipe(
    Layer.provide(layerTestPrincipal),
    Layer.provide(HttpApiBuilder.api(TenancyOnlyApi)),
    Layer.provide(TenancyHandlers.layer),
    Layer.provide(layerAuthorization),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
    Layer.provideMerge(layerTenancyMemory)
  )
  const runtime = ManagedRuntime.make(serve)
  const address = await runtime.runPromise(Effect.map(HttpServer.HttpServer, (server) => server.address))
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return {
    url: `http://127.0.0.1:${address.port}`,
    createOrg: (name, ownerEmail) =>
      runtime.runPromise(
        Effect.flatMap(Tenancy, (tenancy) => tenancy.createOrg(name, { email: ownerEmail })).pipe(
          Effect.map(({ org, token }) => ({ orgId: org.id, ownerToken: Redacted.value(token.token) }))
        )
      ),
    close: () => runtime.dispose()
  }
}

export interface Answer {
  readonly status: number
  readonly json: any
  readonly text: string
}

/** One request with an optional bearer token and JSON body. */
export const call = async (url: string, method: string, path: string, token: string | null, body?: unknown): Promise<Answer> => {
  const headers: Record<string, string> = {}
  if (token !== null) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await response.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, json, text }
}

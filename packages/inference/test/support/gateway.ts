/**
 * A gateway for one test file on 127.0.0.1: the fake upstream behind it, memory tenancy (two orgs
 * and their API tokens), an org-scoped memory key store (managed keys per org), memory metering,
 * a rate limiter the test can close, and every log line the process writes, captured.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { CurrentOrg, KeyStore, layerTenancyMemory, Tenancy } from "@relavium/ports"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Option, Redacted } from "effect"
import { createServer } from "node:http"
import { Gateway, layerMeteringMemory, Metering, RateLimited, RateLimiter, Routing } from "../../src/index.js"
import type { Upstream } from "./upstream.js"

/** Managed keys per org: what SqlKeyStore does on Postgres, in memory. */
export const orgKeyStore = (initial: Record<string, Record<string, string>>) =>
  Layer.sync(KeyStore, () => {
    const byOrg = new Map(Object.entries(initial).map(([org, keys]) => [org, new Map(Object.entries(keys))]))
    const of = (org: string) => {
      let keys = byOrg.get(org)
      if (keys === undefined) byOrg.set(org, (keys = new Map()))
      return keys
    }
    return KeyStore.of({
      get: (provider) => Effect.map(CurrentOrg, ({ orgId }) => Option.map(Option.fromNullable(of(orgId).get(provider)), Redacted.make)),
      set: (provider, key) => Effect.map(CurrentOrg, ({ orgId }) => void of(orgId).set(provider, Redacted.value(key))),
      remove: (provider) => Effect.map(CurrentOrg, ({ orgId }) => of(orgId).delete(provider)),
      list: Effect.map(CurrentOrg, ({ orgId }) => [...of(orgId).keys()].sort())
    })
  })

export interface Limiter {
  refuse: RateLimited | undefined
}

export const routesFor = (upstream: Upstream) => {
  const routes = Routing.parse(
    JSON.stringify({
      providers: { openai: { base_url: `${upstream.url}/v1` }, anthropic: { base_url: `${upstream.url}/v1` } },
      models: {
        "gpt-4o-mini": { provider: "openai", model: "gpt-4o-mini" },
        "gpt-4o": { provider: "openai", model: "gpt-4o" },
        "claude-sonnet": { provider: "anthropic", model: "claude-sonnet-4-5", max_output_tokens: 2048 },
        "house-model": { provider: "openai", model: "house-1", price: { input_usd_per_mtok: 1, output_usd_per_mtok: 2 } }
      },
      fallbacks: { "gpt-4o": ["house-model"] }
    }),
    "routes.json"
  )
  if (routes._tag === "Left") throw new Error(routes.left.message)
  return routes.right
}

export const MANAGED_OPENAI = "sk-managed-openai-org-a-0123456789"
export const MANAGED_ANTHROPIC = "sk-ant-managed-org-a-0123456789"

export const startGateway = async (upstream: Upstream, options: { readonly maxBodyBytes?: number } = {}) => {
  const logs: Array<string> = []
  const limiter: Limiter = { refuse: undefined }
  const capture = Logger.make(({ message }) => {
    logs.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
  })
  const routes = routesFor(upstream)
  const services = Layer.mergeAll(
    layerTenancyMemory,
    layerMeteringMemory,
    Layer.succeed(RateLimiter, {
      acquire: () => (limiter.refuse === undefined ? Effect.void : Effect.fail(limiter.refuse))
    })
  )
  const live = Gateway.layer({ routes, maxBodyBytes: options.maxBodyBytes }).pipe(
    Layer.provide(Gateway.layerUpstream(routes).pipe(Layer.provide(NodeHttpClient.layerUndici))),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
    Layer.provideMerge(orgKeyStore({})),
    Layer.provideMerge(services),
    Layer.provide(Logger.replace(Logger.defaultLogger, capture)),
    Layer.provide(Logger.minimumLogLevel(LogLevel.All))
  )
  const runtime = ManagedRuntime.make(live)
  const built = await runtime.runPromise(
    Effect.gen(function* () {
      const tenancy = yield* Tenancy
      const a = yield* tenancy.createOrg("acme", { email: "ada@acme.test" })
      const b = yield* tenancy.createOrg("globex", { email: "bob@globex.test" })
      const store = yield* KeyStore
      yield* store.set("openai", Redacted.make(MANAGED_OPENAI)).pipe(Effect.provideService(CurrentOrg, { orgId: a.org.id }))
      yield* store.set("anthropic", Redacted.make(MANAGED_ANTHROPIC)).pipe(Effect.provideService(CurrentOrg, { orgId: a.org.id }))
      // Org b holds an OpenAI key only.
      yield* store.set("openai", Redacted.make("sk-managed-openai-org-b-0123456789")).pipe(Effect.provideService(CurrentOrg, { orgId: b.org.id }))
      const server = yield* HttpServer.HttpServer
      const address = server.address
      if (address._tag !== "TcpAddress") throw new Error("not TCP")
      const viewer = yield* tenancy.tokens
        .create({ name: "viewer", role: "viewer", createdBy: "ada@acme.test" })
        .pipe(Effect.provideService(CurrentOrg, { orgId: a.org.id }))
      const member = yield* tenancy.tokens
        .create({ name: "ci", role: "member", createdBy: "ada@acme.test" })
        .pipe(Effect.provideService(CurrentOrg, { orgId: a.org.id }))
      return {
        url: `http://127.0.0.1:${address.port}`,
        orgA: a.org.id,
        orgB: b.org.id,
        tokenA: Redacted.value(a.token.token),
        tokenB: Redacted.value(b.token.token),
        memberTokenA: Redacted.value(member.token),
        memberTokenIdA: member.info.id,
        viewerTokenA: Redacted.value(viewer.token)
      }
    })
  )
  const metering = await runtime.runPromise(Metering)
  const ledger = (orgId: string) =>
    runtime.runPromise(metering.ledger(orgId, { from: "2000-01-01T00:00:00.000Z", to: "2999-01-01T00:00:00.000Z" }))
  return {
    ...built,
    logs,
    limiter,
    routes,
    ledger,
    setBudget: (orgId: string, setting: Parameters<typeof metering.setBudget>[1]) => runtime.runPromise(metering.setBudget(orgId, setting)),
    close: () => runtime.dispose()
  }
}

export const rateLimited = (retryAfterMs: number) =>
  new RateLimited({ scope: "org", limit: "requests", retryAfterMs, message: "requests per minute reached" })

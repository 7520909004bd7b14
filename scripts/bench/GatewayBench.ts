/**
 * (11) Gateway added latency, bundled apart (gateway.mjs): the managed inference gateway of
 * @relavium/inference in front of a fake OpenAI upstream on loopback (chat completions SSE with
 * usage, answered at once). Each sample is a pair, interleaved: the same request straight to the
 * upstream (its SSE read to the end), then through the gateway (a non-streamed completion: token
 * resolved, body decoded, route and managed key, rate limit, budget hold, upstream call, settle,
 * one log line). Figures: each path's latency, their difference per pair, and the gateway's own
 * `x-relavium-overhead-ms` header. Twice: on the memory layers of tenancy and keys (the gateway
 * alone), and on Postgres as `relavium server inference` runs (SqlTenancy resolving the token,
 * SqlKeyStore listing and decrypting the managed key, as the application role under row-level
 * security); metering in memory, no rate limiter either way. Targets (issue 17): ≤ 1 ms median,
 * ≤ 5 ms p99 added.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Duration, Effect, Layer, Logger, ManagedRuntime, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { createServer } from "node:http"
import { forOrg, KeyStore, Tenancy } from "@relavium/ports"
import { Gateway, layerMeteringMemory, layerRateLimiterNone } from "@relavium/inference"
import { Database, SqlKeyStore, SqlTenancy } from "@relavium/store"
import { openAiChat } from "../../packages/llm/test/fixtures/wire.js"
import { MANAGED_OPENAI, routesFor, startGateway } from "../../packages/inference/test/support/gateway.js"
import { startUpstream, type Upstream } from "../../packages/inference/test/support/upstream.js"
import { type BenchConfig, type Measurement, measured, type Outcome } from "./Harness.js"

const pgServer = () => process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432"

const onPgAdmin = <A>(f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(`${pgServer()}/postgres`), connectTimeout: Duration.seconds(3) }), f)).pipe(
    Effect.provide(Reactivity.layer)
  )

const messages = [{ role: "user", content: "Say hello to the world in two words." }]

/** Interleaved pairs, straight to the upstream then through the gateway at `url` with `token`. */
const measure = async (config: BenchConfig, upstream: Upstream, url: string, token: string, label: string, id: string) => {
  const direct = async () => {
    const t0 = performance.now()
    const response = await fetch(`${upstream.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer sk-direct", "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages, stream: true, stream_options: { include_usage: true } })
    })
    await response.text()
    return performance.now() - t0
  }
  const through = async () => {
    const t0 = performance.now()
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages })
    })
    await response.text()
    const ms = performance.now() - t0
    if (response.status !== 200) throw new Error(`the gateway answered ${response.status}`)
    return { ms, header: Number(response.headers.get("x-relavium-overhead-ms")) }
  }
  const warmups = config.quick ? 20 : 300
  const runs = (config.quick ? 50 : 2000) * config.repeat
  for (let i = 0; i < warmups; i++) {
    await direct()
    await through()
  }
  const directMs: Array<number> = []
  const gatewayMs: Array<number> = []
  const addedMs: Array<number> = []
  const headerMs: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const d = await direct()
    const g = await through()
    directMs.push(d)
    gatewayMs.push(g.ms)
    addedMs.push(g.ms - d)
    headerMs.push(g.header)
  }
  const figure = (name: string, what: string, samples: Array<number>, sampleIs: string): Measurement => ({
    id: `gateway.${id}.${name}`,
    label: `${label}: ${what}`,
    unit: "ms",
    samples,
    sampleIs,
    warmups
  })
  return [
    figure("direct", "straight to the fake upstream (SSE to the end)", directMs, "one request's wall time"),
    figure("through", "through the gateway (non-streamed completion)", gatewayMs, "one request's wall time"),
    figure("added", "added latency (through − direct, per pair)", addedMs, "one pair's difference"),
    figure("overhead-header", "x-relavium-overhead-ms", headerMs, "one response's header")
  ]
}

/** The gateway on a fresh Postgres database, as `relavium server inference` composes it (metering in memory). */
const onPostgres = async (config: BenchConfig, upstream: Upstream) => {
  const name = `relavium_bench_gw_${crypto.randomUUID().replaceAll("-", "")}`
  await Effect.runPromise(onPgAdmin((sql) => sql.unsafe(`CREATE DATABASE ${name}`)))
  const operatorUrl = `${pgServer()}/${name}`
  const app = new URL(operatorUrl)
  app.username = "relavium_app"
  app.password = ""
  const masterKey = Redacted.make(randomBytes(32).toString("base64"))
  try {
    // Migrated, with an org, its token and its managed key, by the operator.
    const token = await Effect.runPromise(
      Effect.gen(function* () {
        const created = yield* Effect.flatMap(Tenancy, (t) => t.createOrg("bench", { email: "bench@example.test" }))
        yield* Effect.flatMap(KeyStore, (k) => k.set("openai", Redacted.make(MANAGED_OPENAI))).pipe(forOrg(created.org.id))
        return Redacted.value(created.token.token)
      }).pipe(
        Effect.provide(
          Layer.mergeAll(SqlTenancy.layer, SqlKeyStore.layerPgEncrypted({ masterKey })).pipe(Layer.provide(Database.layerPg({ url: operatorUrl, migrate: "apply" })))
        )
      )
    )
    const routes = routesFor(upstream)
    const services = Layer.mergeAll(SqlTenancy.layer, SqlKeyStore.layerPgEncrypted({ masterKey })).pipe(
      Layer.provide(Database.layerPg({ url: app.toString(), migrate: "verify" }))
    )
    const runtime = ManagedRuntime.make(
      Gateway.layer({ routes }).pipe(
        Layer.provide(Gateway.layerUpstream(routes).pipe(Layer.provide(NodeHttpClient.layerUndici))),
        Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
        Layer.provide(Layer.mergeAll(services, layerMeteringMemory, layerRateLimiterNone)),
        // One log line per request, formatted and dropped (not written to this terminal).
        Layer.provide(Logger.replace(Logger.defaultLogger, Logger.map(Logger.logfmtLogger, () => undefined)))
      )
    )
    try {
      const address = (await runtime.runPromise(HttpServer.HttpServer)).address
      if (address._tag !== "TcpAddress") throw new Error("not TCP")
      return await measure(config, upstream, `http://127.0.0.1:${address.port}`, token, "Postgres", "postgres")
    } finally {
      await runtime.dispose()
    }
  } finally {
    await Effect.runPromise(onPgAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)))
  }
}


export const gatewayLatency = async (config: BenchConfig): Promise<Outcome> => {
  const upstream = await startUpstream()
  upstream.always({ frames: openAiChat.text("gpt-4o-mini") })
  try {
    const gateway = await startGateway(upstream)
    const memory = await measure(config, upstream, gateway.url, gateway.tokenA, "memory", "memory").finally(() => gateway.close())
    const postgres = await onPostgres(config, upstream)
    return measured(
      [...memory, ...postgres],
      [
        "one client, keep-alive, loopback; metering in memory, no rate limiter; targets: ≤ 1 ms median, ≤ 5 ms p99 added",
        "memory: tenancy and keys in memory (the gateway alone); Postgres: SqlTenancy and SqlKeyStore as the application role"
      ]
    )
  } finally {
    await upstream.close()
  }
}

/**
 * `relavium server inference` (handlers/ServerInference.ts): the managed inference gateway of
 * runtime/Inference.ts (docs/inference.md) until a signal stops it (exit 0). A missing or bad
 * setting (the routes file included) exits 2; Postgres unreachable exits 1.
 */
import { Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import * as Settings from "../runtime/Settings.js"
import { secretFlag } from "./Flags.js"

const inferenceConfig = {
  databaseUrl: secretFlag("database-url", Settings.databaseUrl, "Postgres (orgs, API tokens, managed keys): postgres://user[:password]@host:port/database"),
  redisUrl: secretFlag("redis-url", Settings.redisUrl, "Redis (the rate-limit counters shared by every gateway replica): redis://[user:password@]host:port[/db]"),
  routes: Options.file("routes", { exists: "yes" }).pipe(
    Options.withFallbackConfig(Settings.inferenceRoutes.config),
    Options.optional,
    Options.withDescription(`the routes file (JSON): models, their providers and prices, fallbacks (else ${Settings.inferenceRoutes.name}; docs/inference.md)`)
  ),
  host: Options.text("host").pipe(
    Options.withDefault("127.0.0.1"),
    Options.withDescription("the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 behind a load balancer)")
  ),
  port: Options.integer("port").pipe(Options.withDefault(7433), Options.withDescription("the port to listen on (0: any free port; the URL is printed)")),
  maxBodyBytes: Options.integer("max-body-bytes").pipe(
    Options.withDefault(4 * 1024 * 1024),
    Options.withDescription("larger request bodies are refused with 413 (default 4 MiB)")
  )
}

export const inference = Command.make("inference", inferenceConfig, lazy(() => import("../handlers/ServerInference.js"), (m) => m.inference)).pipe(
  Command.withDescription(
    "The managed inference gateway: an OpenAI-compatible API (POST /v1/chat/completions, GET /v1/models) for org API tokens, calling the providers with each org's managed keys, metered against its budgets"
  )
)

/** What the handler gets (handlers/ServerInference.ts). */
export interface InferenceArgs {
  readonly inference: Command.Command.ParseConfig<typeof inferenceConfig>
}

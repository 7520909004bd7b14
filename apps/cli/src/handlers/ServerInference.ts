/**
 * `relavium server inference`: the gateway of runtime/Inference.ts until a signal stops it
 * (exit 0). Flags in commands/ServerInference.ts. A missing setting, a bad routes file or missing
 * master keys exit 2 with one line saying what is wrong; Postgres unreachable exits 1.
 */
import { Console, Effect, Layer, Option, Redacted } from "effect"
import { endingOf, ExitCode, serverProcessErrors } from "../ExitCodes.js"
import { Misconfigured } from "../Problem.js"
import type { InferenceArgs } from "../commands/ServerInference.js"
import * as Settings from "../runtime/Settings.js"

const loadInference = () => import("../runtime/Inference.js")
const loadDeployment = () => import("../runtime/Deployment.js")

export const inference = (options: InferenceArgs["inference"]) =>
  Effect.gen(function* () {
    const missing = [
      Option.isNone(options.databaseUrl) ? "--database-url (or RELAVIUM_DATABASE_URL): orgs, tokens and managed keys live in Postgres" : undefined,
      Option.isNone(options.routes) ? `--routes (or ${Settings.inferenceRoutes.name}): the routes file` : undefined
    ].filter((m) => m !== undefined)
    if (missing.length > 0) return yield* new Misconfigured({ message: `missing ${missing.join("; ")}` })
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
      return yield* new Misconfigured({ message: `--port must be between 0 and 65535 (got ${options.port})` })
    }
    if (!Number.isInteger(options.maxBodyBytes) || options.maxBodyBytes < 1024) {
      return yield* new Misconfigured({ message: `--max-body-bytes must be at least 1024 (got ${options.maxBodyBytes})` })
    }
    const masterKey = yield* Settings.masterKey
    if (Option.isNone(masterKey)) {
      return yield* new Misconfigured({ message: "RELAVIUM_MASTER_KEYS (or RELAVIUM_MASTER_KEY) is required: managed keys are stored encrypted per org in Postgres" })
    }
    const runtime = yield* Effect.promise(loadInference)
    const cloud = yield* Effect.promise(loadDeployment)
    yield* cloud.checkMasterKey(masterKey).pipe(Effect.mapError((e) => new Misconfigured({ message: e.message })))
    const file = Option.getOrThrow(options.routes)
    const routes = yield* runtime.readRoutes(file).pipe(Effect.mapError((message) => new Misconfigured({ message })))
    const databaseUrl = Option.getOrThrow(options.databaseUrl)
    const announce = Layer.effectDiscard(
      Effect.gen(function* () {
        const { HttpServer } = yield* Effect.promise(() => import("@effect/platform"))
        const address = (yield* HttpServer.HttpServer).address
        const url = address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}` : `unix:${address.path}`
        yield* Console.log(
          [
            `relavium server inference: listening on ${url} (pid ${process.pid})`,
            `  API:      ${url}/v1 (OpenAI-compatible; Authorization: Bearer <org API token>)`,
            `  models:   ${[...routes.routes.keys()].join(", ")} (from ${file})`,
            `  Postgres: ${cloud.shownUrl("postgres", databaseUrl)}`,
            `  keys:     ${cloud.describeMasterKeys(masterKey.value)}`,
            `  metering: ${runtime.describeMetering}`
          ].join("\n")
        )
      })
    )
    return yield* Layer.launch(
      announce.pipe(
        Layer.provide(
          runtime.layerInference({
            databaseUrl: Redacted.make(Redacted.value(databaseUrl)),
            redisUrl: options.redisUrl,
            host: options.host,
            port: options.port,
            routes,
            masterKey: masterKey.value,
            maxBodyBytes: options.maxBodyBytes
          })
        )
      )
    )
  }).pipe(
    // SIGTERM/SIGINT interrupt the gateway: closing it in order is a clean stop.
    Effect.onInterrupt(() => Effect.sync(() => void (process.exitCode = ExitCode.ok))),
    Effect.catchAll((error) =>
      Effect.sync(() => {
        const message = error._tag === "ServeError" ? `cannot listen: ${String((error.cause as Error | undefined)?.message ?? error.cause)}` : error.message
        process.stderr.write(`relavium server inference: ${message}\n`)
        process.exitCode = endingOf(serverProcessErrors, error)?.exit ?? ExitCode.failed
      })
    )
  )

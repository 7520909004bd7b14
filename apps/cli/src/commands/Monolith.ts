/**
 * `relavium monolith`: the monolith (runtime/Monolith.ts) until a signal stops
 * it (exit 0); a start-up failure is one line on stderr and exit 1.
 */
import { Command, Options } from "@effect/cli"
import { Effect, Layer, Option } from "effect"
import { endingOf, ExitCode, monolithErrors, type MonolithProcessError } from "../ExitCodes.js"
import * as Settings from "../runtime/Settings.js"
import { cassetteOption, dataDirOption, tokenDelayOption, workspaceOption } from "./Flags.js"

const describe = (error: MonolithProcessError): string =>
  error._tag === "ServeError" ? `cannot listen: ${String((error.cause as Error | undefined)?.message ?? error.cause)}` : error.message

export const monolith = Command.make(
  "monolith",
  {
    dataDir: dataDirOption,
    host: Options.text("host").pipe(
      Options.withDefault("127.0.0.1"),
      Options.withDescription("the address to listen on (default 127.0.0.1: this machine only)")
    ),
    port: Options.integer("port").pipe(
      Options.withDefault(7430),
      Options.withDescription("the port to listen on (0: any free port; the URL is printed)")
    ),
    workspace: workspaceOption,
    cassette: cassetteOption,
    tokenDelayMs: tokenDelayOption,
    projectsRoot: Options.directory("projects-root", { exists: "yes" }).pipe(
      Options.optional,
      Options.withDescription("chat projects (POST /projects) must be directories under this one")
    ),
    requestTimeoutMs: Options.integer("request-timeout-ms").pipe(
      Options.withDefault(30_000),
      Options.withDescription("a request whose body has not arrived within this time gets 408 and is dropped")
    ),
    headersTimeoutMs: Options.integer("headers-timeout-ms").pipe(
      Options.withDefault(10_000),
      Options.withDescription("a client that has not sent its headers within this time gets 408 and is dropped")
    )
  },
  ({ cassette, dataDir, headersTimeoutMs, host, port, projectsRoot, requestTimeoutMs, tokenDelayMs, workspace }) =>
    Effect.flatMap(Settings.dataDir(dataDir), (dir) =>
      // The HTTP stack, certificates and API docs are loaded only for this command.
      Effect.flatMap(Effect.promise(() => import("../runtime/Monolith.js")), ({ monolithLayer }) => Layer.launch(
        monolithLayer({
          dataDir: dir,
          host,
          port,
          workspace: Option.getOrUndefined(workspace),
          cassette: Option.getOrUndefined(cassette),
          tokenDelayMs,
          projectsRoot: Option.getOrUndefined(projectsRoot),
          timeouts: { requestTimeoutMs, headersTimeoutMs }
        })
      ))
    ).pipe(
      // SIGTERM/SIGINT interrupt the server: closing it in order is a clean stop.
      Effect.onInterrupt(() => Effect.sync(() => void (process.exitCode = 0))),
      Effect.catchAll((e: MonolithProcessError) =>
        Effect.sync(() => {
          process.stderr.write(`relavium monolith: ${describe(e)}\n`)
          process.exitCode = endingOf(monolithErrors, e)?.exit ?? ExitCode.failed
        })
      )
    )
).pipe(
  Command.withDescription(
    "Serve the HTTP API (HTTPS, bearer token), live run events (SSE), the engine, workers and tools daemon in one process"
  )
)

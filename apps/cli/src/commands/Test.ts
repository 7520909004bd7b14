/**
 * `relavium test [PATH…]`: runs the scenario files of users' own workflows offline
 * (docs/testing-workflows.md); what it does is in handlers/Test.ts.
 */
import { Args, Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"

const testConfig = {
  paths: Args.path({ name: "path", exists: "either" }).pipe(
    Args.repeated,
    Args.withDescription("scenario files, or directories searched for *.scenario.yaml (default: the current directory)")
  ),
  json: Options.boolean("json").pipe(Options.withDescription("print the report as one JSON object on stdout")),
  junit: Options.file("junit").pipe(Options.optional, Options.withDescription("also write the report as JUnit XML to this file"))
}

export type TestArgs = Command.Command.ParseConfig<typeof testConfig>

export const test = Command.make(
  "test",
  testConfig,
  lazy(() => import("../handlers/Test.js"), (m) => m.test)
).pipe(
  Command.withDescription(
    "Run the scenarios of *.scenario.yaml files offline (no key, no network) and report which pass; exit 1 when one fails, 2 for a bad file"
  )
)

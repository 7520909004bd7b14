/**
 * `relavium run` and `relavium validate`: their flags here, what they do in
 * handlers/Run.ts and handlers/Validate.ts (loaded when the command runs).
 */
import { Args, Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import { caOption, cassetteOption, dataDirOption, serverOption, tokenDelayOption, tokenOption, workspaceOption } from "./Flags.js"

const runConfig = {
  file: Args.file({ name: "file", exists: "either" }).pipe(Args.withDescription("the workflow YAML (*.relavium.yaml) to run")),
  input: Options.keyValueMap("input").pipe(
    Options.withAlias("i"),
    Options.optional,
    Options.withDescription("an input value, name=value; repeat for each input (values are coerced to the declared type)")
  ),
  json: Options.boolean("json").pipe(
    Options.withDescription("print only run events, one JSON object per line (NDJSON), on stdout")
  ),
  cassette: cassetteOption,
  recordCassette: Options.file("record-cassette").pipe(
    Options.optional,
    Options.withDescription("record the run's model calls into this cassette file, for --cassette or a scenario to replay (no key or header is recorded)")
  ),
  tokenDelayMs: tokenDelayOption,
  mode: Options.choice("mode", ["local", "managed"]).pipe(
    Options.optional,
    Options.withDescription(
      "local: call the providers with your keys; managed: send every model call to the Relavium gateway (RELAVIUM_GATEWAY_URL, RELAVIUM_GATEWAY_TOKEN) and read no key (default: $RELAVIUM_MODE, else local)"
    )
  ),
  dataDir: dataDirOption,
  workspace: workspaceOption,
  server: serverOption,
  token: tokenOption,
  ca: caOption
}

export type RunArgs = Command.Command.ParseConfig<typeof runConfig>

export const run = Command.make(
  "run",
  runConfig,
  lazy(() => import("../handlers/Run.js"), (m) => m.run)
).pipe(Command.withDescription(
    "Run a workflow on this machine (or on a monolith with --server) and stream its progress (runs are stored: see `runs`, `resume`, `gate`)"
  ))

export const validate = Command.make(
  "validate",
  {
    file: Args.file({ name: "file", exists: "either" }).pipe(Args.withDescription("the workflow YAML to check")),
    json: Options.boolean("json").pipe(Options.withDescription("print the result as JSON"))
  },
  lazy(() => import("../handlers/Validate.js"), (m) => m.validate)
).pipe(Command.withDescription("Check a workflow without running it"))

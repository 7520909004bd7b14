/**
 * `relavium keys set <provider> | list | rm <provider>` — provider API keys on this machine;
 * `relavium keys rotate-master | rotate <org> --database-url URL` — rotation of the
 * distributed mode's encrypted keys in Postgres (handlers/Keys.ts, loaded when they run; see
 * docs/security/keys.md).
 *
 * Layers needed: `KeyStore` (locally `KeyStores.layerKeychain()` from
 * @relavium/keys, which itself needs `FileSystem`) and `Terminal` for the
 * hidden prompt (both `FileSystem` and `Terminal` come with
 * `NodeContext.layer`). A key is read from stdin when stdin is not a
 * terminal, otherwise from a hidden prompt — never from argv — and is
 * `Redacted` from there to the store. `list` prints names, never values.
 */
import { Args, Command, Options, Prompt } from "@effect/cli"
import { lazy } from "../Lazy.js"
import { secretFlag } from "./Flags.js"
import { KeyStore } from "@relavium/ports"
import { KeyStores } from "@relavium/keys"
import { Console, Effect, Layer, Redacted } from "effect"
import { keysLayer } from "../runtime/Keys.js"
import * as Settings from "../runtime/Settings.js"

const envVarFor = KeyStores.envVarFor

const providerArg = Args.text({ name: "provider" }).pipe(
  Args.withDescription("the provider: anthropic, openai, gemini, deepseek, openai-compatible, openrouter, …")
)
const jsonOption = Options.boolean("json").pipe(Options.withDescription("print JSON"))

const readStdin = Effect.async<string>((resume) => {
  let text = ""
  process.stdin.setEncoding("utf8")
  process.stdin.on("data", (chunk) => (text += chunk))
  process.stdin.on("end", () => resume(Effect.succeed(text)))
  process.stdin.on("error", () => resume(Effect.succeed(text)))
})

const failWith = (message: string) =>
  Effect.sync(() => {
    process.stderr.write(`relavium: ${message}\n`)
    process.exitCode = 2
  })

const setCommand = Command.make("set", { provider: providerArg }, ({ provider }) =>
  Effect.gen(function* () {
    const keys = yield* KeyStore
    const value: Redacted.Redacted<string> = process.stdin.isTTY
      ? yield* Prompt.hidden({ message: `API key for ${provider} (input hidden)` })
      : Redacted.make((yield* readStdin).trim())
    if (Redacted.value(value).trim() === "") return yield* failWith(`no key given for ${provider} (pipe it on stdin or type it at the prompt)`)
    yield* keys.set(provider, Redacted.make(Redacted.value(value).trim())).pipe(
      Effect.matchEffect({
        onFailure: (e) => failWith(e.message),
        onSuccess: () => Console.log(`stored the ${provider} key (${envVarFor(provider)} overrides it when set)`)
      })
    )
  })
).pipe(Command.withDescription("Store a provider API key, read from stdin or a hidden prompt (never from the command line)"))

const listCommand = Command.make("list", { json: jsonOption }, ({ json }) =>
  Effect.gen(function* () {
    const keys = yield* KeyStore
    yield* keys.list.pipe(
      Effect.matchEffect({
        onFailure: (e) => failWith(e.message),
        onSuccess: (names) =>
          Effect.gen(function* () {
            const listed = yield* Effect.forEach(names, (provider) =>
              Effect.map(Settings.providerKeyInEnvironment(provider), (fromEnvironment) => ({ provider, fromEnvironment }))
            )
            if (json) return yield* Console.log(JSON.stringify(listed))
            if (listed.length === 0) return yield* Console.log("no keys stored; add one with `relavium keys set <provider>`")
            yield* Console.log(listed.map((k) => (k.fromEnvironment ? `${k.provider}  (from ${envVarFor(k.provider)})` : k.provider)).join("\n"))
          })
      })
    )
  })
).pipe(Command.withDescription("List the providers that have a key (never the keys)"))

const rmCommand = Command.make("rm", { provider: providerArg }, ({ provider }) =>
  Effect.gen(function* () {
    const keys = yield* KeyStore
    yield* keys.remove(provider).pipe(
      Effect.matchEffect({
        onFailure: (e) => failWith(e.message),
        onSuccess: (removed) =>
          removed ? Console.log(`removed the ${provider} key`) : Console.log(`no stored key for ${provider}`)
      })
    )
  })
).pipe(Command.withDescription("Remove a stored provider API key"))

const local = Layer.unwrapEffect(Effect.map(Settings.dataDir(), keysLayer))

const rotationOptions = {
  databaseUrl: secretFlag("database-url", Settings.databaseUrl, "Postgres: postgres://user[:password]@host:port/database"),
  json: jsonOption
}

export type RotateMasterArgs = Command.Command.ParseConfig<typeof rotationOptions>
export type RotateOrgArgs = RotateMasterArgs & { readonly org: string }

const rotateMasterCommand = Command.make(
  "rotate-master",
  rotationOptions,
  lazy(() => import("../handlers/Keys.js"), (m) => m.rotateMaster)
).pipe(
  Command.withDescription(
    "Re-wrap every org's data keys under the current master key (the first of RELAVIUM_MASTER_KEYS; list the old one after it until this is done). Run as the database operator"
  )
)

const rotateOrgCommand = Command.make(
  "rotate",
  { ...rotationOptions, org: Args.text({ name: "org" }).pipe(Args.withDescription("the org id")) },
  lazy(() => import("../handlers/Keys.js"), (m) => m.rotateOrg)
).pipe(Command.withDescription("Issue a new data key for an org, re-seal its provider keys under it and retire the old one. Run as the database operator"))

export const keys = Command.make("keys").pipe(
  Command.withDescription(
    "Manage provider API keys (OS keychain, or a 0600 file where no keychain runs); rotate the distributed mode's encrypted keys"
  ),
  Command.withSubcommands([
    setCommand.pipe(Command.provide(local)),
    listCommand.pipe(Command.provide(local)),
    rmCommand.pipe(Command.provide(local)),
    rotateMasterCommand,
    rotateOrgCommand
  ])
)


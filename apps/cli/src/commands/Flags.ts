/**
 * Flags shared by the local commands (run, resume, runs, chat, monolith, …).
 * Where a flag has an environment fallback, it is the `Config` of
 * runtime/Settings.ts.
 */
import { Options } from "@effect/cli"
import type { Redacted } from "effect"
import * as Settings from "../runtime/Settings.js"

export const cassetteOption = Options.file("cassette").pipe(
  Options.withFallbackConfig(Settings.cassette),
  Options.optional,
  Options.withDescription("replay model calls from a recorded cassette (no key, no network); also RELAVIUM_CASSETTE")
)

export const tokenDelayOption = Options.integer("token-delay-ms").pipe(
  Options.withDefault(0),
  Options.withDescription("with a cassette: pause this long between streamed chunks, to watch a replay")
)

export const workspaceOption = Options.directory("workspace", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription("the directory agents' tools (files, commands, git) are confined to (default: the current directory)")
)

export const dataDirOption = Options.directory("data-dir").pipe(
  Options.optional,
  Options.withDescription("where runs are stored (default: $RELAVIUM_DATA_DIR, else ~/.local/share/relavium)")
)

/** A secret flag that falls back to its setting (`--token`, else `RELAVIUM_TOKEN`); `None` when neither is given. */
export const secretFlag = (flag: string, setting: Settings.Setting<Redacted.Redacted<string>>, description: string) =>
  Options.redacted(flag).pipe(
    Options.withFallbackConfig(setting.config),
    Options.optional,
    Options.withDescription(`${description} (else ${setting.name})`)
  )

/** A text flag that falls back to its setting, then to `fallback`. */
export const textFlag = (flag: string, setting: Settings.Setting<string>, fallback: string, description: string) =>
  Options.text(flag).pipe(
    Options.withFallbackConfig(setting.config),
    Options.withDefault(fallback),
    Options.withDescription(`${description} (else ${setting.name}; default ${fallback})`)
  )

/** Every command that can talk to a monolith: where it is, its token and the certificate to trust. */
export const serverOption = Options.text("server").pipe(
  Options.optional,
  Options.withDescription("talk to a running `relavium monolith` at this URL (e.g. https://127.0.0.1:7430) instead of the local database")
)

export const tokenOption = Options.redacted("token").pipe(
  Options.optional,
  Options.withDescription("with --server: the bearer token (default: $RELAVIUM_TOKEN, else <data-dir>/monolith.token)")
)

export const caOption = Options.file("ca", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription("with --server: a PEM certificate to trust (default for a loopback URL: <data-dir>/monolith-cert.pem)")
)

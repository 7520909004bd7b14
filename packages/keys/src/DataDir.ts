/**
 * Where Relavium keeps its data on this machine (the SQLite database, the
 * key file when no keychain runs, certificates). The CLI and every local
 * layer resolve it the same way: `--data-dir` flag, then `RELAVIUM_DATA_DIR`,
 * then the platform's convention.
 */
import * as os from "node:os"
import * as path from "node:path"
import { Config, Effect, Option } from "effect"

export interface DataDirSources {
  /** The `--data-dir` flag, when given. */
  readonly flag?: string | undefined
  /** Environment variables (default: `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** `process.platform` unless given (tests). */
  readonly platform?: NodeJS.Platform | undefined
  /** The home directory unless given (tests). */
  readonly homedir?: string | undefined
}

const nonEmpty = (value: string | undefined): value is string => value !== undefined && value.trim() !== ""

/**
 * flag > `RELAVIUM_DATA_DIR` > platform convention:
 * Linux and other Unix `$XDG_DATA_HOME/relavium` or `~/.local/share/relavium`;
 * macOS `~/Library/Application Support/relavium`; Windows `%APPDATA%\relavium`.
 */
export const resolveDataDir = (sources: DataDirSources = {}): string => {
  const env = sources.env ?? process.env
  const platform = sources.platform ?? process.platform
  const home = sources.homedir ?? os.homedir()
  const p = platform === "win32" ? path.win32 : path.posix
  if (nonEmpty(sources.flag)) return p.resolve(sources.flag)
  if (nonEmpty(env.RELAVIUM_DATA_DIR)) return p.resolve(env.RELAVIUM_DATA_DIR)
  switch (platform) {
    case "darwin":
      return p.join(home, "Library", "Application Support", "relavium")
    case "win32":
      return p.join(nonEmpty(env.APPDATA) ? env.APPDATA : p.join(home, "AppData", "Roaming"), "relavium")
    default:
      return p.join(nonEmpty(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : p.join(home, ".local", "share"), "relavium")
  }
}

/**
 * The same resolution, reading `RELAVIUM_DATA_DIR` and `XDG_DATA_HOME` /
 * `APPDATA` through Effect's `Config` (so a `ConfigProvider` can supply them).
 */
export const dataDir = (flag: Option.Option<string> = Option.none()) =>
  Effect.gen(function* () {
    const read = (name: string) => Config.option(Config.string(name)).pipe(Effect.map(Option.getOrUndefined))
    const env = {
      RELAVIUM_DATA_DIR: yield* read("RELAVIUM_DATA_DIR"),
      XDG_DATA_HOME: yield* read("XDG_DATA_HOME"),
      APPDATA: yield* read("APPDATA")
    }
    return resolveDataDir({ flag: Option.getOrUndefined(flag), env })
  }).pipe(Effect.orDie)

/** Where chat worktrees are created in the data directory `dataDir`. */
export const worktreesDir = (dataDir: string): string => path.join(dataDir, "worktrees")

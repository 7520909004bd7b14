/**
 * The data directory holds run data, chats, keys and tokens: every composition
 * that uses one creates it readable by its owner only (0700), and tightens a
 * directory it finds with a looser mode.
 */
import { Effect } from "effect"
import { chmodSync, mkdirSync, statSync } from "node:fs"

export class DataDirectoryError {
  readonly _tag = "DataDirectoryError"
  constructor(readonly message: string) {}
}

/** Creates `dir` (and its parents) with mode 0700, or brings an existing one to 0700. */
export const ensureSync = (dir: string): string => {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  if (process.platform !== "win32" && (statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700)
  return dir
}

export const ensure = (dir: string) =>
  Effect.try({
    try: () => ensureSync(dir),
    catch: (e) => new DataDirectoryError(`cannot create the data directory ${dir}: ${(e as Error).message}`)
  })

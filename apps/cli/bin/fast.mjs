// What `relavium` does before loading the CLI bundle: answers `--version` and `--help` from
// dist/answers.json (written by build.mjs by running the real CLI, so the answers are exactly what
// @effect/cli prints), and turns on Node's compile cache where Node has one.
import { readFileSync } from "node:fs"
import * as Module from "node:module"
import { homedir } from "node:os"
import { join } from "node:path"

/** The argument lists (one argument each) answered without the bundle. */
export const fastArguments = ["--version", "--help", "-h"]

/** Prints the prebuilt answer for `args` and returns true; false when there is none (or no build). */
export const answer = (args) => {
  if (args.length !== 1 || !fastArguments.includes(args[0])) return false
  let text
  try {
    text = JSON.parse(readFileSync(new URL("../dist/answers.json", import.meta.url), "utf8")).answers[args[0]]
  } catch {
    return false
  }
  if (typeof text !== "string") return false
  process.stdout.write(text)
  return true
}

/** The user's cache directory for relavium (XDG on Linux, the platform's convention elsewhere). */
export const cacheDir = () => {
  const env = process.env
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "relavium")
  if (process.platform === "darwin") return join(homedir(), "Library", "Caches", "relavium")
  if (process.platform === "win32" && env.LOCALAPPDATA) return join(env.LOCALAPPDATA, "relavium", "cache")
  return join(homedir(), ".cache", "relavium")
}

/**
 * Node 22.1+: V8 keeps the compiled code of the bundle's modules on disk, so later starts skip
 * parsing and compiling them. Off with NODE_DISABLE_COMPILE_CACHE=1; a cache that cannot be written
 * or read only costs the compile it would have saved.
 */
export const enableCompileCache = () => {
  if (typeof Module.enableCompileCache !== "function") return
  try {
    Module.enableCompileCache(join(cacheDir(), "compile-cache"))
  } catch {
    // No cache: the bundle is compiled as usual.
  }
}

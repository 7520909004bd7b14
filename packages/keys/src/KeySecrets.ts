/**
 * The `KnownSecrets` of a process: the values of every key the `KeyStore`
 * holds (stored keys and `RELAVIUM_<PROVIDER>_API_KEY` variables), so tool
 * output and model answers are scrubbed of them. Re-read at most every
 * `refresh` so a key set with `relavium keys set` while a server runs is
 * scrubbed too, without a keychain read on every model call.
 */
import * as Path from "node:path"
import { Duration, Effect, Layer, Option } from "effect"
import { KeyStore, KnownSecrets } from "@relavium/ports"
import { worktreesDir } from "./DataDir.js"
import { keyFilePath } from "./KeyStores.js"

export interface KeySecretsOptions {
  /** How long loaded values are reused (default 30 seconds). */
  readonly refresh?: Duration.DurationInput | undefined
}

/** `KnownSecrets` from the `KeyStore` in context. A store that cannot be read yields no values and a warning. */
export const layer = (options: KeySecretsOptions = {}): Layer.Layer<KnownSecrets, never, KeyStore> =>
  Layer.effect(
    KnownSecrets,
    Effect.gen(function* () {
      const store = yield* KeyStore
      const load = store.list.pipe(
        Effect.flatMap((providers) => Effect.forEach(providers, (provider) => store.get(provider))),
        Effect.map((found) => found.filter(Option.isSome).map((value) => value.value)),
        Effect.catchAll((error) =>
          Effect.as(Effect.logWarning(`known keys could not be loaded for scrubbing: ${error.message}`), [])
        )
      )
      const values = yield* Effect.cachedWithTTL(load, options.refresh ?? Duration.seconds(30))
      return KnownSecrets.of({ values })
    })
  )

/**
 * The paths a daemon serving `workspace` keeps out of its file tools' reach
 * (`DaemonOptions.excludedPaths`): the data directory and the key file. A chat
 * worktree lives inside the data directory (`DataDir.worktreesDir`) and holds
 * only the user's repository: the rest of the data directory lies outside that
 * workspace, where no file tool reaches anyway, so nothing is excluded
 * (excluding the data directory would exclude the whole worktree).
 */
export const excludedPaths = (dataDir: string, workspace: string): ReadonlyArray<string> => {
  const inside = Path.relative(Path.resolve(worktreesDir(dataDir)), Path.resolve(workspace))
  const isWorktree = inside !== "" && !inside.startsWith("..") && !Path.isAbsolute(inside)
  return isWorktree ? [] : [dataDir, keyFilePath(dataDir)]
}

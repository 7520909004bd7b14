/**
 * Command handlers loaded when their command runs. The command definitions (names, flags,
 * descriptions) are all in the entry module, since @effect/cli needs them to parse and to print
 * help; what a command does, and everything that pulls in (the engine, SQLite, the HTTP stack, the
 * distributed mode), is a separate module imported on first use (a chunk of its own in the bundle).
 */
import { Effect } from "effect"

export const lazy =
  <M, A, E, R>(load: () => Promise<M>, pick: (module: M) => (args: A) => Effect.Effect<void, E, R>) =>
  (args: A): Effect.Effect<void, E, R> =>
    Effect.flatMap(
      Effect.promise(load),
      (module) => pick(module)(args)
    )

/**
 * `withRemote` of Remote.ts, with the HTTP client (the API's schemas, undici, TLS) loaded only when
 * a command is given `--server`.
 */
import { Effect } from "effect"
import type * as Remote from "./Remote.js"

export const withRemote = <A, E, R>(
  options: Remote.RemoteOptions,
  use: (remote: Remote.Remote) => Effect.Effect<A, E, R>
): ReturnType<typeof Remote.withRemote<A, E, R>> =>
  Effect.flatMap(Effect.promise(() => import("./Remote.js")), (remote) => remote.withRemote(options, use))

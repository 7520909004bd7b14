/**
 * A `Socket` seen through: the same socket, with a hook on every message
 * received, a watchdog raced against each run, and an effect when a run ends
 * (closed, failed or interrupted). Both ends of a daemon's reverse connection
 * use it to notice a socket going away.
 */
import { Socket } from "@effect/platform"
import { Effect } from "effect"

export interface SocketHooks {
  /** Called on every message received. */
  readonly onMessage?: (() => void) | undefined
  /** Raced against each run: when it fails, the run ends with its error. */
  readonly watchdog?: Effect.Effect<never, Socket.SocketError> | undefined
  /** Runs when a run has ended, however it ended. */
  readonly onEnd?: Effect.Effect<unknown> | undefined
}

export const observeSocket = (socket: Socket.Socket, hooks: SocketHooks): Socket.Socket => {
  const runRaw = <_, E = never, R = never>(
    handler: (data: string | Uint8Array) => Effect.Effect<_, E, R> | void,
    options?: { readonly onOpen?: Effect.Effect<void> | undefined }
  ): Effect.Effect<void, Socket.SocketError | E, R> => {
    const running = socket.runRaw((data) => {
      hooks.onMessage?.()
      return handler(data)
    }, options)
    const watched = hooks.watchdog === undefined ? running : Effect.raceFirst(running, hooks.watchdog)
    return hooks.onEnd === undefined ? watched : Effect.ensuring(watched, hooks.onEnd)
  }
  const encoder = new TextEncoder()
  const run = <_, E = never, R = never>(
    handler: (data: Uint8Array) => Effect.Effect<_, E, R> | void,
    options?: { readonly onOpen?: Effect.Effect<void> | undefined }
  ) => runRaw((data) => handler(typeof data === "string" ? encoder.encode(data) : data), options)
  return { [Socket.TypeId]: Socket.TypeId, run, runRaw, writer: socket.writer }
}

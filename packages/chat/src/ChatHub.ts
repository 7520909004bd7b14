/**
 * Live fan-out of chat events to the followers of a chat. Best effort, like
 * `UpdateHub` for runs: the chat service stores every event before it
 * publishes it, and a follower joins the stored log with this live tail, so a
 * dropped or reordered delivery is filled from the store.
 */
import { Context, Effect, Layer, Queue, type Scope, Stream } from "effect"
import type { ChatEvent } from "./ChatEvent.js"

export class ChatHub extends Context.Tag("@relavium/chat/ChatHub")<
  ChatHub,
  {
    readonly publish: (events: ReadonlyArray<ChatEvent>) => Effect.Effect<void>
    /** Subscribes now (events published after this returns are seen) to one chat's events. */
    readonly subscribe: (chatId: string) => Effect.Effect<Stream.Stream<ChatEvent>, never, Scope.Scope>
  }
>() {
  /** In-process fan-out, routed by chat: a publish only touches its own chat's subscribers. */
  static readonly layerMemory: Layer.Layer<ChatHub> = Layer.scoped(
    ChatHub,
    Effect.gen(function* () {
      const subscribers = new Map<string, Set<Queue.Queue<ChatEvent>>>()
      yield* Effect.addFinalizer(() =>
        Effect.forEach([...subscribers.values()].flatMap((set) => [...set]), Queue.shutdown, { discard: true })
      )
      return ChatHub.of({
        publish: (events) =>
          Effect.sync(() => {
            for (const event of events) {
              const set = subscribers.get(event.chatId)
              if (set !== undefined) for (const queue of set) queue.unsafeOffer(event)
            }
          }),
        subscribe: (chatId) =>
          Effect.acquireRelease(
            Effect.flatMap(Queue.unbounded<ChatEvent>(), (queue) =>
              Effect.sync(() => {
                let set = subscribers.get(chatId)
                if (set === undefined) subscribers.set(chatId, (set = new Set()))
                set.add(queue)
                return queue
              })
            ),
            (queue) =>
              Effect.suspend(() => {
                const set = subscribers.get(chatId)
                set?.delete(queue)
                if (set?.size === 0) subscribers.delete(chatId)
                return Queue.shutdown(queue)
              })
          ).pipe(Effect.map((queue) => Stream.fromQueue(queue)))
      })
    })
  )
}

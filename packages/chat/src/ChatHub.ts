/**
 * Live fan-out of chat events to the followers of a chat. Best effort, like
 * `UpdateHub` for runs: the chat service stores every event before it
 * publishes it, and a follower joins the stored log with this live tail, so a
 * dropped or reordered delivery is filled from the store.
 */
import { Context, Effect, Layer, type Scope, type Stream } from "effect"
import { NumberedLog } from "@relavium/ports"
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
    Effect.map(NumberedLog.makeMemoryHub((event: ChatEvent) => event.chatId), (hub) => ChatHub.of(hub))
  )
}

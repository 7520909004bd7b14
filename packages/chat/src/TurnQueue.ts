/**
 * Where a chat's turns run. Without a `ChatTurnQueue` in context they run in
 * the process that claimed them (`relavium chat`, the monolith). With one (the
 * distributed deployment) the process that claims a turn — an api replica —
 * stores its start, then offers a `ChatTurn` job on the `RunQueue` (ids only);
 * a worker takes the claim over from it and runs the turn
 * (`ChatService.runTurnJob`, behind the `ChatTurnJobs` port the engine's
 * worker hands those jobs to). Workers also sweep for turns whose worker died
 * and settle them (`layerTurnJobs` in TurnJobs.ts).
 */
import { Context, Effect, Layer, type Scope, type Stream } from "effect"
import type { ChatTurnJob, QueueError } from "@relavium/ports"
import { RunQueue } from "@relavium/ports"

export class ChatTurnQueue extends Context.Tag("@relavium/chat/ChatTurnQueue")<
  ChatTurnQueue,
  { readonly offer: (job: Omit<ChatTurnJob, "_tag" | "orgId">) => Effect.Effect<void, QueueError> }
>() {
  /** Turns as `ChatTurn` jobs on the deployment's `RunQueue` (the offering fiber's org is stamped on each). */
  static readonly layerRunQueue: Layer.Layer<ChatTurnQueue, never, RunQueue> = Layer.effect(
    ChatTurnQueue,
    Effect.map(RunQueue, (queue) => ChatTurnQueue.of({ offer: (job) => queue.offer([{ _tag: "ChatTurn", ...job }]) }))
  )
}

/**
 * Cancelling a turn that runs in another process (a worker): a request names the chat, and every
 * process running chat turns hears it and stops the turn if it runs it there. Best effort, like the
 * hub: the turn rests at `turn:interrupted` in the chat's log once stopped.
 */
export class ChatCancels extends Context.Tag("@relavium/chat/ChatCancels")<
  ChatCancels,
  {
    readonly request: (chatId: string) => Effect.Effect<void>
    /** Subscribes now: every request made after this returns is seen. */
    readonly requests: Effect.Effect<Stream.Stream<string>, never, Scope.Scope>
  }
>() {}

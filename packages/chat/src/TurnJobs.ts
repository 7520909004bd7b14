/**
 * A worker's side of the chats of the distributed deployment: `ChatTurn` jobs
 * run on the chat service, and the sweep that settles the turns of workers
 * that died (see TurnQueue.ts).
 */
import { type Duration, Effect, Layer, Schedule } from "effect"
import { ChatTurnJobs } from "@relavium/ports"
import { ChatService } from "./ChatService.js"

export interface TurnJobsOptions {
  /**
   * How often the worker looks for turns whose process died (a claim of a dead process on this
   * host, or one silent for 30 s) and settles them: the partial answer is kept, a running tool call
   * gets an "interrupted" result (default 5 s).
   */
  readonly sweepEvery?: Duration.DurationInput | undefined
}

/** A worker's side: `ChatTurn` jobs run on the chat service, and the recovery sweep, for the layer's life. */
export const layerTurnJobs = (options: TurnJobsOptions = {}): Layer.Layer<ChatTurnJobs, never, ChatService> =>
  Layer.scoped(
    ChatTurnJobs,
    Effect.gen(function* () {
      const chats = yield* ChatService
      yield* chats.recover().pipe(
        Effect.tap((report) =>
          Effect.forEach(report.chats, (c) => Effect.logInfo(`chat ${c.chatId}: its turn's process stopped; the turn was settled as interrupted`), {
            discard: true
          })
        ),
        Effect.catchAll((e) => Effect.logWarning(`the sweep for interrupted chat turns failed: ${e.message}`)),
        Effect.repeat(Schedule.spaced(options.sweepEvery ?? "5 seconds")),
        Effect.interruptible,
        Effect.forkScoped
      )
      return ChatTurnJobs.of({ run: chats.runTurnJob })
    })
  )

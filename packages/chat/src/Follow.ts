/**
 * Following a chat's numbered event log: every stored event after a sequence
 * number, then the live tail, each once and in order (gaps filled from the
 * store by `NumberedLog.follow`).
 */
import { Effect, Either, Option, Stream } from "effect"
import { NumberedLog } from "@relavium/ports"
import { type ChatEvent, decodeChatEvent } from "./ChatEvent.js"
import { ChatStorageError, UnknownChat } from "./ChatError.js"
import { type ChatContext, storage, toEvent } from "./ChatContext.js"

export const makeFollow = ({ hub, store }: ChatContext) => {
  const follow = (chatId: string, after = -1): Stream.Stream<ChatEvent, UnknownChat | ChatStorageError> =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        yield* storage(store.getChat(chatId)).pipe(Effect.filterOrFail(Option.isSome, () => UnknownChat.of(chatId)))
        const read = (afterSeq: number) =>
          storage(store.events(chatId, afterSeq)).pipe(
            Effect.map((records) =>
              records.flatMap((r) => {
                const decoded = Either.try(() => decodeChatEvent(toEvent(r)))
                // Events of a type this build does not know are skipped (a newer writer).
                return Either.isRight(decoded) ? [decoded.right] : []
              })
            )
          )
        return NumberedLog.follow({ subscribe: hub.subscribe(chatId), read, seqOf: (event) => event.seq }, after)
      })
    )

  return { follow }
}

export type Follow = ReturnType<typeof makeFollow>

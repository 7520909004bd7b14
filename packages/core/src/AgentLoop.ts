/**
 * The agent loop, shared by workflow agent nodes and chats: call the model
 * (streamed through `ModelCall`, each coalesced batch persisted by the
 * caller), settle each tool call it asked for (ask the approval hook, then run
 * or deny it), checkpoint the completed turn, and go on until the model
 * answers without tool calls, a hook stops the loop (a failure, a gate, a
 * question to the user) or the turn limit is reached.
 *
 * The loop keeps no state of its own: `position` says where the conversation
 * stands, so a caller that stores its conversation (a chat) and one that keeps
 * it in memory (an agent node, recovered from its turn checkpoints) run the
 * same loop.
 */
import { Effect, Either, Option } from "effect"
import type { Llm } from "@relavium/domain"
import type { LlmProvider } from "@relavium/ports"
import * as ModelCall from "./ModelCall.js"

/** Where the conversation stands; `turn` counts model calls from 0. */
export type Position<Call, Answer> =
  /** The model answered without tool calls. */
  | { readonly _tag: "Answered"; readonly answer: Answer }
  /** The next model call is due. */
  | { readonly _tag: "CallModel"; readonly turn: number }
  /** The tool calls of model call `turn` that are still to settle, in the model's order. */
  | { readonly _tag: "Tools"; readonly turn: number; readonly calls: ReadonlyArray<Call> }

/** What the approval hook decided for one tool call. */
export type Decision<A> =
  | { readonly _tag: "Run" }
  | { readonly _tag: "Deny" }
  /** The hook settled the call itself (recorded it, or changed what it waits for); the loop reads the position again. */
  | { readonly _tag: "Settled" }
  /** The loop stops with `value` (the turn waits for a decision). */
  | { readonly _tag: "Stop"; readonly value: A }

export const Run: Decision<never> = { _tag: "Run" }
export const Deny: Decision<never> = { _tag: "Deny" }
export const Settled: Decision<never> = { _tag: "Settled" }
export const stop = <A>(value: A): Decision<A> => ({ _tag: "Stop", value })

/** A model call about to be made: the request, and how each streamed batch is persisted. */
export interface PreparedCall<E, R> {
  readonly request: Llm.LlmRequest
  readonly persist: (batch: ModelCall.Batch, parts: ReadonlyArray<ModelCall.Part>) => Effect.Effect<void, E, R>
}

export interface TurnLimit {
  /** Model calls allowed (turns 0 … modelCalls - 1). */
  readonly modelCalls: number
  /** Whether the tools asked for by the last allowed call still run (a chat: yes; a workflow agent: no, it fails at once). */
  readonly runToolsOfLastCall: boolean
}

export interface Hooks<Call, Answer, A, E, R> {
  readonly llm: LlmProvider["Type"]
  readonly turnLimit: TurnLimit
  readonly position: Effect.Effect<Position<Call, Answer>, E, R>
  /** Before a model call (budget gates, the request); `Left` stops the loop with that value. */
  readonly prepareCall: (turn: number) => Effect.Effect<Either.Either<PreparedCall<E, R>, A>, E, R>
  /** After a model call: usage and cost, failures, the answer or the tool calls; `Some` stops the loop. */
  readonly completeCall: (turn: number, result: ModelCall.ModelCall) => Effect.Effect<Option.Option<A>, E, R>
  /** Approval: a workflow follows its policy, a chat asks its user. */
  readonly approve: (call: Call) => Effect.Effect<Decision<A>, E, R>
  readonly runTool: (call: Call) => Effect.Effect<void, E, R>
  readonly deny: (call: Call) => Effect.Effect<void, E, R>
  /** After the tool calls of a model call are settled. */
  readonly checkpoint: (turn: number) => Effect.Effect<void, E, R>
  readonly answered: (answer: Answer) => Effect.Effect<A, E, R>
  readonly turnLimitReached: Effect.Effect<A, E, R>
}

export const run = <Call, Answer, A, E, R>(hooks: Hooks<Call, Answer, A, E, R>): Effect.Effect<A, E, R> =>
  Effect.gen(function* () {
    const { modelCalls, runToolsOfLastCall } = hooks.turnLimit
    while (true) {
      const position = yield* hooks.position
      switch (position._tag) {
        case "Answered":
          return yield* hooks.answered(position.answer)
        case "CallModel": {
          if (position.turn >= modelCalls) return yield* hooks.turnLimitReached
          const prepared = yield* hooks.prepareCall(position.turn)
          if (Either.isLeft(prepared)) return prepared.left
          const result = yield* ModelCall.stream(hooks.llm, prepared.right.request, prepared.right.persist)
          const stopped = yield* hooks.completeCall(position.turn, result)
          if (Option.isSome(stopped)) return stopped.value
          break
        }
        case "Tools": {
          if (!runToolsOfLastCall && position.turn >= modelCalls - 1) return yield* hooks.turnLimitReached
          for (const call of position.calls) {
            const decision = yield* hooks.approve(call)
            switch (decision._tag) {
              case "Run":
                yield* hooks.runTool(call)
                break
              case "Deny":
                yield* hooks.deny(call)
                break
              case "Settled":
                break
              case "Stop":
                return decision.value
            }
          }
          yield* hooks.checkpoint(position.turn)
          break
        }
      }
    }
  })

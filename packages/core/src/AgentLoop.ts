/**
 * The agent loop, shared by workflow agent nodes and chats: call the model
 * (streamed through `ModelCall`, each coalesced batch persisted by the
 * caller), settle each tool call it asked for (ask the approval hook, then run
 * or deny it), checkpoint the completed turn, and go on until the model
 * answers without tool calls, a hook stops the loop (a failure, a gate, a
 * question to the user) or the turn limit is reached.
 *
 * Usage and cost are counted here, in one place: the loop prices every model
 * call (a failed one too: its tokens were consumed) with the model's price,
 * adds it to the running totals, and hands the hooks the call's charge and
 * the totals; callers report these figures and never add them up themselves.
 *
 * The loop keeps no state of its own: `position` says where the conversation
 * stands, so a caller that stores its conversation (a chat) and one that keeps
 * it in memory (an agent node, recovered from its turn checkpoints) run the
 * same loop.
 */
import { Effect, Either, Option } from "effect"
import { Cost, type Llm, type Tool } from "@relavium/domain"
import type { LlmProvider, ModelPricing } from "@relavium/ports"
import * as ModelCall from "./ModelCall.js"
import { countUsage, SpanName } from "./Telemetry.js"

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
  /** The call is not run; `reason` says why when a policy refused it (none: a person said no). */
  | { readonly _tag: "Deny"; readonly reason?: Tool.ToolError | undefined }
  /** The hook settled the call itself (recorded it, or changed what it waits for); the loop reads the position again. */
  | { readonly _tag: "Settled" }
  /** The loop stops with `value` (the turn waits for a decision). */
  | { readonly _tag: "Stop"; readonly value: A }

export const Run: Decision<never> = { _tag: "Run" }
export const Deny: Decision<never> = { _tag: "Deny" }
export const Settled: Decision<never> = { _tag: "Settled" }
export const stop = <A>(value: A): Decision<A> => ({ _tag: "Stop", value })
export const refuse = (reason: Tool.ToolError): Decision<never> => ({ _tag: "Deny", reason })

/** Tokens and cost counted so far. */
export interface Totals {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly costMicrocents: number
}

/** One model call as the loop counted it: its usage, its cost (0 when the model has no price) and the totals after it. */
export interface Charge {
  readonly usage: Llm.Usage
  readonly costMicrocents: number
  readonly priced: boolean
  readonly totals: Totals
}

/** What a model call is priced with, and where the totals stand before the next one. */
export interface Meter {
  readonly price: Option.Option<Cost.ModelPrice>
  readonly totals: Totals
}

export interface Metering<E, R> {
  readonly pricing: ModelPricing["Type"]
  /** The model every call is priced as (fallbacks included, as the price list cannot know which answered). */
  readonly provider: string
  readonly model: string
  /** The totals the loop starts from (what earlier turns or calls already counted). */
  readonly from: Effect.Effect<Totals, E, R>
}

/** Prices one call's usage and adds it to `totals`. */
export const charge = (price: Option.Option<Cost.ModelPrice>, totals: Totals, usage: Llm.Usage): Charge => {
  const costMicrocents = Option.isSome(price) ? Cost.costOf(price.value, usage) : 0
  return {
    usage,
    costMicrocents,
    priced: Option.isSome(price),
    totals: {
      inputTokens: totals.inputTokens + usage.inputTokens,
      outputTokens: totals.outputTokens + usage.outputTokens,
      costMicrocents: totals.costMicrocents + costMicrocents
    }
  }
}

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
  readonly metering: Metering<E, R>
  readonly turnLimit: TurnLimit
  readonly position: Effect.Effect<Position<Call, Answer>, E, R>
  /** Before a model call (budget gates, the request); `Left` stops the loop with that value. */
  readonly prepareCall: (turn: number, meter: Meter) => Effect.Effect<Either.Either<PreparedCall<E, R>, A>, E, R>
  /** After a model call, with what it cost: failures, the answer or the tool calls; `Some` stops the loop. */
  readonly completeCall: (turn: number, result: ModelCall.ModelCall, charge: Charge) => Effect.Effect<Option.Option<A>, E, R>
  /** Approval: a workflow follows its policy, a chat asks its user. */
  readonly approve: (call: Call) => Effect.Effect<Decision<A>, E, R>
  readonly runTool: (call: Call) => Effect.Effect<void, E, R>
  readonly deny: (call: Call, reason: Tool.ToolError | undefined) => Effect.Effect<void, E, R>
  /** After the tool calls of a model call are settled, with the totals so far. */
  readonly checkpoint: (turn: number, totals: Totals) => Effect.Effect<void, E, R>
  readonly answered: (answer: Answer, totals: Totals) => Effect.Effect<A, E, R>
  readonly turnLimitReached: Effect.Effect<A, E, R>
}

export const run = <Call, Answer, A, E, R>(hooks: Hooks<Call, Answer, A, E, R>): Effect.Effect<A, E, R> =>
  Effect.gen(function* () {
    const { modelCalls, runToolsOfLastCall } = hooks.turnLimit
    const { from, model, pricing, provider } = hooks.metering
    const price = yield* pricing.priceOf(provider, model)
    let totals = yield* from
    while (true) {
      const position = yield* hooks.position
      switch (position._tag) {
        case "Answered":
          return yield* hooks.answered(position.answer, totals)
        case "CallModel": {
          if (position.turn >= modelCalls) return yield* hooks.turnLimitReached
          const prepared = yield* hooks.prepareCall(position.turn, { price, totals })
          if (Either.isLeft(prepared)) return prepared.left
          const requestModel = prepared.right.request.model ?? model
          const [result, charged] = yield* Effect.gen(function* () {
            const result = yield* ModelCall.stream(hooks.llm, prepared.right.request, prepared.right.persist)
            const charged = charge(price, totals, result.usage)
            yield* Effect.annotateCurrentSpan({
              "gen_ai.usage.input_tokens": result.usage.inputTokens,
              "gen_ai.usage.output_tokens": result.usage.outputTokens,
              "gen_ai.response.finish_reasons": [result.stopReason],
              "relavium.cost_microcents": charged.costMicrocents,
              ...(result.failure === undefined ? {} : { "error.type": result.failure.kind })
            })
            yield* countUsage(provider, requestModel, result.usage.inputTokens, result.usage.outputTokens, charged.costMicrocents)
            return [result, charged] as const
          }).pipe(
            // GenAI semantic conventions: the provider and model asked for; never the prompt or the answer.
            Effect.withSpan(SpanName.modelCall, {
              kind: "client",
              attributes: {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": provider,
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": requestModel,
                "relavium.turn": position.turn
              }
            })
          )
          totals = charged.totals
          const stopped = yield* hooks.completeCall(position.turn, result, charged)
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
                yield* hooks.deny(call, decision.reason)
                break
              case "Settled":
                break
              case "Stop":
                return decision.value
            }
          }
          yield* hooks.checkpoint(position.turn, totals)
          break
        }
      }
    }
  })

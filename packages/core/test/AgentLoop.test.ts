/**
 * The shared agent loop drives its hooks in order: prepare, stream (each batch
 * persisted), complete, then approve → run or deny each tool call, then the
 * turn checkpoint; it stops on an answer, a hook's stop, or the turn limit
 * (with or without running the last call's tools). It counts usage and cost:
 * every call priced once, totals carried from where the caller says they stand.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Option, Stream } from "effect"
import { Cost, type Llm, Tool } from "@relavium/domain"
import { LlmProvider, ModelPricing } from "@relavium/ports"
import * as AgentLoop from "../src/AgentLoop.js"

/** $3 in / $15 out per million tokens. */
const priced = ModelPricing.of({
  priceOf: () => Effect.succeed(Option.some(new Cost.ModelPrice({ inputPerMTok: 300_000_000, outputPerMTok: 1_500_000_000 })))
})
const unpriced = ModelPricing.of({ priceOf: () => Effect.succeed(Option.none()) })
const zero: AgentLoop.Totals = { inputTokens: 0, outputTokens: 0, costMicrocents: 0 }

/** A model that asks for `toolTurns` rounds of one tool call each, then answers "done"; call n uses n+1 tokens each way. */
const scripted = (toolTurns: number) => {
  let calls = 0
  return LlmProvider.of({
    stream: () => {
      const turn = calls++
      const chunks: Array<Llm.StreamChunk> =
        turn < toolTurns
          ? [
              { type: "tool_call_start", id: `c${turn}`, name: turn % 2 === 0 ? "read" : "write" },
              { type: "tool_call_delta", id: `c${turn}`, argsJsonDelta: "{}" },
              { type: "stop", usage: { inputTokens: turn + 1, outputTokens: turn + 1 }, stopReason: "tool_use" }
            ]
          : [
              { type: "text_delta", text: "done" },
              { type: "stop", usage: { inputTokens: turn + 1, outputTokens: turn + 1 }, stopReason: "stop" }
            ]
      return Stream.fromIterable(chunks)
    }
  })
}

const request: Llm.LlmRequest = { provider: "test", model: "m", messages: [] }

const loop = (
  toolTurns: number,
  turnLimit: AgentLoop.TurnLimit,
  approve: (name: string) => AgentLoop.Decision<string>,
  metering: { readonly pricing?: ModelPricing["Type"]; readonly from?: AgentLoop.Totals } = {}
) => {
  const log: Array<string> = []
  const charges: Array<AgentLoop.Charge> = []
  const meters: Array<AgentLoop.Meter> = []
  const checkpoints: Array<AgentLoop.Totals> = []
  let final: AgentLoop.Totals | undefined
  let position: AgentLoop.Position<string, string> = { _tag: "CallModel", turn: 0 }
  const run = AgentLoop.run<string, string, string, never, never>({
    llm: scripted(toolTurns),
    metering: { pricing: metering.pricing ?? priced, provider: "test", model: "m", from: Effect.succeed(metering.from ?? zero) },
    turnLimit,
    position: Effect.sync(() => position),
    prepareCall: (turn, meter) =>
      Effect.sync(() => {
        log.push(`prepare ${turn}`)
        meters.push(meter)
        return Either.right({ request, persist: (batch) => Effect.sync(() => void log.push(`batch ${batch.items.length}`)) })
      }),
    completeCall: (turn, result, charge) =>
      Effect.sync(() => {
        log.push(`complete ${turn}`)
        charges.push(charge)
        position =
          result.toolCalls.length === 0
            ? { _tag: "Answered", answer: result.text }
            : { _tag: "Tools", turn, calls: result.toolCalls.map((c) => c.name) }
        return Option.none()
      }),
    approve: (call) => Effect.sync(() => approve(call)),
    runTool: (call) => Effect.sync(() => void log.push(`run ${call}`)),
    deny: (call, reason) => Effect.sync(() => void log.push(`deny ${call}${reason === undefined ? "" : `: ${reason.code}`}`)),
    checkpoint: (turn, totals) =>
      Effect.sync(() => {
        log.push(`checkpoint ${turn}`)
        checkpoints.push(totals)
        position = { _tag: "CallModel", turn: turn + 1 }
      }),
    answered: (answer, totals) =>
      Effect.sync(() => {
        final = totals
        return `answered ${answer}`
      }),
    turnLimitReached: Effect.succeed("turn limit")
  })
  return Effect.map(run, (outcome) => ({ outcome, log, charges, meters, checkpoints, final }))
}

describe("AgentLoop", () => {
  it.effect("runs or denies each tool call, checkpoints each turn and ends on the answer", () =>
    Effect.gen(function* () {
      const { log, outcome } = yield* loop(2, { modelCalls: 10, runToolsOfLastCall: false }, (name) =>
        name === "read" ? AgentLoop.Run : AgentLoop.Deny
      )
      assert.strictEqual(outcome, "answered done")
      assert.deepStrictEqual(log, [
        "prepare 0",
        "complete 0",
        "run read",
        "checkpoint 0",
        "prepare 1",
        "complete 1",
        "deny write",
        "checkpoint 1",
        "prepare 2",
        "batch 1",
        "complete 2"
      ])
    })
  )

  it.effect("an approval hook that stops ends the loop before the tool runs", () =>
    Effect.gen(function* () {
      const { log, outcome } = yield* loop(1, { modelCalls: 10, runToolsOfLastCall: true }, () => AgentLoop.stop("waiting"))
      assert.strictEqual(outcome, "waiting")
      assert.deepStrictEqual(log, ["prepare 0", "complete 0"])
    })
  )

  it.effect("at the turn limit a workflow does not run the last call's tools; a chat does, then stops", () =>
    Effect.gen(function* () {
      const workflow = yield* loop(5, { modelCalls: 2, runToolsOfLastCall: false }, () => AgentLoop.Run)
      assert.strictEqual(workflow.outcome, "turn limit")
      assert.deepStrictEqual(workflow.log, ["prepare 0", "complete 0", "run read", "checkpoint 0", "prepare 1", "complete 1"])
      const chat = yield* loop(5, { modelCalls: 2, runToolsOfLastCall: true }, () => AgentLoop.Run)
      assert.strictEqual(chat.outcome, "turn limit")
      assert.deepStrictEqual(chat.log, [
        "prepare 0",
        "complete 0",
        "run read",
        "checkpoint 0",
        "prepare 1",
        "complete 1",
        "run write",
        "checkpoint 1"
      ])
    })
  )
})

describe("AgentLoop: usage and cost", () => {
  it.effect("prices each call once and hands the running totals to every hook, from where the caller's totals stand", () =>
    Effect.gen(function* () {
      const from = { inputTokens: 1000, outputTokens: 100, costMicrocents: 5_000 }
      const { charges, checkpoints, final, meters } = yield* loop(2, { modelCalls: 10, runToolsOfLastCall: false }, () => AgentLoop.Run, { from })
      // Call n used n+1 tokens in and out: (n+1) × 300 + (n+1) × 1,500 micro-cents.
      assert.deepStrictEqual(
        charges.map((c) => [c.usage.inputTokens, c.costMicrocents, c.priced]),
        [
          [1, 1_800, true],
          [2, 3_600, true],
          [3, 5_400, true]
        ]
      )
      assert.deepStrictEqual(charges.map((c) => c.totals.costMicrocents), [6_800, 10_400, 15_800])
      assert.deepStrictEqual(meters.map((m) => m.totals.costMicrocents), [5_000, 6_800, 10_400])
      assert.isTrue(meters.every((m) => Option.isSome(m.price)))
      assert.deepStrictEqual(checkpoints, [
        { inputTokens: 1001, outputTokens: 101, costMicrocents: 6_800 },
        { inputTokens: 1003, outputTokens: 103, costMicrocents: 10_400 }
      ])
      assert.deepStrictEqual(final, { inputTokens: 1006, outputTokens: 106, costMicrocents: 15_800 })
    })
  )

  it.effect("a model without a price counts its tokens at no cost, reported as unpriced", () =>
    Effect.gen(function* () {
      const { charges, final } = yield* loop(1, { modelCalls: 10, runToolsOfLastCall: false }, () => AgentLoop.Run, { pricing: unpriced })
      assert.deepStrictEqual(charges.map((c) => [c.costMicrocents, c.priced]), [[0, false], [0, false]])
      assert.deepStrictEqual(final, { inputTokens: 3, outputTokens: 3, costMicrocents: 0 })
    })
  )

  it.effect("a call refused by policy reaches the deny hook with the reason", () =>
    Effect.gen(function* () {
      const reason = new Tool.ToolError({ code: "tool_denied", message: "no" })
      const { log } = yield* loop(1, { modelCalls: 10, runToolsOfLastCall: false }, () => AgentLoop.refuse(reason))
      assert.include(log, "deny read: tool_denied")
    })
  )
})

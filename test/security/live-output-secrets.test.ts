/**
 * Live tool output (`tool:output`) keeps the guarantees of a tool's final
 * output: a known key a command prints is scrubbed from every chunk — even
 * when the command prints it in two writes far enough apart to land in two
 * chunks — and from the result; and what is forwarded live is bounded to the
 * model's 50 KiB, with a note, however much the command prints.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { CommandPattern, type RunEvent } from "@relavium/domain"
import { KnownSecrets } from "@relavium/ports"
import { layerLocal, MAX_LIVE_BYTES } from "../../packages/daemon/src/index.js"
import { tempDir } from "../../packages/daemon/test/support.js"
import { engineLayer, runToRest, scriptedModel, toolCall } from "../../packages/core/test/harness.js"
import { describeFindings, LeakScanner, textSecret } from "../support/leaks.js"

const KEY = "sk-ant-api03-LIVEKEY-0123456789abcdefghijklmnop"
const HALF = 20

/** A workflow whose agent may run exactly `sh -c SCRIPT`, and a model that runs it once then answers. */
const runScript = (script: string) =>
  Effect.gen(function* () {
    const args = ["-c", script]
    const model = scriptedModel([
      toolCall("c1", "run_command", { command: "sh", args }),
      [
        { type: "text_delta", text: "done" },
        { type: "stop", stopReason: "stop", usage: { inputTokens: 10, outputTokens: 5 } }
      ]
    ])
    const engine = engineLayer({ model: model.layer, router: layerLocal({ workspace: tempDir("relavium-live-secrets-") }) }).pipe(
      Layer.provideMerge(KnownSecrets.layerMemory([KEY]))
    )
    const workflow = `schema_version: '1.0'
workflow:
  id: live-secrets
  tools:
    allowedCommands: [${JSON.stringify(CommandPattern.exactLine("sh", args))}]
  agents:
    - { id: helper, provider: anthropic, model: claude-sonnet-4, system_prompt: 'You help.', tools: [run_command] }
  nodes:
    - { id: work, type: agent, agent_ref: helper, prompt_template: 'Run it.' }
    - { id: out, type: output }
  edges:
    - { from: work, to: out }
`
    const { events } = yield* runToRest(workflow).pipe(Effect.provide(engine))
    assert.strictEqual(events.at(-1)!.type, "run:completed")
    const chunks = events.flatMap((e) => (e.type === "tool:output" ? [e] : []))
    const result = events.find((e): e is RunEvent.RunEventOf<"agent:tool_result"> => e.type === "agent:tool_result")!
    return { events, chunks, result, model }
  })

describe("live tool output: secrets and bounds", () => {
  it.scopedLive("a known key a command prints across two chunks is scrubbed from every tool:output event and the result", () =>
    Effect.gen(function* () {
      // The key is only put together by the shell: the model's arguments never hold it whole.
      const script = `a=${KEY.slice(0, HALF)}; b=${KEY.slice(HALF)}; printf '%s' "key: $a"; sleep 0.3; printf '%s\\n' "$b"; echo after`
      const { events, chunks, result, model } = yield* runScript(script)
      assert.isAtLeast(chunks.length, 1)
      for (const chunk of chunks) assert.notInclude(chunk.text, KEY.slice(0, HALF), "no chunk carries even the start of the key")
      assert.strictEqual(chunks.map((c) => c.text).join(""), "key: [redacted secret]\nafter\n")
      assert.strictEqual(result.outputSummary, "key: [redacted secret]\nafter\n")
      const scanner = new LeakScanner([textSecret("live key", KEY)])
      assert.strictEqual(describeFindings(scanner.value("events", "run events", events)), "no leaks")
      assert.strictEqual(describeFindings(scanner.value("events", "requests to the model", model.requests)), "no leaks")
    }))

  it.scopedLive("a command printing 200 KB forwards at most 50 KiB live, then one note; the result is bounded as before", () =>
    Effect.gen(function* () {
      const line = "z".repeat(99)
      const { chunks, result } = yield* runScript(`i=0; while [ $i -lt 2000 ]; do echo ${line}; i=$((i+1)); done`)
      const last = chunks.at(-1)!
      assert.match(last.text, /\[live output truncated after 51200 bytes/)
      const forwarded = chunks.slice(0, -1).map((c) => c.text).join("")
      assert.strictEqual(Buffer.byteLength(forwarded), MAX_LIVE_BYTES)
      for (const chunk of chunks) assert.strictEqual(chunk.stream, "stdout")
      assert.isTrue(result.success)
      assert.isAtMost(result.outputSummary.length, 501)
    }))
})

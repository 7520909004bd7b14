/**
 * The long-running command of the live tool output tests (a shell loop
 * printing a line every 100 ms for 2 s), a workflow whose scripted agent
 * calls it, the cassette that plays that agent (and a chat doing the same),
 * and the check an SSE client's events must pass.
 *
 * The loop first prints `waiting` and waits (up to 15 s) for a file `go` in
 * its workspace, which the test creates only when its SSE client has received
 * that first chunk; it then prints `gate: opened` (or `gate: closed` when the
 * file never came: the output was not live). So the client provably saw
 * output while the command ran, without measuring time.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { CommandPattern } from "@relavium/domain"

export const LOOP_ARGS = [
  "-c",
  "echo waiting; n=0; while [ ! -e go ] && [ $n -lt 300 ]; do sleep 0.05; n=$((n+1)); done; if [ -e go ]; then echo 'gate: opened'; else echo 'gate: closed'; fi; for i in $(seq 1 20); do echo line $i; sleep 0.1; done"
]
export const LOOP_LINE = CommandPattern.exactLine("sh", LOOP_ARGS)
export const LOOP_OUTPUT = `waiting\ngate: opened\n${Array.from({ length: 20 }, (_, i) => `line ${i + 1}\n`).join("")}`

/** Opens the loop's gate in `workspace` once `received` holds its first chunk; returns whether it did. */
export const openGateOn = (workspace: string, received: ReadonlyArray<Received>): boolean => {
  const first = received.some((e) => e.type === "tool:output" && String(e.data.text).includes("waiting"))
  if (first) writeFileSync(join(workspace, "go"), "")
  return first
}

/** A workflow with one agent node allowed to run exactly the loop. */
export const loopWorkflow = (id: string) => `schema_version: '1.0'
workflow:
  id: ${id}
  tools:
    allowedCommands: [${JSON.stringify(LOOP_LINE)}]
  agents:
    - id: runner
      provider: anthropic
      model: claude-sonnet-4
      max_tokens: 256
      system_prompt: You run commands with run_command.
      tools: [run_command]
  nodes:
    - id: run
      type: agent
      agent_ref: runner
      prompt_template: Run the loop.
    - { id: result, type: output }
  edges:
    - { from: run, to: result }
`

type Chunk = Record<string, unknown>

/** The two model calls of one agent (or chat turn): run the loop, then answer. */
export const loopCalls = (callId: string): Array<Array<Chunk>> => [
  [
    { type: "tool_call_start", id: callId, name: "run_command" },
    { type: "tool_call_delta", id: callId, argsJsonDelta: JSON.stringify({ command: "sh", args: LOOP_ARGS }) },
    { type: "tool_call_end", id: callId },
    { type: "stop", stopReason: "tool_use", usage: { inputTokens: 50, outputTokens: 10 } }
  ],
  [
    { type: "text_delta", text: "The loop printed 20 lines." },
    { type: "stop", stopReason: "stop", usage: { inputTokens: 80, outputTokens: 8 } }
  ]
]

export const loopCassette = (calls: ReadonlyArray<ReadonlyArray<Chunk>>) =>
  JSON.stringify({ schema_version: "1.0", provider: "anthropic", model: "claude-sonnet-4", calls })

interface Received {
  readonly type: string
  readonly data: { readonly [k: string]: unknown }
}

/**
 * What an SSE client received of the call `callId`: the `tool:output` chunks before the tool's
 * completed event (`agent:tool_result` or `tool:result`), and their text. Throws when the completed
 * event never came.
 */
export const liveChunksBefore = (events: ReadonlyArray<Received>, completedType: string, callId: string) => {
  const completedAt = events.findIndex(
    (e) => e.type === completedType && (e.data.toolId === callId || e.data.toolCallId === callId)
  )
  if (completedAt < 0) throw new Error(`no ${completedType} for ${callId} among ${events.map((e) => e.type).join(", ")}`)
  const chunks = events.slice(0, completedAt).filter((e) => e.type === "tool:output" && e.data.toolCallId === callId)
  const after = events.slice(completedAt).filter((e) => e.type === "tool:output" && e.data.toolCallId === callId)
  return { chunks, after, text: chunks.map((e) => String(e.data.text)).join("") }
}

import { describe, expect, it } from "vitest"
import type { RunEvent } from "@relavium/domain"
import { makeRenderer, plain } from "../src/Render.js"

const base = { runId: "r1", timestamp: "2026-01-01T00:00:00.000Z" }
let seq = 0
const event = (fields: Record<string, unknown>) => ({ ...base, sequenceNumber: seq++, ...fields }) as unknown as RunEvent.RunEvent

describe("the terminal renderer", () => {
  it("shows live tool output line by line under its call, joining chunks that end mid-line", () => {
    const render = makeRenderer(plain, "wf")
    const out = [
      event({ type: "agent:token", nodeId: "run", token: "Running it", model: "m" }),
      event({ type: "agent:tool_call", nodeId: "run", model: "m", toolId: "c1", toolName: "run_command", toolInput: { command: "make" } }),
      event({ type: "tool:output", nodeId: "run", toolCallId: "c1", stream: "stdout", text: "line 1\nline 2\npart" }),
      event({ type: "tool:output", nodeId: "run", toolCallId: "c1", stream: "stderr", text: "ial\n\nlast" }),
      event({ type: "agent:tool_result", nodeId: "run", toolId: "c1", success: true, outputSummary: "done" })
    ]
      .map(render)
      .join("")
    expect(out).toBe(
      [
        "  run │ Running it",
        '  ⚙ run_command {"command":"make"}',
        "  │ line 1",
        "  │ line 2",
        "  │ partial",
        "",
        "  │ last",
        "  ↳ done",
        ""
      ].join("\n")
    )
  })
})

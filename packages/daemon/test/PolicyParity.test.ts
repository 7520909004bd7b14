/**
 * What a workflow agent's approval hook refuses before calling a daemon
 * (`ToolPolicyCheck.denial`) is refused by the daemon too, with the same code
 * and message: the hook answers the model exactly as the daemon would have.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ToolPolicyCheck } from "@relavium/domain"
import type { ToolPolicy } from "../src/index.js"
import { isToolError, makeWorkspace, run, startDaemon } from "./support.js"

const cases: ReadonlyArray<{ readonly name: string; readonly args: unknown; readonly policy: ToolPolicy }> = [
  { name: "run_command", args: { command: "rm", args: ["-rf", "."] }, policy: {} },
  { name: "run_command", args: { command: "echo", args: ["hi"] }, policy: { allowedDomains: ["api.example.com"] } },
  { name: "run_command", args: { command: "echo" }, policy: { allowedCommands: [], allowedCommandGlobs: [] } },
  { name: "http_request", args: { url: "https://api.example.com/" }, policy: {} },
  { name: "http_request", args: { url: "https://evil.example.net/x" }, policy: { allowedDomains: ["api.example.com"] } },
  { name: "http_request", args: { url: "http://api.example.com/" }, policy: { allowedDomains: ["api.example.com"] } },
  { name: "http_request", args: { url: "https://u:p@api.example.com/" }, policy: { allowedDomains: ["api.example.com"] } },
  { name: "http_request", args: { url: "https://[::1]/", method: "GET" }, policy: { allowedDomains: ["api.example.com"] } }
]

describe("the workflow's grant and the daemon refuse alike", () => {
  it.scopedLive("every call the grant refuses, the daemon refuses with the same code and message", () =>
    Effect.gen(function* () {
      const daemon = yield* startDaemon({ workspace: makeWorkspace() })
      for (const { args, name, policy } of cases) {
        const refused = ToolPolicyCheck.denial({ tools: [name], policy }, name, args)
        assert.isDefined(refused, `${name} ${JSON.stringify(args)}`)
        const fromDaemon = yield* run(daemon, name, args, policy)
        assert.isTrue(isToolError(fromDaemon), JSON.stringify(fromDaemon))
        if (isToolError(fromDaemon)) assert.deepStrictEqual([fromDaemon.code, fromDaemon.message], [refused!.code, refused!.message])
      }
    }))

  it.effect("calls it cannot decide alone are left to the daemon", () =>
    Effect.sync(() => {
      const grant = { tools: ["run_command", "http_request", "read_file"], policy: { allowedCommandGlobs: ["echo *"], allowedDomains: ["api.example.com"] } }
      assert.isUndefined(ToolPolicyCheck.denial(grant, "run_command", { command: "rm", args: ["-rf", "."] }))
      assert.isUndefined(ToolPolicyCheck.denial(grant, "http_request", { url: "https://API.example.com./v1" }))
      assert.isUndefined(ToolPolicyCheck.denial(grant, "http_request", { url: "not a url" }))
      assert.isUndefined(ToolPolicyCheck.denial(grant, "read_file", { path: "../../etc/passwd" }))
      assert.isUndefined(ToolPolicyCheck.denial({ tools: ["run_command"], policy: undefined }, "run_command", { command: "rm" }))
      assert.strictEqual(ToolPolicyCheck.denial(grant, "write_file", { path: "x" })?.code, "tool_unavailable")
    }))
})

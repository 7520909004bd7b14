/**
 * Issue 14, findings 1 and 6, at the daemon: the search tools run in a worker with a time limit, so a
 * catastrophic regular expression is stopped and the event loop keeps turning; an invalid character
 * class is a tool error the model can correct; a FIFO is never opened by grep's walk, and grep on a
 * FIFO is a prompt tool error (the old code hung on it).
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { isToolError, makeWorkspace, run, startDaemon } from "../../packages/daemon/test/support.js"

const errorOf = (value: unknown) => {
  assert.isTrue(isToolError(value as never), `expected a tool error, got ${JSON.stringify(value)}`)
  return value as { readonly code: string; readonly message: string }
}

const outputOf = (value: unknown) => {
  assert.isFalse(isToolError(value as never), `expected a result, got ${JSON.stringify(value)}`)
  return (value as { readonly output: string }).output
}

describe("search tools", () => {
  it.scopedLive("an invalid character class is a tool_failed naming the argument, without a stack trace", () =>
    Effect.gen(function*() {
      const daemon = yield* startDaemon({ workspace: makeWorkspace({ "a.txt": "a\n" }) })
      for (const [tool, args, argument] of [
        ["glob", { pattern: "[z-a]" }, "pattern"],
        ["list_directory", { glob: "src/[z-a]*" }, "glob"],
        ["grep", { pattern: "a", glob: "[z-a]" }, "glob"]
      ] as const) {
        const error = errorOf(yield* run(daemon, tool, args))
        assert.strictEqual(error.code, "tool_failed", tool)
        assert.include(error.message, `bad arguments for ${tool}: ${argument}:`)
        assert.include(error.message, "is not a valid glob (Range out of order in character class)")
        assert.notMatch(error.message, /\n\s+at /)
      }
      // The honest forms still work.
      assert.strictEqual(outputOf(yield* run(daemon, "glob", { pattern: "[a-z].txt" })), "a.txt")
    }))

  it.scopedLive("a catastrophic regex is stopped at RELAVIUM_SEARCH_TIMEOUT_MS while the event loop keeps turning", () =>
    Effect.gen(function*() {
      const daemon = yield* startDaemon({ workspace: makeWorkspace({ "redos.txt": `${"a".repeat(40)}!\n` }) })
      yield* run(daemon, "grep", { pattern: "warm" }) // starts a worker outside the measurement
      const saved = process.env.RELAVIUM_SEARCH_TIMEOUT_MS
      process.env.RELAVIUM_SEARCH_TIMEOUT_MS = "1500"
      let last = Date.now()
      let worst = 0
      const timer = setInterval(() => {
        worst = Math.max(worst, Date.now() - last)
        last = Date.now()
      }, 5)
      const started = Date.now()
      const result = yield* run(daemon, "grep", { pattern: "^(a+)+$" }).pipe(
        Effect.ensuring(Effect.sync(() => {
          clearInterval(timer)
          if (saved === undefined) delete process.env.RELAVIUM_SEARCH_TIMEOUT_MS
          else process.env.RELAVIUM_SEARCH_TIMEOUT_MS = saved
        }))
      )
      const took = Date.now() - started
      const error = errorOf(result)
      assert.strictEqual(error.code, "tool_failed")
      assert.include(error.message, "grep was stopped after 1500 ms")
      assert.isAtLeast(took, 1400)
      assert.isBelow(took, 5000)
      assert.isBelow(worst, 250, `the event loop stalled for ${worst} ms`)
      // The pool replaced the killed worker.
      assert.strictEqual(outputOf(yield* run(daemon, "grep", { pattern: "a!$" })), `redos.txt:1: ${"a".repeat(40)}!`)
    }), 30_000)

  it.scopedLive("grep skips a FIFO in its walk and refuses one named directly, promptly", () =>
    Effect.gen(function*() {
      const root = makeWorkspace({ "notes.txt": "needle\n" })
      execFileSync("mkfifo", [Path.join(root, "pipe")])
      assert.isTrue(Fs.statSync(Path.join(root, "pipe")).isFIFO())
      const daemon = yield* startDaemon({ workspace: root })
      const started = Date.now()
      assert.strictEqual(outputOf(yield* run(daemon, "grep", { pattern: "needle" })), "notes.txt:1: needle")
      const error = errorOf(yield* run(daemon, "grep", { pattern: "needle", path: "pipe" }))
      assert.strictEqual(error.code, "tool_failed")
      assert.include(error.message, "not a regular file")
      assert.isBelow(Date.now() - started, 5000)
    }), 30_000)
})

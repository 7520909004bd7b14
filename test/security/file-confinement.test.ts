/**
 * Issue 14, finding 3 and the FIFO part of 6: file tools are confined without
 * check-then-use. A separate process swaps a workspace directory for a symlink
 * to an outside directory as fast as it can while the daemon reads and writes
 * through that directory: nothing outside is ever read or written. Writes to
 * a file with a second hard link are refused; FIFOs, sockets and devices are
 * refused promptly instead of hanging the process.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { ToolError, ToolResult } from "@relavium/ports"
import { isToolError, makeWorkspace, run, startDaemon, tempDir } from "../../packages/daemon/test/support.js"

const expectError = (value: ToolResult | ToolError, code: string, message?: RegExp) => {
  assert.isTrue(isToolError(value), `expected a ${code} tool error, got ${JSON.stringify(value)}`)
  const error = value as ToolError
  assert.strictEqual(error.code, code, error.message)
  if (message !== undefined) assert.match(error.message, message)
  return error
}

/** Flips `root/sub` between a real directory and a symlink to `outside`, until killed. */
const SWAPPER = `
const fs = require("node:fs")
const root = process.argv[1]
process.stdout.write("ready\\n")
for (;;) {
  try {
    fs.renameSync(root + "/sub", root + "/sub.dir")
    fs.renameSync(root + "/sub.link", root + "/sub")
    fs.renameSync(root + "/sub", root + "/sub.link")
    fs.renameSync(root + "/sub.dir", root + "/sub")
  } catch {}
}
`

const startSwapper = (root: string) =>
  Effect.acquireRelease(
    Effect.async<ChildProcess.ChildProcess>((resume) => {
      const child = ChildProcess.spawn(process.execPath, ["-e", SWAPPER, root], { stdio: ["ignore", "pipe", "inherit"] })
      child.stdout.once("data", () => resume(Effect.succeed(child)))
    }),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

describe("file confinement", () => {
  it.scopedLive(
    "a directory swapped for a symlink during 400 reads and 400 writes never leads outside",
    () =>
      Effect.gen(function* () {
        const outside = tempDir("relavium-outside-")
        Fs.writeFileSync(Path.join(outside, "x.txt"), "OUTSIDE")
        const root = makeWorkspace({ "sub/x.txt": "INSIDE" })
        Fs.symlinkSync(outside, Path.join(root, "sub.link"))
        const daemon = yield* startDaemon({ workspace: root })
        yield* startSwapper(root)

        let readsInside = 0
        let readsOutside = 0
        for (let i = 0; i < 400; i++) {
          const result = yield* run(daemon, "read_file", { path: "sub/x.txt" })
          if (isToolError(result)) continue
          if (result.output.includes("OUTSIDE")) readsOutside++
          else if (result.output === "INSIDE") readsInside++
        }
        let writesDone = 0
        for (let i = 0; i < 400; i++) {
          const path = i % 2 === 0 ? "sub/x.txt" : `sub/new-${i}.txt`
          const content = i % 2 === 0 ? "INSIDE" : `written ${i}`
          const result = yield* run(daemon, "write_file", { path, content })
          if (!isToolError(result)) writesDone++
        }

        assert.strictEqual(readsOutside, 0, "a read reached the outside directory")
        assert.deepStrictEqual(Fs.readdirSync(outside), ["x.txt"], "a write created a file outside the workspace")
        assert.strictEqual(Fs.readFileSync(Path.join(outside, "x.txt"), "utf8"), "OUTSIDE", "a write changed a file outside")
        // The honest use keeps working while the directory is in place.
        assert.isAbove(readsInside, 0)
        assert.isAbove(writesDone, 0)
      }),
    120_000
  )

  it.scopedLive(
    "a directory swapped for a symlink during 300 greps and recursive listings never shows what is outside",
    () =>
      Effect.gen(function* () {
        const outside = tempDir("relavium-outside-")
        Fs.writeFileSync(Path.join(outside, "outside-only.txt"), "OUTSIDE")
        Fs.writeFileSync(Path.join(outside, "x.txt"), "OUTSIDE")
        const root = makeWorkspace({ "sub/x.txt": "INSIDE" })
        Fs.symlinkSync(outside, Path.join(root, "sub.link"))
        const daemon = yield* startDaemon({ workspace: root })
        yield* startSwapper(root)

        let leaks = 0
        let honest = 0
        for (let i = 0; i < 300; i++) {
          const result =
            i % 2 === 0
              ? yield* run(daemon, "grep", { pattern: "SIDE" })
              : yield* run(daemon, "list_directory", { path: ".", recursive: true })
          if (isToolError(result)) continue
          if (result.output.includes("OUTSIDE") || result.output.includes("outside-only")) leaks++
          if (result.output.includes("INSIDE") || result.output.includes("sub/x.txt")) honest++
        }
        assert.strictEqual(leaks, 0, "a search or listing showed the outside directory")
        assert.isAbove(honest, 0)
      }),
    120_000
  )

  it.scopedLive("a write to a file with a second hard link is refused; the other link is unchanged", () =>
    Effect.gen(function* () {
      const outside = tempDir("relavium-outside-")
      const target = Path.join(outside, "target.txt")
      Fs.writeFileSync(target, "original")
      const root = makeWorkspace({ "plain.txt": "plain" })
      Fs.linkSync(target, Path.join(root, "linked.txt"))
      const daemon = yield* startDaemon({ workspace: root })

      expectError(yield* run(daemon, "write_file", { path: "linked.txt", content: "pwned" }), "tool_denied", /2 hard links/)
      expectError(yield* run(daemon, "write_file", { path: "linked.txt", content: "pwned", append: true }), "tool_denied", /hard links/)
      expectError(yield* run(daemon, "edit_file", { path: "linked.txt", old_string: "original", new_string: "pwned" }), "tool_denied", /hard links/)
      assert.strictEqual(Fs.readFileSync(target, "utf8"), "original")
      // A file with one link is written as before.
      const written = yield* run(daemon, "write_file", { path: "plain.txt", content: "changed" })
      assert.isFalse(isToolError(written))
      assert.strictEqual(Fs.readFileSync(Path.join(root, "plain.txt"), "utf8"), "changed")
    }))

  it.scopedLive("reading or writing a FIFO is a prompt tool error, and searches pass over it", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({ "notes.txt": "needle\n" })
      ChildProcess.execFileSync("mkfifo", [Path.join(root, "pipe")])
      const daemon = yield* startDaemon({ workspace: root })

      const started = Date.now()
      expectError(yield* run(daemon, "read_file", { path: "pipe" }), "tool_failed", /cannot read 'pipe'.*not a regular file \(a FIFO\)/)
      expectError(yield* run(daemon, "write_file", { path: "pipe", content: "x" }), "tool_failed", /cannot write 'pipe'.*not a regular file/)
      expectError(yield* run(daemon, "edit_file", { path: "pipe", old_string: "a", new_string: "b" }), "tool_failed", /not a regular file/)
      const found = yield* run(daemon, "grep", { pattern: "needle" })
      assert.isFalse(isToolError(found))
      assert.strictEqual((found as ToolResult).output, "notes.txt:1: needle")
      assert.isBelow(Date.now() - started, 5_000)
    }))

  it.scopedLive("sockets and devices are refused", () =>
    Effect.gen(function* () {
      const root = makeWorkspace()
      const server = Net.createServer()
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void server.listen(Path.join(root, "sock"), () => resume(Effect.void))),
        () => Effect.sync(() => server.close())
      )
      Fs.symlinkSync("/dev/zero", Path.join(root, "zero"))
      const daemon = yield* startDaemon({ workspace: root })

      expectError(yield* run(daemon, "read_file", { path: "sock" }), "tool_failed", /not a regular file \(a socket\)/)
      expectError(yield* run(daemon, "write_file", { path: "sock", content: "x" }), "tool_failed", /not a regular file \(a socket\)/)
      // A device is outside the workspace by construction; a link to one is refused before anything is opened.
      expectError(yield* run(daemon, "read_file", { path: "zero" }), "tool_denied", /outside the workspace/)
      expectError(yield* run(daemon, "read_file", { path: "/dev/zero" }), "tool_denied", /outside the workspace/)
    }))
})

import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { builtinNames, MAX_OUTPUT_BYTES, MAX_OUTPUT_LINES } from "../src/index.js"
import { isToolError, makeWorkspace, run, startDaemon, tempDir } from "./support.js"

const expectError = (value: unknown, code: string, pattern?: RegExp) => {
  assert.isTrue(isToolError(value as never), `expected a ToolError, got ${JSON.stringify(value)}`)
  const error = value as { code: string; message: string }
  assert.strictEqual(error.code, code, error.message)
  if (pattern) assert.match(error.message, pattern)
}
const expectOk = (value: unknown): string => {
  assert.isFalse(isToolError(value as never), `expected a result, got ${JSON.stringify(value)}`)
  const result = value as { output: string; isError?: boolean }
  assert.isFalse(result.isError === true, result.output)
  return result.output
}

describe("file tools", () => {
  it.scopedLive("every built-in tool has a JSON Schema for the model", () =>
    Effect.gen(function* () {
      const daemon = yield* startDaemon({ workspace: makeWorkspace() })
      const defs = yield* daemon.tools()
      assert.deepStrictEqual(
        defs.map((d) => d.name),
        ["read_file", "write_file", "edit_file", "list_directory", "glob", "grep", "run_command", "git_status", "git_commit", "http_request"]
      )
      assert.deepStrictEqual(builtinNames, defs.map((d) => d.name))
      const read = defs[0]!.parameters
      assert.strictEqual(read.type, "object")
      assert.deepStrictEqual(read.required, ["path"])
      assert.strictEqual(read.additionalProperties, false)
      const command = defs.find((d) => d.name === "run_command")!.parameters as { properties: Record<string, unknown> }
      assert.deepStrictEqual(Object.keys(command.properties), ["command", "args", "timeout_ms"])
    }))

  it.scopedLive("read_file, write_file (and append), edit_file", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({ "notes.txt": "hello\nworld\n" })
      const daemon = yield* startDaemon({ workspace: root })
      assert.strictEqual(expectOk(yield* run(daemon, "read_file", { path: "notes.txt" })), "hello\nworld\n")
      assert.match(expectOk(yield* run(daemon, "write_file", { path: "out/deep/new.txt", content: "one\n" })), /wrote 4 bytes to out\/deep\/new.txt/)
      expectOk(yield* run(daemon, "write_file", { path: "out/deep/new.txt", content: "two\n", append: true }))
      assert.strictEqual(Fs.readFileSync(Path.join(root, "out/deep/new.txt"), "utf8"), "one\ntwo\n")

      assert.match(expectOk(yield* run(daemon, "edit_file", { path: "notes.txt", old_string: "world", new_string: "there" })), /replaced 1 occurrence/)
      assert.strictEqual(Fs.readFileSync(Path.join(root, "notes.txt"), "utf8"), "hello\nthere\n")
    }))

  it.scopedLive("edit_file refuses a missing or ambiguous match and changes nothing", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({ "a.txt": "x = 1\nx = 1\ny = 2\n" })
      const daemon = yield* startDaemon({ workspace: root })
      expectError(yield* run(daemon, "edit_file", { path: "a.txt", old_string: "z = 3", new_string: "z = 4" }), "tool_failed", /was not found in 'a.txt'/)
      expectError(yield* run(daemon, "edit_file", { path: "a.txt", old_string: "x = 1", new_string: "x = 5" }), "tool_failed", /occurs 2 times in 'a.txt'.*replace_all/)
      assert.strictEqual(Fs.readFileSync(Path.join(root, "a.txt"), "utf8"), "x = 1\nx = 1\ny = 2\n")
      assert.match(expectOk(yield* run(daemon, "edit_file", { path: "a.txt", old_string: "x = 1", new_string: "x = 5", replace_all: true })), /replaced 2 occurrences/)
      assert.strictEqual(Fs.readFileSync(Path.join(root, "a.txt"), "utf8"), "x = 5\nx = 5\ny = 2\n")
      // $-patterns in the replacement are literal text.
      expectOk(yield* run(daemon, "edit_file", { path: "a.txt", old_string: "y = 2", new_string: "y = $&$1" }))
      assert.match(Fs.readFileSync(Path.join(root, "a.txt"), "utf8"), /y = \$&\$1/)
    }))

  it.scopedLive("list_directory (flat, recursive, glob), glob and grep", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({
        "README.md": "# demo\nTODO: write docs\n",
        "src/main.ts": "export const main = 1 // TODO main\n",
        "src/util/strings.ts": "export const s = 'todo lower'\n",
        "src/util/data.bin": "\u0000\u0001TODO",
        "node_modules/dep/index.js": "// TODO hidden\n"
      })
      Fs.symlinkSync("src", Path.join(root, "link"))
      const daemon = yield* startDaemon({ workspace: root })
      assert.strictEqual(expectOk(yield* run(daemon, "list_directory", { path: "." })), "README.md\nlink@\nnode_modules/\nsrc/")
      assert.strictEqual(
        expectOk(yield* run(daemon, "list_directory", { path: "src", recursive: true })),
        "main.ts\nutil/\nutil/data.bin\nutil/strings.ts"
      )
      assert.strictEqual(expectOk(yield* run(daemon, "list_directory", { path: "src", recursive: true, glob: "*.ts" })), "main.ts\nutil/strings.ts")
      assert.strictEqual(expectOk(yield* run(daemon, "glob", { pattern: "src/**/*.ts" })), "src/main.ts\nsrc/util/strings.ts")
      assert.strictEqual(expectOk(yield* run(daemon, "glob", { pattern: "*.{md,bin}" })), "README.md\nsrc/util/data.bin")
      assert.strictEqual(
        expectOk(yield* run(daemon, "grep", { pattern: "TODO" })),
        "README.md:2: TODO: write docs\nsrc/main.ts:1: export const main = 1 // TODO main"
      )
      assert.strictEqual(
        expectOk(yield* run(daemon, "grep", { pattern: "todo", ignore_case: true, path: "src", glob: "**/*.ts" })),
        "src/main.ts:1: export const main = 1 // TODO main\nsrc/util/strings.ts:1: export const s = 'todo lower'"
      )
      expectError(yield* run(daemon, "grep", { pattern: "(" }), "tool_failed", /pattern/)
    }))

  it.scopedLive("bad arguments are tool_failed with the path; unknown tools are tool_unavailable", () =>
    Effect.gen(function* () {
      const daemon = yield* startDaemon({ workspace: makeWorkspace() })
      expectError(yield* run(daemon, "read_file", {}), "tool_failed", /bad arguments for read_file: path: is missing/)
      expectError(yield* run(daemon, "write_file", { path: "a", content: 3 }), "tool_failed", /content: Expected string, actual 3/)
      expectError(yield* run(daemon, "read_file", { path: "a", mode: "x" }), "tool_failed", /mode: is unexpected/)
      expectError(yield* run(daemon, "rm_rf", { path: "." }), "tool_unavailable", /no tool named 'rm_rf'/)
      expectError(yield* daemon.tools(["read_file", "rm_rf"]).pipe(Effect.flip), "tool_unavailable", /rm_rf/)
      expectError(yield* run(daemon, "read_file", { path: "missing.txt" }), "tool_failed", /cannot read 'missing.txt'.*ENOENT/)
    }))

  it.scopedLive("output larger than the model limit is truncated to 50 KB / 2000 lines, marker included", () =>
    Effect.gen(function* () {
      const manyLines = Array.from({ length: 5000 }, (_, i) => `line ${i}`).join("\n")
      const wide = "x".repeat(200 * 1024)
      const root = makeWorkspace({ "lines.txt": manyLines, "wide.txt": wide })
      const daemon = yield* startDaemon({ workspace: root })
      const lines = expectOk(yield* run(daemon, "read_file", { path: "lines.txt" }))
      assert.strictEqual(lines.split("\n").length, MAX_OUTPUT_LINES)
      assert.match(lines, /^line 0\n/)
      assert.match(lines, /\[output truncated: \d+ bytes in 5000 lines; showing the first \d+ bytes \(1999 lines\)\]$/)
      const bytes = expectOk(yield* run(daemon, "read_file", { path: "wide.txt" }))
      assert.isAtMost(Buffer.byteLength(bytes), MAX_OUTPUT_BYTES)
      assert.match(bytes, /\[output truncated: 204800 bytes in 1 lines/)
    }))
})

describe("confinement", () => {
  it.scopedLive("refuses ../, absolute paths outside, and symlinks that lead outside", () =>
    Effect.gen(function* () {
      const outside = tempDir("relavium-outside-")
      Fs.writeFileSync(Path.join(outside, "secret.txt"), "secret")
      const root = makeWorkspace({ "inside.txt": "ok", "sub/file.txt": "sub" })
      Fs.symlinkSync("/etc", Path.join(root, "etc-link"))
      Fs.symlinkSync(Path.join(outside, "secret.txt"), Path.join(root, "secret-link"))
      Fs.symlinkSync(Path.join(outside, "not-yet.txt"), Path.join(root, "dangling"))
      Fs.symlinkSync("inside.txt", Path.join(root, "inner-link"))
      const daemon = yield* startDaemon({ workspace: root })

      expectError(yield* run(daemon, "read_file", { path: "../secret.txt" }), "tool_denied", /outside the workspace/)
      expectError(yield* run(daemon, "read_file", { path: "sub/../../secret.txt" }), "tool_denied")
      expectError(yield* run(daemon, "read_file", { path: "/etc/passwd" }), "tool_denied", /outside the workspace/)
      expectError(yield* run(daemon, "read_file", { path: Path.join(outside, "secret.txt") }), "tool_denied")
      expectError(yield* run(daemon, "read_file", { path: "etc-link/passwd" }), "tool_denied", /through a symlink/)
      expectError(yield* run(daemon, "list_directory", { path: "etc-link" }), "tool_denied")
      expectError(yield* run(daemon, "read_file", { path: "secret-link" }), "tool_denied")
      expectError(yield* run(daemon, "write_file", { path: "secret-link", content: "pwned" }), "tool_denied")
      expectError(yield* run(daemon, "edit_file", { path: "secret-link", old_string: "secret", new_string: "x" }), "tool_denied")
      // A dangling link would create its target outside on write.
      expectError(yield* run(daemon, "write_file", { path: "dangling", content: "x" }), "tool_denied", /symlink/)
      expectError(yield* run(daemon, "write_file", { path: "etc-link/new-file", content: "x" }), "tool_denied")
      expectError(yield* run(daemon, "grep", { pattern: "root", path: "etc-link" }), "tool_denied")
      assert.isFalse(Fs.existsSync(Path.join(outside, "not-yet.txt")))
      assert.strictEqual(Fs.readFileSync(Path.join(outside, "secret.txt"), "utf8"), "secret")

      // Inside stays allowed: absolute paths in the workspace, `..` that stays inside, links that stay inside.
      assert.strictEqual(expectOk(yield* run(daemon, "read_file", { path: Path.join(root, "inside.txt") })), "ok")
      assert.strictEqual(expectOk(yield* run(daemon, "read_file", { path: "sub/../inside.txt" })), "ok")
      assert.strictEqual(expectOk(yield* run(daemon, "read_file", { path: "inner-link" })), "ok")
      // Walks list links without following them.
      assert.notInclude(expectOk(yield* run(daemon, "list_directory", { path: ".", recursive: true })), "passwd")
    }))

  it.scopedLive("file tools do not write repository metadata", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({ ".git/config": "[core]\n" })
      const daemon = yield* startDaemon({ workspace: root })
      expectError(yield* run(daemon, "write_file", { path: ".git/hooks/pre-commit", content: "#!/bin/sh\n" }), "tool_denied", /\.git/)
      expectError(yield* run(daemon, "edit_file", { path: ".git/config", old_string: "[core]", new_string: "[core]\nfsmonitor = x" }), "tool_denied")
      assert.strictEqual(expectOk(yield* run(daemon, "read_file", { path: ".git/config" })), "[core]\n")
    }))
})

import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { CommandPattern } from "@relavium/domain"
import { MAX_OUTPUT_BYTES, MAX_OUTPUT_LINES, type ResolvedAddress, type ToolPolicy } from "../src/index.js"
import { alive, callOf, chunks, isToolError, makeWorkspace, readPids, run, startDaemon, waitFor } from "./support.js"

const allowNode: ToolPolicy = { allowedCommandGlobs: ["node *.js", "node spawner.js *"] }
/** The exact command line, as a chat approval grants it (node -e is never matched by a pattern). */
const exactly = (command: string, args: ReadonlyArray<string>): ToolPolicy => ({ allowedCommands: [CommandPattern.exactLine(command, args)] })
const node = (...args: ReadonlyArray<string>) => ({ call: { command: "node", args }, policy: exactly("node", args) })

const ok = (value: unknown) => {
  assert.isFalse(isToolError(value as never), JSON.stringify(value))
  return value as { output: string; isError?: boolean }
}
const toolError = (value: unknown, code: string, pattern?: RegExp) => {
  assert.isTrue(isToolError(value as never), JSON.stringify(value))
  const error = value as { code: string; message: string }
  assert.strictEqual(error.code, code, error.message)
  if (pattern) assert.match(error.message, pattern)
}

/** A node script (in the workspace) that starts a grandchild, records both pids, then sleeps. */
const SPAWNER = `
const { spawn } = require("node:child_process")
const fs = require("node:fs")
const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })
fs.writeFileSync(process.argv[2], process.pid + " " + child.pid)
console.log("started")
setInterval(() => {}, 1000)
`

describe("run_command", () => {
  it.scopedLive("runs a program without a shell, streams its output and reports the exit", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({ "hello.js": "console.log('out'); console.error('err'); process.exit(3)" })
      const daemon = yield* startDaemon({ workspace: root })
      const all = yield* chunks(daemon, "run_command", { command: "node", args: ["hello.js"] }, allowNode)
      const outputs = all.filter((c) => c._tag === "Output")
      assert.deepInclude(outputs.map((c) => c._tag === "Output" && `${c.stream}:${c.text}`), "stdout:out\n")
      assert.deepInclude(outputs.map((c) => c._tag === "Output" && `${c.stream}:${c.text}`), "stderr:err\n")
      const last = all[all.length - 1]!
      assert.strictEqual(last._tag, "Result")
      if (last._tag === "Result") {
        assert.isTrue(last.isError)
        assert.match(last.output, /out\n/)
        assert.match(last.output, /\[exit code 3\]$/)
      }
      // Shell metacharacters are plain arguments.
      const echo = node("-e", "console.log(process.argv[1])", "$(id); rm -rf /")
      const echoed = ok(yield* run(daemon, "run_command", echo.call, echo.policy))
      assert.strictEqual(echoed.output, "$(id); rm -rf /\n")
      // The daemon's secrets are not in a command's environment.
      process.env.RELAVIUM_TEST_API_KEY = "sk-secret"
      const dump = node("-e", "console.log(JSON.stringify(process.env))")
      const env = ok(yield* run(daemon, "run_command", dump.call, dump.policy))
      delete process.env.RELAVIUM_TEST_API_KEY
      assert.notInclude(env.output, "sk-secret")
      assert.include(env.output, "PATH")
    }))

  it.scopedLive("allowlists: exact command lines, globs, and nothing when both are empty", () =>
    Effect.gen(function* () {
      const daemon = yield* startDaemon({ workspace: makeWorkspace() })
      toolError(yield* run(daemon, "run_command", { command: "echo", args: ["hi"] }), "tool_denied", /allows no commands/)
      toolError(yield* run(daemon, "run_command", { command: "echo", args: ["hi"] }, { allowedCommands: [] }), "tool_denied")
      const exact: ToolPolicy = { allowedCommands: ["echo hi"] }
      assert.strictEqual(ok(yield* run(daemon, "run_command", { command: "echo", args: ["hi"] }, exact)).output, "hi\n")
      toolError(yield* run(daemon, "run_command", { command: "echo", args: ["hi", "there"] }, exact), "tool_denied", /'echo hi there' is not in/)
      // An exact line is compared argument by argument: spaces inside an argument are not argument breaks.
      toolError(yield* run(daemon, "run_command", { command: "echo", args: ["hi there"] }, { allowedCommands: ["echo hi there"] }), "tool_denied")
      assert.strictEqual(ok(yield* run(daemon, "run_command", { command: "echo", args: ["hi there"] }, { allowedCommands: ["echo 'hi there'"] })).output, "hi there\n")
      toolError(yield* run(daemon, "run_command", { command: "rm", args: ["-rf", "."] }, { allowedCommandGlobs: ["echo *"] }), "tool_denied")
      assert.strictEqual(ok(yield* run(daemon, "run_command", { command: "echo", args: ["a"] }, { allowedCommandGlobs: ["echo *"] })).output, "a\n")
      toolError(yield* run(daemon, "run_command", { command: "echo", args: ["a", "b"] }, { allowedCommandGlobs: ["echo *"] }), "tool_denied", /allows 1 argument\(s\), not 2/)
      assert.strictEqual(ok(yield* run(daemon, "run_command", { command: "echo", args: ["a", "b"] }, { allowedCommandGlobs: ["echo **"] })).output, "a b\n")
      // A daemon-wide default applies when the call carries no workflow policy.
      const permissive = yield* startDaemon({ workspace: makeWorkspace(), policy: { allowedCommands: ["echo default"] } })
      assert.strictEqual(ok(yield* run(permissive, "run_command", { command: "echo", args: ["default"] })).output, "default\n")
      // Bad arguments come before the allowlist.
      toolError(yield* run(daemon, "run_command", { command: "echo", args: "hi" }), "tool_failed", /args: Expected ReadonlyArray/)
      toolError(yield* run(daemon, "run_command", { command: "no-such-program-xyz" }, { allowedCommands: ["no-such-program-xyz"] }), "tool_failed", /no such program/)
    }))

  it.scopedLive("a command that outlives its timeout is killed with its children", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({ "spawner.js": SPAWNER })
      const daemon = yield* startDaemon({ workspace: root })
      const pidFile = Path.join(root, "pids")
      const started = Date.now()
      const result = ok(yield* run(daemon, "run_command", { command: "node", args: ["spawner.js", "pids"], timeout_ms: 1500 }, allowNode))
      assert.isAtLeast(Date.now() - started, 1400)
      assert.isTrue(result.isError)
      assert.match(result.output, /^started\n\[timed out after 1500 ms; the command and its children were killed\]$/)
      const pids = readPids(pidFile)
      assert.lengthOf(pids, 2)
      yield* waitFor(() => pids.every((pid) => !alive(pid)), 3000, "the command and its child to be gone")
    }))

  it.scopedLive("interrupting a call (a cancelled run) kills the process tree", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({ "spawner.js": SPAWNER })
      const daemon = yield* startDaemon({ workspace: root })
      const pidFile = Path.join(root, "pids")
      const fiber = yield* daemon.execute(callOf("run_command", { command: "node", args: ["spawner.js", "pids"] }, allowNode)).pipe(
        Stream.runDrain,
        Effect.fork
      )
      yield* waitFor(() => readPids(pidFile).length === 2, 5000, "the pid file")
      const pids = readPids(pidFile)
      assert.isTrue(pids.every(alive))
      yield* Fiber.interrupt(fiber)
      yield* waitFor(() => pids.every((pid) => !alive(pid)), 3000, "the command and its child to be gone")
    }))

  it.scopedLive("output larger than the model limit is cut with a marker, and the daemon keeps only a head", () =>
    Effect.gen(function* () {
      const daemon = yield* startDaemon({ workspace: makeWorkspace() })
      const rows = node("-e", "for (let i = 0; i < 100000; i++) console.log('row ' + i)")
      const lines = ok(yield* run(daemon, "run_command", rows.call, rows.policy))
      assert.strictEqual(lines.output.split("\n").length, MAX_OUTPUT_LINES)
      assert.match(lines.output, /^row 0\nrow 1\n/)
      assert.match(lines.output, /\[output truncated: 988890 bytes in 100000 lines; showing the first \d+ bytes \(1999 lines\)\]$/)
      const ys = node("-e", "process.stdout.write('y'.repeat(3000000))")
      const wide = ok(yield* run(daemon, "run_command", ys.call, ys.policy))
      assert.isAtMost(Buffer.byteLength(wide.output), MAX_OUTPUT_BYTES)
      assert.match(wide.output, /\[output truncated: 3000000 bytes in 1 lines/)
    }))

  it.scopedLive("a symlink a command creates is still refused by the file tools", () =>
    Effect.gen(function* () {
      const root = makeWorkspace()
      const daemon = yield* startDaemon({ workspace: root })
      const made = ok(
        yield* run(daemon, "run_command", { command: "ln", args: ["-s", "/etc/passwd", "innocent.txt"] }, { allowedCommands: ["ln -s /etc/passwd innocent.txt"] })
      )
      assert.isFalse(made.isError === true, made.output)
      assert.isTrue(Fs.lstatSync(Path.join(root, "innocent.txt")).isSymbolicLink())
      toolError(yield* run(daemon, "read_file", { path: "innocent.txt" }), "tool_denied", /outside the workspace/)
      toolError(yield* run(daemon, "write_file", { path: "innocent.txt", content: "x" }), "tool_denied")
    }))
})

describe("git tools", () => {
  it.scopedLive("git_status and git_commit in a repository; git_commit refuses option-like and outside paths", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({ "a.txt": "a\n", "b.txt": "b\n" })
      const daemon = yield* startDaemon({ workspace: root })
      const setup: ToolPolicy = { allowedCommands: ["git init -q -b main", "git config user.email t@example.com", "git config user.name Test"] }
      ok(yield* run(daemon, "run_command", { command: "git", args: ["init", "-q", "-b", "main"] }, setup))
      ok(yield* run(daemon, "run_command", { command: "git", args: ["config", "user.email", "t@example.com"] }, setup))
      ok(yield* run(daemon, "run_command", { command: "git", args: ["config", "user.name", "Test"] }, setup))
      const status = ok(yield* run(daemon, "git_status", {}))
      assert.match(status.output, /## No commits yet on main/)
      assert.match(status.output, /\?\? a.txt/)
      const commit = ok(yield* run(daemon, "git_commit", { message: "add a", files: ["a.txt"] }))
      assert.isFalse(commit.isError === true, commit.output)
      assert.match(commit.output, /add a/)
      assert.match(ok(yield* run(daemon, "git_status", {})).output, /\?\? b.txt/)
      const all = ok(yield* run(daemon, "git_commit", { message: "the rest" }))
      assert.isFalse(all.isError === true, all.output)
      assert.match(ok(yield* run(daemon, "git_status", {})).output, /^## main\n?$/)
      toolError(yield* run(daemon, "git_commit", { message: "x", files: ["--amend"] }), "tool_failed", /must not start with '-'/)
      toolError(yield* run(daemon, "git_commit", { message: "x", files: ["../elsewhere"] }), "tool_denied")
    }))
})

const resolverOf =
  (table: Record<string, ReadonlyArray<ResolvedAddress>>) =>
  (host: string) =>
    Effect.succeed(table[host] ?? [])

describe("http_request", () => {
  const requests: Array<{ url: string; address: string; method: string }> = []
  const options = {
    resolver: resolverOf({
      "api.example.com": [{ address: "93.184.216.34", family: 4 }],
      "loopback.example.com": [{ address: "127.0.0.1", family: 4 }],
      "private.example.com": [{ address: "93.184.216.34", family: 4 }, { address: "10.1.2.3", family: 4 }],
      "metadata.example.com": [{ address: "169.254.169.254", family: 4 }],
      "v6.example.com": [{ address: "::1", family: 6 }],
      "mapped.example.com": [{ address: "::ffff:192.168.1.1", family: 6 }],
      "ula.example.com": [{ address: "fd00::1", family: 6 }]
    }),
    requester: (request: { url: URL; address: ResolvedAddress; method: string }) =>
      Effect.sync(() => {
        requests.push({ url: request.url.href, address: request.address.address, method: request.method })
        return { status: 200, headers: { "content-type": "application/json" }, body: '{"ok":true}', truncated: false }
      })
  }
  const policy: ToolPolicy = {
    allowedDomains: [
      "api.example.com",
      "loopback.example.com",
      "private.example.com",
      "metadata.example.com",
      "v6.example.com",
      "mapped.example.com",
      "ula.example.com",
      "localhost",
      "127.0.0.1"
    ]
  }

  it.scopedLive("refuses non-HTTPS, unlisted hosts, and names that resolve to private, loopback or link-local addresses", () =>
    Effect.gen(function* () {
      const daemon = yield* startDaemon({ workspace: makeWorkspace(), ...options })
      toolError(yield* run(daemon, "http_request", { url: "https://api.example.com/" }), "tool_denied", /allows no domains/)
      toolError(yield* run(daemon, "http_request", { url: "http://api.example.com/" }, policy), "tool_denied", /only uses HTTPS/)
      toolError(yield* run(daemon, "http_request", { url: "https://user:pw@api.example.com/" }, policy), "tool_denied", /credentials/)
      toolError(yield* run(daemon, "http_request", { url: "https://evil.example.net/" }, policy), "tool_denied", /not in the workflow's allowedDomains/)
      toolError(yield* run(daemon, "http_request", { url: "https://sub.api.example.com/" }, policy), "tool_denied", /not in/)
      toolError(yield* run(daemon, "http_request", { url: "https://loopback.example.com/" }, policy), "tool_denied", /127\.0\.0\.1 \(loopback\)/)
      toolError(yield* run(daemon, "http_request", { url: "https://private.example.com/" }, policy), "tool_denied", /10\.1\.2\.3 \(private\)/)
      toolError(yield* run(daemon, "http_request", { url: "https://metadata.example.com/" }, policy), "tool_denied", /link-local/)
      toolError(yield* run(daemon, "http_request", { url: "https://v6.example.com/" }, policy), "tool_denied", /::1 \(loopback\)/)
      toolError(yield* run(daemon, "http_request", { url: "https://mapped.example.com/" }, policy), "tool_denied", /private/)
      toolError(yield* run(daemon, "http_request", { url: "https://ula.example.com/" }, policy), "tool_denied", /unique local/)
      toolError(yield* run(daemon, "http_request", { url: "not a url" }, policy), "tool_failed", /url/)
      toolError(yield* run(daemon, "http_request", { url: "https://api.example.com/", method: "TRACE" }, policy), "tool_failed", /method/)
      assert.lengthOf(requests, 0)
    }))

  it.scopedLive("an allowed public host is reached at the address that was checked", () =>
    Effect.gen(function* () {
      const daemon = yield* startDaemon({ workspace: makeWorkspace(), ...options })
      const result = ok(yield* run(daemon, "http_request", { url: "https://API.example.com./v1/items?x=1", method: "POST", body: "{}" }, policy))
      assert.strictEqual(result.output, 'HTTP 200\ncontent-type: application/json\n\n{"ok":true}')
      assert.deepStrictEqual(requests, [{ url: "https://api.example.com./v1/items?x=1", address: "93.184.216.34", method: "POST" }])
    }))

  it.scopedLive("the real resolver refuses localhost and IP literals of loopback", () =>
    Effect.gen(function* () {
      const daemon = yield* startDaemon({ workspace: makeWorkspace() })
      toolError(yield* run(daemon, "http_request", { url: "https://localhost:8443/" }, policy), "tool_denied", /loopback/)
      toolError(yield* run(daemon, "http_request", { url: "https://127.0.0.1/" }, policy), "tool_denied", /loopback/)
    }))
})

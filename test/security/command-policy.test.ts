/**
 * Issue 14, finding 4 (allowedCommandGlobs matched across spaces and `/`) and
 * the process part of finding 3 (a command's `setsid` descendant outliving the
 * tool call). Each abuse is refused with a `tool_denied` naming the argument,
 * while the honest use of the same pattern still runs; real daemon, real
 * programs, real processes checked in /proc.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Stream } from "effect"
import { exactLine } from "../../packages/domain/src/CommandPattern.js"
import { parseWorkflow } from "../../packages/domain/src/WorkflowYaml.js"
import type { ToolPolicy } from "../../packages/daemon/src/index.js"
import { alive, callOf, isToolError, makeWorkspace, run, startDaemon, waitFor } from "../../packages/daemon/test/support.js"

const ok = (value: unknown) => {
  assert.isFalse(isToolError(value as never), JSON.stringify(value))
  const result = value as { output: string; isError?: boolean }
  assert.isFalse(result.isError === true, result.output)
  return result
}

const refused = (value: unknown, pattern: RegExp) => {
  assert.isTrue(isToolError(value as never), `expected a refusal, got ${JSON.stringify(value)}`)
  const error = value as { code: string; message: string }
  assert.strictEqual(error.code, "tool_denied", error.message)
  assert.match(error.message, pattern)
}

const command = (policy: ToolPolicy, program: string, ...args: Array<string>) => ({ policy, call: { command: program, args } })

const gitRepo = () => {
  const root = makeWorkspace({ "notes.txt": "my notes\n", "src/a.ts": "export const a = 1\n" })
  const git = (...args: Array<string>) => ChildProcess.execFileSync("git", args, { cwd: root, stdio: "ignore" })
  git("init", "-q", "-b", "main")
  git("-c", "user.email=t@example.com", "-c", "user.name=T", "add", "-A")
  git("-c", "user.email=t@example.com", "-c", "user.name=T", "commit", "-q", "-m", "init")
  Fs.writeFileSync(Path.join(root, "notes.txt"), "my notes, changed\n")
  return root
}

describe("allowedCommandGlobs: one argument per wildcard, never an option, an absolute path or '..'", () => {
  it.scopedLive("cat *.txt allows cat notes.txt, not cat /etc/passwd notes.txt", () =>
    Effect.gen(function* () {
      const daemon = yield* startDaemon({ workspace: gitRepo() })
      const policy: ToolPolicy = { allowedCommandGlobs: ["cat *.txt"] }
      const honest = command(policy, "cat", "notes.txt")
      assert.strictEqual(ok(yield* run(daemon, "run_command", honest.call, policy)).output, "my notes, changed\n")
      const abuse = command(policy, "cat", "/etc/passwd", "notes.txt")
      refused(yield* run(daemon, "run_command", abuse.call, policy), /argument 1 "\/etc\/passwd": wildcards never match absolute paths/)
      refused(yield* run(daemon, "run_command", { command: "cat", args: ["../../../etc/passwd.txt"] }, policy), /'\.\.'|never match '\/'|absolute/)
      refused(yield* run(daemon, "run_command", { command: "cat", args: ["notes.txt", "notes.txt"] }, policy), /allows 1 argument\(s\), not 2/)
      refused(yield* run(daemon, "run_command", { command: "cat", args: ["-A", "notes.txt"] }, policy), /never match options/)
      // The program is resolved through PATH, and the same program by its absolute path is the same program.
      const catPath = ChildProcess.execFileSync("sh", ["-c", "command -v cat"], { encoding: "utf8" }).trim()
      assert.strictEqual(ok(yield* run(daemon, "run_command", { command: catPath, args: ["notes.txt"] }, policy)).output, "my notes, changed\n")
      // A program named through a symlinked directory (/bin on a merged-/usr system) is the same program.
      const viaBin = { allowedCommandGlobs: ["/bin/cat *.txt"] }
      assert.strictEqual(ok(yield* run(daemon, "run_command", { command: "cat", args: ["notes.txt"] }, viaBin)).output, "my notes, changed\n")
    }))

  it.scopedLive("ls src/* allows ls src/a.ts, not ls src/../../x or src/..", () =>
    Effect.gen(function* () {
      const daemon = yield* startDaemon({ workspace: gitRepo() })
      const policy: ToolPolicy = { allowedCommandGlobs: ["ls src/*"] }
      assert.strictEqual(ok(yield* run(daemon, "run_command", { command: "ls", args: ["src/a.ts"] }, policy)).output, "src/a.ts\n")
      refused(yield* run(daemon, "run_command", { command: "ls", args: ["src/../../x"] }, policy), /argument 1 "src\/\.\.\/\.\.\/x": wildcards never match a '\.\.' path segment/)
      refused(yield* run(daemon, "run_command", { command: "ls", args: ["src/.."] }, policy), /'\.\.' path segment/)
      refused(yield* run(daemon, "run_command", { command: "ls", args: ["src/a/b"] }, policy), /never matches '\/'/)
    }))

  it.scopedLive("git * allows git status and git diff, not git -c alias.x=!sh or git diff --output=../x", () =>
    Effect.gen(function* () {
      const root = gitRepo()
      const daemon = yield* startDaemon({ workspace: root })
      const policy: ToolPolicy = { allowedCommandGlobs: ["git *", "git diff **"] }
      assert.match(ok(yield* run(daemon, "run_command", { command: "git", args: ["status"] }, policy)).output, /modified: +notes\.txt/)
      assert.match(ok(yield* run(daemon, "run_command", { command: "git", args: ["diff"] }, policy)).output, /\+my notes, changed/)
      assert.match(ok(yield* run(daemon, "run_command", { command: "git", args: ["diff", "notes.txt"] }, policy)).output, /\+my notes, changed/)
      const marker = Path.join(root, "..", `pwned-${Path.basename(root)}`)
      refused(
        yield* run(daemon, "run_command", { command: "git", args: ["-c", `alias.x=!touch ${marker}`, "x"] }, policy),
        /argument 1 "-c": wildcards never match options/
      )
      refused(yield* run(daemon, "run_command", { command: "git", args: ["diff", "--output=../x"] }, policy), /argument 2 "--output=\.\.\/x"/)
      refused(yield* run(daemon, "run_command", { command: "git", args: ["diff", "--output", "x"] }, policy), /argument 2 "--output"/)
      assert.isFalse(Fs.existsSync(marker))
      assert.isFalse(Fs.existsSync(Path.join(root, "..", "x")))
    }))

  it.scopedLive("the deny-list applies even where a pattern matches: git config writes, sed e/w, awk system()", () =>
    Effect.gen(function* () {
      const root = gitRepo()
      const daemon = yield* startDaemon({ workspace: root })
      const gitPolicy: ToolPolicy = { allowedCommandGlobs: ["git * * *", "git * *", "git config --get *"] }
      refused(
        yield* run(daemon, "run_command", { command: "git", args: ["config", "core.pager", "sh -c id"] }, gitPolicy),
        /argument 1 "config": git config may only read values here/
      )
      refused(yield* run(daemon, "run_command", { command: "git", args: ["bisect", "run", "x"] }, gitPolicy), /git bisect is refused/)
      refused(yield* run(daemon, "run_command", { command: "git", args: ["rebase", "-x", "id"] }, gitPolicy), /never match options/)
      assert.match(ok(yield* run(daemon, "run_command", { command: "git", args: ["config", "--get", "core.bare"] }, gitPolicy)).output, /false/)

      const sedPolicy: ToolPolicy = { allowedCommandGlobs: ["sed s/*/*/* *.txt"] }
      assert.strictEqual(ok(yield* run(daemon, "run_command", { command: "sed", args: ["s/notes/NOTES/g", "notes.txt"] }, sedPolicy)).output, "my NOTES, changed\n")
      refused(yield* run(daemon, "run_command", { command: "sed", args: ["s/x/id/e", "notes.txt"] }, sedPolicy), /argument 1 "s\/x\/id\/e": the sed s\/\/\/e and s\/\/\/w flags/)
      refused(yield* run(daemon, "run_command", { command: "sed", args: ["s/x/y/w out", "notes.txt"] }, sedPolicy), /s\/\/\/w/)
      const sedAny: ToolPolicy = { allowedCommandGlobs: ["sed * *.txt"] }
      refused(yield* run(daemon, "run_command", { command: "sed", args: ["1e id", "notes.txt"] }, sedAny), /the sed command 'e' runs a program/)
      refused(yield* run(daemon, "run_command", { command: "sed", args: ["1w out.txt", "notes.txt"] }, sedAny), /the sed command 'w'/)
      assert.strictEqual(ok(yield* run(daemon, "run_command", { command: "sed", args: ["-n", "1p", "notes.txt"] }, { allowedCommandGlobs: ["sed -n * *.txt"] })).output, "my notes, changed\n")

      const awkPolicy: ToolPolicy = { allowedCommandGlobs: ["awk * *.txt"] }
      assert.strictEqual(ok(yield* run(daemon, "run_command", { command: "awk", args: ["{print $1}", "notes.txt"] }, awkPolicy)).output, "my\n")
      refused(yield* run(daemon, "run_command", { command: "awk", args: ['BEGIN{system("id")}', "notes.txt"] }, awkPolicy), /awk programs that run commands or write files/)
      refused(yield* run(daemon, "run_command", { command: "awk", args: ['{print > "out"}', "notes.txt"] }, awkPolicy), /awk programs/)
      assert.isFalse(Fs.existsSync(Path.join(root, "out")))
    }))

  it.scopedLive("a program planted in the workspace is not the program the pattern names", () =>
    Effect.gen(function* () {
      const root = gitRepo()
      Fs.mkdirSync(Path.join(root, "bin"))
      Fs.writeFileSync(Path.join(root, "bin", "cat"), "#!/bin/sh\necho planted\n", { mode: 0o755 })
      const daemon = yield* startDaemon({ workspace: root })
      const policy: ToolPolicy = { allowedCommandGlobs: ["cat *.txt"] }
      refused(yield* run(daemon, "run_command", { command: "./bin/cat", args: ["notes.txt"] }, policy), /not in the workflow's allowedCommands or allowedCommandGlobs/)
      const savedPath = process.env.PATH
      process.env.PATH = `${Path.join(root, "bin")}:${savedPath}`
      try {
        refused(yield* run(daemon, "run_command", { command: "cat", args: ["notes.txt"] }, policy), /resolves to .*bin\/cat, inside the workspace/)
      } finally {
        process.env.PATH = savedPath
      }
    }))
})

describe("allowedCommandGlobs are checked when the workflow is validated", () => {
  const workflow = (patterns: ReadonlyArray<string>) =>
    [
      "schema_version: '1.0'",
      "workflow:",
      "  id: demo",
      "  tools:",
      "    allowedCommandGlobs:",
      ...patterns.map((p) => `      - ${JSON.stringify(p)}`),
      "  agents:",
      "    - id: writer",
      "      model: claude-sonnet-4-6",
      "      provider: anthropic",
      "      system_prompt: You write.",
      "  nodes:",
      "    - id: write",
      "      type: agent",
      "      agent_ref: writer",
      "      prompt_template: hi",
      "  edges: []",
      ""
    ].join("\n")

  it("rejects patterns that could never be safe, with the line of the offending entry", () => {
    const cases: ReadonlyArray<[string, RegExp]> = [
      ["git -c *", /the argument '-c' can never run/],
      ["git diff --output=*", /the argument '--output=\*' can never run: git would write its output/],
      ["env **", /'env' runs another program/],
      ["xargs *", /'xargs' runs another program/],
      ["find . -exec * ;", /'-exec' can never run: find would run a command/],
      ["sh -c *", /'-c' can never run/],
      ["tar -xf * --to-command=sh", /--to-command=sh' can never run/],
      ["* notes.txt", /the program '\*' must be spelt exactly/],
      ["ls src/**", /'\*\*' must stand alone/],
      ["ls ** src", /'\*\*' is only allowed as the last element/]
    ]
    for (const [pattern, message] of cases) {
      const result = parseWorkflow(workflow(["cat *.txt", pattern]), "flow.yaml")
      assert.isTrue(Either.isLeft(result), `'${pattern}' was accepted`)
      if (Either.isRight(result)) continue
      const issue = result.left.issues[0]!
      assert.strictEqual(issue.path, "workflow.tools.allowedCommandGlobs[1]", pattern)
      assert.strictEqual(issue.line, 7, pattern)
      assert.match(issue.message, message)
    }
    assert.isTrue(Either.isRight(parseWorkflow(workflow(["cat *.txt", "ls src/*", "git status", "git diff **", "sed s/*/*/* *.txt"]), "flow.yaml")))
  })
})

/** Every process whose command line contains `token` (zombies excluded): what a user would look for with ps. */
const processesWith = (token: string): Array<number> =>
  Fs.readdirSync("/proc")
    .filter((name) => /^[0-9]+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(token) && alive(pid)
      } catch {
        return false
      }
    })

describe.runIf(process.platform === "linux")("no process outlives its tool call, setsid or not", () => {
  it.scopedLive("a setsid grandchild is gone when the command exits", () =>
    Effect.gen(function* () {
      const root = makeWorkspace()
      const daemon = yield* startDaemon({ workspace: root })
      const token = `${30 + Math.random()}`.slice(0, 9)
      const script = `setsid sh -c 'echo $$ > escaped.pid; exec sleep ${token}' >/dev/null 2>&1 & sleep 0.3; echo started`
      const policy: ToolPolicy = { allowedCommands: [exactLine("sh", ["-c", script])] }
      const result = ok(yield* run(daemon, "run_command", { command: "sh", args: ["-c", script] }, policy))
      assert.strictEqual(result.output, "started\n")
      const escaped = Number(Fs.readFileSync(Path.join(root, "escaped.pid"), "utf8").trim())
      assert.isAbove(escaped, 1)
      yield* waitFor(() => !alive(escaped) && processesWith(`sleep${"\0"}${token}`).length === 0, 2000, "the setsid grandchild to be gone")
    }))

  it.scopedLive("a setsid grandchild whose parent exited at once, and the command cancelled mid-run", () =>
    Effect.gen(function* () {
      const root = makeWorkspace()
      const daemon = yield* startDaemon({ workspace: root })
      const token = `${40 + Math.random()}`.slice(0, 9)
      // The intermediate shell exits at once, so the grandchild is reparented before the call ends.
      const script = `sh -c "setsid sleep ${token} >/dev/null 2>&1 &"; sh -c 'setsid sh -c "exec sleep ${token}" >/dev/null 2>&1 & echo $! > bg.pid'; echo ready; exec sleep 60`
      const policy: ToolPolicy = { allowedCommands: [exactLine("sh", ["-c", script])] }
      const fiber = yield* daemon.execute(callOf("run_command", { command: "sh", args: ["-c", script] }, policy)).pipe(Stream.runDrain, Effect.fork)
      yield* waitFor(() => processesWith(`sleep${"\0"}${token}`).length === 2, 5000, "both grandchildren to run")
      yield* Effect.sleep("150 millis")
      yield* Fiber.interrupt(fiber)
      yield* waitFor(() => processesWith(`sleep${"\0"}${token}`).length === 0, 2000, "the grandchildren to be gone")
    }))
})

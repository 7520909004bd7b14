/**
 * `relavium chat list|send|approve|resume|export` through the bundled binary,
 * on real git repositories with the in-process tools daemon and cassette
 * models; and crash recovery: a `relavium chat send` killed with SIGKILL
 * mid-stream and mid-tool, then `relavium chat resume`.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, realpathSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { relavium, root } from "./relavium.js"
import { call, cassette, gitRepo, stop, text } from "../../../packages/chat/test/fixtures.js"

const bin = join(root, "apps/cli/bin/relavium.mjs")
const dataDir = mkdtempSync(join(tmpdir(), "relavium-chat-data-"))
const env = { RELAVIUM_DATA_DIR: dataDir }
const chat = (args: ReadonlyArray<string>) => relavium(["chat", ...args], { env })


interface Event {
  readonly type: string
  readonly chatId: string
  readonly seq: number
  readonly [k: string]: unknown
}
const events = (stdout: string): Array<Event> =>
  stdout
    .trim()
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Event)

interface Summary {
  readonly chatId: string
  readonly turnStatus: string
  readonly costMicrocents: number
  readonly workspace: string
  readonly worktree?: { readonly path: string; readonly branch: string }
}
const listed = (): Array<Summary> => {
  const result = chat(["list", "--json"])
  expect(result.status, result.stderr).toBe(0)
  return JSON.parse(result.stdout) as Array<Summary>
}

describe("relavium chat", () => {
  it("send pauses for approval (exit 3, says how), approve records it, resume finishes; list and export show it", () => {
    const repo = gitRepo({ "hello.txt": "hello\n" })
    const tape = cassette([
      [text("I'll update "), text("the greeting."), ...call("toolu_1", "write_file", { path: "hello.txt", content: "hello, world\n" })],
      [text("Updated hello.txt "), text("to greet the world."), stop("stop", 200, 12)]
    ])
    const sent = chat(["send", "--project", repo, "--worktree", "Make hello.txt greet the world", "--cassette", tape])
    expect(sent.status, sent.stderr).toBe(3)
    const chatId = /^chat (\S+) · anthropic\/claude-sonnet-4 · ask · worktree (\S+)/.exec(sent.stdout)![1]!
    expect(sent.stdout).toContain("I'll update the greeting.")
    expect(sent.stdout).toContain('▸ write_file (needs approval): {"path":"hello.txt","content":"hello, world\\n"}')
    expect(sent.stdout).toContain(`relavium chat approve ${chatId} toolu_1 --allow|--deny`)
    expect(sent.stdout).toContain(`then continue: relavium chat resume ${chatId}`)

    const before = listed().find((c) => c.chatId === chatId)!
    expect(before.turnStatus).toBe("awaiting_approval")
    const worktree = before.worktree!.path
    expect(worktree.startsWith(join(dataDir, "worktrees"))).toBe(true)
    expect(readFileSync(join(worktree, "hello.txt"), "utf8")).toBe("hello\n")

    const meanwhile = chat(["send", chatId, "and also this", "--cassette", tape])
    expect(meanwhile.status).toBe(3)
    expect(meanwhile.stderr).toContain(`chat ${chatId} waits for a decision on a tool call: write_file (toolu_1)`)

    const approved = chat(["approve", chatId, "toolu_1", "--allow"])
    expect(approved.status, approved.stderr).toBe(0)
    expect(approved.stdout).toContain(`allowed toolu_1 in chat ${chatId}`)
    expect(approved.stdout).toContain(`continue: relavium chat resume ${chatId}`)
    const contradicting = chat(["approve", chatId, "toolu_1", "--deny"])
    expect(contradicting.status).toBe(2)
    expect(contradicting.stderr).toContain("was already allowed")

    const resumed = chat(["resume", chatId, "--cassette", tape])
    expect(resumed.status, resumed.stderr).toBe(0)
    expect(resumed.stdout).toContain("✓ ok: wrote 13 bytes to hello.txt")
    expect(resumed.stdout).toContain("✎ write hello.txt")
    expect(resumed.stdout).toContain("Updated hello.txt to greet the world.")
    expect(resumed.stdout).toMatch(/\[claude-sonnet-4 · \$0\.\d{6} · chat total \$0\.001080\]/)
    expect(readFileSync(join(worktree, "hello.txt"), "utf8")).toBe("hello, world\n")
    expect(readFileSync(join(repo, "hello.txt"), "utf8")).toBe("hello\n")

    const after = listed().find((c) => c.chatId === chatId)!
    expect(after.turnStatus).toBe("idle")
    expect(after.costMicrocents).toBe(108_000)
    const human = chat(["list"])
    expect(human.stdout).toContain(`${chatId}  idle  anthropic/claude-sonnet-4  ask  $0.001080`)
    expect(human.stdout).toContain("Make hello.txt greet the world")

    const markdown = chat(["export", chatId, "--format", "markdown"])
    expect(markdown.status, markdown.stderr).toBe(0)
    expect(markdown.stdout).toContain("# Make hello.txt greet the world")
    expect(markdown.stdout).toContain("**Tool call** `write_file` (`toolu_1`: done, allowed by cli)")
    expect(markdown.stdout).toContain("**File write** `hello.txt`")
    const yaml = chat(["export", chatId, "--format", "yaml"])
    expect(yaml.status, yaml.stderr).toBe(0)
    expect(yaml.stdout).toContain('schema_version: "1.0"')
    const exported = join(mkdtempSync(join(tmpdir(), "relavium-chat-export-")), "chat.relavium.yaml")
    writeFileSync(exported, yaml.stdout)
    const valid = relavium(["validate", exported], { env })
    expect(valid.status, valid.stderr).toBe(0)
    expect(valid.stdout).toContain("valid")

    const nothing = chat(["resume", chatId, "--cassette", tape])
    expect(nothing.status).toBe(0)
    expect(nothing.stdout).toContain("has nothing to continue")
  })

  it("a denied call is not run, the model is told, and --json prints every event numbered from 0", () => {
    const repo = gitRepo({ "README.md": "keep me\n" })
    const tape = cassette([
      call("toolu_rm", "run_command", { command: "git", args: ["rm", "README.md"] }),
      [text("Understood: README.md stays."), stop("stop")]
    ])
    const sent = chat(["send", "--project", repo, "Remove the README", "--approval-mode", "accept-edits", "--cassette", tape, "--json"])
    expect(sent.status, sent.stderr).toBe(3)
    const first = events(sent.stdout)
    expect(first.map((e) => e.seq)).toEqual(first.map((_, i) => i))
    expect(first[0]!.type).toBe("chat:created")
    expect(first.at(-1)!.type).toBe("turn:paused")
    const chatId = first[0]!.chatId
    expect(chat(["approve", chatId, "toolu_rm", "--deny", "--json"]).status).toBe(0)
    const resumed = chat(["resume", chatId, "--cassette", tape, "--json"])
    expect(resumed.status, resumed.stderr).toBe(0)
    const second = events(resumed.stdout)
    expect(second[0]!.seq).toBe(first.at(-1)!.seq + 2)
    const result = second.find((e) => e.type === "tool:result")!
    expect(result.outcome).toBe("denied")
    expect(result.output).toContain("denied by the user")
    expect(second.at(-1)!.type).toBe("turn:completed")
    expect(existsSync(join(repo, "README.md"))).toBe(true)
    const markdown = chat(["export", chatId])
    expect(markdown.stdout).toContain("(`toolu_rm`: denied, denied by cli)")
    expect(markdown.stdout).toContain("Understood: README.md stays.")
  })

  it("bad input: unknown chat, missing project, not a git repository with --worktree; nothing is created", () => {
    const before = listed().length
    const unknown = chat(["send", "no-such-chat", "hello"])
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toBe("relavium: no chat with id no-such-chat (see `relavium chat list`)\n")
    const missing = chat(["send", "--project", join(tmpdir(), "relavium-no-such-dir"), "hello"])
    expect(missing.status).toBe(2)
    expect(missing.stderr).toContain("does not exist")
    const plain = realpathSync(mkdtempSync(join(tmpdir(), "relavium-chat-plain-")))
    const notGit = chat(["send", "--project", plain, "--worktree", "hello", "--json"])
    expect(notGit.status).toBe(2)
    const error = JSON.parse(notGit.stderr) as { type: string; message: string }
    expect(error.type).toBe("error")
    expect(error.message).toContain(`${plain} is not a git repository`)
    expect(listed().length).toBe(before)
    const noCall = chat(["approve", listed()[0]!.chatId, "toolu_none", "--allow"])
    expect(noCall.status).toBe(2)
    expect(noCall.stderr).toContain("has no tool call toolu_none")
    expect(chat(["export", "no-such-chat"]).status).toBe(2)
  })
})

/** Starts `relavium chat send … --json` and SIGKILLs it once `until` holds for the events printed so far. */
const killMidway = (args: ReadonlyArray<string>, until: (seen: ReadonlyArray<Event>) => boolean) =>
  new Promise<Array<Event>>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "chat", "send", ...args, "--json"], { env: { ...process.env, NO_COLOR: "1", ...env } })
    let stdout = ""
    let stderr = ""
    let killed = false
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")))
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString("utf8")
      const complete = stdout.slice(0, stdout.lastIndexOf("\n") + 1)
      if (!killed && complete !== "" && until(events(complete))) {
        killed = true
        child.kill("SIGKILL")
      }
    })
    child.on("error", reject)
    child.on("close", (code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`relavium chat send ended (${code}) before it was killed:\n${stdout}\n${stderr}`))
      else resolve(events(stdout.slice(0, stdout.lastIndexOf("\n") + 1)))
    })
  })

describe("relavium chat: crash recovery after SIGKILL", () => {
  it("killed mid-stream: the partial answer is kept, resume recovers once and answers, the chat goes on", async () => {
    const repo = gitRepo({ "README.md": "hello\n" })
    const words = Array.from({ length: 200 }, (_, i) => text(`word${i} `))
    const full = words.map((w) => w.text).join("")
    const tape = cassette([[...words, stop("stop")], [text("Here is the whole answer again."), stop("stop")], [text("You're welcome."), stop("stop")]])
    const seen = await killMidway(["--project", repo, "Tell me a long story", "--cassette", tape, "--token-delay-ms", "25"], (e) =>
      e.filter((x) => x.type === "message:delta").length >= 3
    )
    const chatId = seen[0]!.chatId
    const streamed = seen.filter((e) => e.type === "message:delta").map((e) => e.text as string).join("")
    expect(streamed.length).toBeGreaterThan(0)
    expect(listed().find((c) => c.chatId === chatId)!.turnStatus).toBe("running")

    const resumed = chat(["resume", chatId, "--cassette", tape])
    expect(resumed.status, resumed.stderr).toBe(0)
    expect(resumed.stdout).toContain(`recovered chat ${chatId}: 1 interrupted answer kept, 0 interrupted tool calls`)
    expect(resumed.stdout).toContain("Here is the whole answer again.")

    const markdown = chat(["export", chatId]).stdout
    const partial = /## Assistant \(claude-sonnet-4\) — interrupted\n\n([\s\S]*?)\n\n## Assistant/.exec(markdown)
    expect(partial, markdown).not.toBeNull()
    // Everything a follower saw was stored; the rest of the answer never arrived.
    expect(partial![1]!.startsWith(streamed.trim())).toBe(true)
    expect(full.startsWith(partial![1]!)).toBe(true)
    expect(partial![1]!.length).toBeLessThan(full.trim().length)

    // Idempotent: recovering again changes nothing.
    const again = chat(["resume", chatId, "--cassette", tape])
    expect(again.status).toBe(0)
    expect(again.stdout).not.toContain("recovered")
    expect(again.stdout).toContain("has nothing to continue")
    expect(chat(["export", chatId]).stdout).toBe(markdown)

    const next = chat(["send", chatId, "Thanks!", "--cassette", tape])
    expect(next.status, next.stderr).toBe(0)
    expect(next.stdout).toContain("You're welcome.")
  })

  it("killed mid-tool: the running call gets an explicit interrupted result and resume lets the model decide", async () => {
    const repo = gitRepo({ "README.md": "hello\n" })
    const tape = cassette([
      call("toolu_slow", "run_command", { command: "sleep", args: ["10"] }),
      [text("The command was interrupted; I did not run it again."), stop("stop")]
    ])
    const seen = await killMidway(["--project", repo, "Run the slow step", "--approval-mode", "auto", "--cassette", tape], (e) =>
      e.some((x) => x.type === "tool:started")
    )
    const chatId = seen[0]!.chatId
    expect(seen.some((e) => e.type === "tool:result")).toBe(false)

    const resumed = chat(["resume", chatId, "--cassette", tape, "--json"])
    expect(resumed.status, resumed.stderr).toBe(0)
    const after = events(resumed.stdout)
    expect(after[0]!.type).toBe("turn:resumed")
    expect(after.at(-1)!.type).toBe("turn:completed")
    const markdown = chat(["export", chatId]).stdout
    expect(markdown).toContain("**Tool call** `run_command` (`toolu_slow`: interrupted)")
    expect(markdown).toContain("**Result of** `run_command` (`toolu_slow`): interrupted")
    expect(markdown).toContain("Relavium stopped while this tool was running")
    expect(markdown).toContain("The command was interrupted; I did not run it again.")

    const again = chat(["resume", chatId, "--cassette", tape])
    expect(again.stdout).toContain("has nothing to continue")
    expect(chat(["export", chatId]).stdout).toBe(markdown)
  })
})

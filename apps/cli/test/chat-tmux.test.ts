/**
 * The interactive `relavium chat` as a user sees it: in a real terminal (a
 * detached tmux session on its own socket), a message is typed, the streamed
 * answer, the tool calls and their output are read from the screen, an
 * approval is answered inline, Ctrl-C stops a turn without ending the
 * program, and `/exit` quits. Without a terminal, lines come from a pipe.
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { relavium, root } from "./relavium.js"
import { call, cassette, gitRepo, stop, text } from "../../../packages/chat/test/fixtures.js"

const bin = join(root, "apps/cli/bin/relavium.mjs")
const dataDir = mkdtempSync(join(tmpdir(), "relavium-chat-tty-data-"))


/** A detached tmux server of its own, running one command in a 200×60 pane that stays after it exits. */
const tmuxSession = (command: ReadonlyArray<string>, env: Record<string, string>) => {
  const socket = `relavium-test-${process.pid}-${Math.random().toString(36).slice(2, 10)}`
  const tmux = (...args: Array<string>) => execFileSync("tmux", ["-L", socket, "-f", "/dev/null", ...args], { encoding: "utf8" })
  tmux("new-session", "-d", "-s", "chat", "-x", "200", "-y", "60")
  const socketPath = tmux("display-message", "-p", "#{socket_path}").trim()
  tmux("set-option", "-t", "chat", "remain-on-exit", "on")
  const quoted = command.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ")
  tmux(
    "respawn-pane", "-k", "-t", "chat",
    ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    `sh -c ${JSON.stringify(`${quoted}; echo "[relavium exited with $?]"`)}`
  )
  /** The whole pane: scrollback and screen, wrapped lines joined. */
  const screen = () => tmux("capture-pane", "-p", "-J", "-t", "chat", "-S", "-2000")
  return {
    screen,
    /** Types `line` literally and presses Enter. */
    type: (line: string) => {
      tmux("send-keys", "-t", "chat", "-l", line)
      tmux("send-keys", "-t", "chat", "Enter")
    },
    keys: (...keys: Array<string>) => void tmux("send-keys", "-t", "chat", ...keys),
    /** Polls the screen until `pattern` shows (an overall deadline, never a timing assertion); returns the screen. */
    waitFor: async (pattern: RegExp | string, deadlineMs = 45_000): Promise<string> => {
      const until = Date.now() + deadlineMs
      for (;;) {
        const shown = screen()
        if (typeof pattern === "string" ? shown.includes(pattern) : pattern.test(shown)) return shown
        if (Date.now() > until) throw new Error(`the screen never showed ${String(pattern)}; it shows:\n${shown}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    kill: () => {
      try {
        tmux("kill-server")
      } catch {
        // Already gone.
      }
      rmSync(socketPath, { force: true })
    }
  }
}

const sessions: Array<{ kill: () => void }> = []
afterEach(() => {
  for (const s of sessions.splice(0)) s.kill()
})

describe("relavium chat in a terminal (tmux)", () => {
  it("streams the answer, shows tool calls and their output, asks allow? [y/N] inline, Ctrl-C stops a turn, /exit quits", async () => {
    const repo = gitRepo({ "hello.txt": "hello\n" })
    const story = Array.from({ length: 400 }, (_, i) => text(`word${i} `))
    const tape = cassette([
      [text("Let me look "), text("at the file first."), ...call("toolu_read", "read_file", { path: "hello.txt" })],
      [text("I'll update "), text("the greeting."), ...call("toolu_write", "write_file", { path: "hello.txt", content: "hello, world\n" })],
      [text("Updated hello.txt "), text("to greet the world."), stop("stop", 200, 12)],
      [...story, stop("stop")],
      [text("Picking up where I stopped: the end."), stop("stop")]
    ])
    const term = tmuxSession(
      [process.execPath, bin, "chat", "--project", repo, "--cassette", tape, "--token-delay-ms", "20", "--approval-mode", "ask"],
      { RELAVIUM_DATA_DIR: dataDir, NO_COLOR: "1" }
    )
    sessions.push(term)

    const opened = await term.waitFor("/exit or Ctrl-D to quit")
    expect(opened).toMatch(/^chat \S+ · anthropic\/claude-sonnet-4 · ask$/m)
    expect(opened).toContain(`working in ${repo}`)

    term.type("Make hello.txt greet the world")
    const asking = await term.waitFor("allow? [y/N]")
    expect(asking).toContain("> Make hello.txt greet the world")
    expect(asking).toContain("Let me look at the file first.")
    expect(asking).toContain('▸ read_file: {"path":"hello.txt"}')
    expect(asking).toContain("  ✓ read_file: ok\n  │ hello\n")
    expect(asking).toContain("I'll update the greeting.")
    expect(asking).toContain("▸ write_file: hello.txt (13 characters)  (needs your approval)")
    expect(asking).toContain("? write_file: hello.txt (13 characters)")
    expect(readFileSync(join(repo, "hello.txt"), "utf8")).toBe("hello\n")

    term.type("y")
    const answered = await term.waitFor(/chat total \$\d+\.\d+\]/)
    expect(answered).toContain("  allow? [y/N] y\n  allowed\n")
    expect(answered).toContain("  ✓ write_file: ok\n  │ wrote 13 bytes to hello.txt\n  ✎ write hello.txt\n")
    expect(answered).toContain("Updated hello.txt to greet the world.")
    expect(readFileSync(join(repo, "hello.txt"), "utf8")).toBe("hello, world\n")

    // Ctrl-C while the answer streams stops the turn, not the program.
    term.type("Tell me a long story")
    await term.waitFor("word3 ")
    term.keys("C-c")
    const stopped = await term.waitFor("⚠ interrupted: the turn was cancelled")
    expect(stopped).toContain("^C stopping the turn…")
    expect(stopped).not.toContain("word399")
    term.type("/resume")
    await term.waitFor("Picking up where I stopped: the end.")

    term.type("/exit")
    const ended = await term.waitFor("[relavium exited with 0]")
    const chatId = /^chat (\S+) · /m.exec(ended)![1]!
    expect(ended).toContain(`chat ${chatId} is saved; continue it with: relavium chat ${chatId}`)

    const markdown = relavium(["chat", "export", chatId], { env: { RELAVIUM_DATA_DIR: dataDir } })
    expect(markdown.status, markdown.stderr).toBe(0)
    expect(markdown.stdout).toContain("(`toolu_write`: done, allowed by cli)")
    expect(markdown.stdout).toMatch(/## Assistant \(claude-sonnet-4\) — interrupted\n\nword0 word1 word2 word3 /)
  })
})

describe("relavium chat without a terminal", () => {
  const chat = (args: ReadonlyArray<string>, input: string) => relavium(["chat", ...args], { env: { RELAVIUM_DATA_DIR: dataDir }, input })

  it("reads lines from a pipe; the end of input leaves an approval undecided, reopening asks again and anything but y denies", () => {
    const repo = gitRepo({ "README.md": "keep me\n" })
    const tape = cassette([
      [text("Removing it."), ...call("toolu_rm", "run_command", { command: "git", args: ["rm", "README.md"] })],
      [text("Understood: README.md stays."), stop("stop")]
    ])
    const first = chat(["--project", repo, "--cassette", tape], "Remove the README\n")
    expect(first.status, first.stderr).toBe(0)
    expect(first.stdout).toContain("> Remove the README\nRemoving it.\n▸ run_command: git rm README.md  (needs your approval)\n")
    expect(first.stdout).toContain("? run_command: git rm README.md\n  allow? [y/N] \n  left undecided: the chat waits for a decision (/approve asks again)\n")
    const chatId = /^chat (\S+) · /m.exec(first.stdout)![1]!
    expect(first.stdout).toContain(`continue it with: relavium chat ${chatId}`)

    const reopened = chat([chatId, "--cassette", tape], "sure, why not\n/exit\n")
    expect(reopened.status, reopened.stderr).toBe(0)
    expect(reopened.stdout).toContain("  2 messages so far: Remove the README\n")
    expect(reopened.stdout).toContain("the chat waits for a decision on a tool call:\n? run_command: git rm README.md\n  allow? [y/N] sure, why not\n  denied")
    expect(reopened.stdout).toContain("  ✗ run_command: denied\n  │ denied by the user")
    expect(reopened.stdout).toContain("Understood: README.md stays.")
    expect(existsSync(join(repo, "README.md"))).toBe(true)
  })

  it("`chat resume` without an id reopens the most recent chat; an unknown chat is a clear error", () => {
    const tape = cassette([])
    const resumed = chat(["resume", "--cassette", tape], "/mode accept-edits\n/exit\n")
    expect(resumed.status, resumed.stderr).toBe(0)
    expect(resumed.stdout).toContain("Remove the README")
    expect(resumed.stdout).toContain("approval mode: accept-edits")
    const unknown = chat(["no-such-chat"], "")
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toBe("relavium: no chat with id no-such-chat (see `relavium chat list`)\n")
  })
})

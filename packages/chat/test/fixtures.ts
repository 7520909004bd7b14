/**
 * Plain fixtures for chat tests in any package (no Effect layers): temporary
 * directories removed at exit, real git repositories, and cassette files of
 * scripted model calls in the wire shape of `@relavium/llm`'s cassettes.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const made: Array<string> = []
process.once("exit", () => {
  for (const dir of made) Fs.rmSync(dir, { recursive: true, force: true })
})

/** A fresh directory (its real path), removed when the process exits. */
export const tempDir = (prefix = "relavium-chat-"): string => {
  const dir = Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix)))
  made.push(dir)
  return dir
}

export const git = (cwd: string, ...args: Array<string>) =>
  execFileSync("git", args, { cwd, encoding: "utf8", env: { ...process.env, GIT_TERMINAL_PROMPT: "0" } }).trim()

/** A git repository on `main` with `files` committed. */
export const gitRepo = (files: Record<string, string>): string => {
  const root = tempDir("relavium-repo-")
  git(root, "init", "-q", "-b", "main")
  git(root, "config", "user.email", "test@relavium.dev")
  git(root, "config", "user.name", "Relavium Test")
  for (const [name, content] of Object.entries(files)) {
    Fs.mkdirSync(Path.dirname(Path.join(root, name)), { recursive: true })
    Fs.writeFileSync(Path.join(root, name), content)
  }
  git(root, "add", "-A")
  git(root, "commit", "-q", "-m", "initial")
  return root
}

/** One streamed chunk of a cassette call. */
export type Chunk = Record<string, unknown>
export const text = (t: string): Chunk => ({ type: "text_delta", text: t })
export const stop = (reason: string, inputTokens = 100, outputTokens = 20): Chunk => ({
  type: "stop",
  stopReason: reason,
  usage: { inputTokens, outputTokens }
})
/** A model call that asks for one tool. */
export const call = (id: string, name: string, args: unknown): Array<Chunk> => [
  { type: "tool_call_start", id, name },
  { type: "tool_call_delta", id, argsJsonDelta: JSON.stringify(args) },
  { type: "tool_call_end", id },
  stop("tool_use", 50, 10)
]

/** A cassette file (anthropic/claude-sonnet-4) replaying `calls` in order. */
export const cassette = (calls: ReadonlyArray<ReadonlyArray<Chunk>>): string => {
  const file = Path.join(tempDir("relavium-chat-cassette-"), "chat.cassette.json")
  Fs.writeFileSync(file, JSON.stringify({ schema_version: "1.0", provider: "anthropic", model: "claude-sonnet-4", calls }))
  return file
}

/**
 * `Worktrees.layerGit` runs the real git. These tests put a `git` wrapper
 * first on PATH that records the environment it was started with and then
 * runs the real git, so they see exactly what reaches git.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect } from "effect"
import { Worktrees } from "../src/index.js"
import { gitRepo, tempDir } from "./fixtures.js"

const realGit = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim()

/** A directory holding a `git` that appends its environment (NUL-separated) to `log`, then execs the real git. */
const recordingGit = () => {
  const bin = tempDir("relavium-git-wrapper-")
  const log = Path.join(bin, "env.log")
  Fs.writeFileSync(Path.join(bin, "git"), `#!/bin/sh\nenv -0 >> '${log}'\nprintf '\\0--\\0' >> '${log}'\nexec '${realGit}' "$@"\n`, { mode: 0o755 })
  return { bin, log }
}

/** Runs `body` with these variables set in this process's environment, then puts the environment back. */
const withEnv = <A, E, R>(vars: Record<string, string>, body: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
      Object.assign(process.env, vars)
      return saved
    }),
    () => body,
    (saved) =>
      Effect.sync(() => {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k]
          else process.env[k] = v
        }
      })
  )

describe("Worktrees.layerGit", () => {
  it.effect("creates a worktree on a new branch, and git never sees provider keys or tokens", () =>
    Effect.gen(function* () {
      const repository = gitRepo({ "README.md": "hello\n" })
      const { bin, log } = recordingGit()
      const path = Path.join(tempDir("relavium-wt-"), "chat-1")
      const secrets = {
        ANTHROPIC_API_KEY: "sk-ant-secret-value-1",
        RELAVIUM_OPENAI_API_KEY: "sk-openai-secret-value-2",
        RELAVIUM_MASTER_KEY: "master-secret-value-3",
        RELAVIUM_TOKEN: "bearer-secret-value-4",
        GIT_DIR: "/somewhere/else"
      }
      const result = yield* withEnv(
        { ...secrets, PATH: `${bin}${Path.delimiter}${process.env.PATH ?? ""}`, LC_ALL: "C" },
        Effect.flatMap(Worktrees, (worktrees) => worktrees.add({ repository, path, branch: "relavium/chat-1" }))
      ).pipe(Effect.provide(Worktrees.layerGit))

      // It worked: the worktree is there, on the new branch, at the repository's HEAD.
      assert.strictEqual(Fs.readFileSync(Path.join(path, "README.md"), "utf8"), "hello\n")
      assert.strictEqual(execFileSync(realGit, ["rev-parse", "--abbrev-ref", "HEAD"], { cwd: path, encoding: "utf8" }).trim(), "relavium/chat-1")
      assert.strictEqual(result.baseRef, execFileSync(realGit, ["rev-parse", "HEAD"], { cwd: repository, encoding: "utf8" }).trim())

      const calls = Fs.readFileSync(log, "utf8").split("\0--\0").filter((c) => c !== "")
      assert.isAtLeast(calls.length, 2, "every git command went through the wrapper")
      for (const call of calls) {
        const env = new Map(call.split("\0").filter((l) => l !== "").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]))
        for (const [name, value] of Object.entries(secrets)) {
          assert.isFalse(env.has(name), `${name} reached git`)
          assert.notInclude(call, value, `the value of ${name} reached git`)
        }
        // What git needs is still there.
        assert.isTrue(env.get("PATH")?.startsWith(bin), "PATH reaches git")
        assert.strictEqual(env.get("LC_ALL"), "C")
        assert.strictEqual(env.get("GIT_TERMINAL_PROMPT"), "0")
        if (process.env.HOME !== undefined) assert.strictEqual(env.get("HOME"), process.env.HOME)
      }
    }))

  it.effect("finds the repository of a directory inside it, and none outside one", () =>
    Effect.gen(function* () {
      const repository = gitRepo({ "src/a.ts": "export {}\n" })
      const worktrees = yield* Worktrees
      const inside = yield* worktrees.repositoryOf(Path.join(repository, "src"))
      assert.deepStrictEqual(inside._tag === "Some" ? inside.value : undefined, repository)
      const outside = yield* worktrees.repositoryOf(tempDir("relavium-not-a-repo-"))
      assert.strictEqual(outside._tag, "None")
    }).pipe(Effect.provide(Worktrees.layerGit)))
})

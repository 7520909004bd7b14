/**
 * Git worktrees for chats that work on their own branch: `git worktree add`
 * of a new branch at the project's HEAD, and `git worktree remove`. Git runs
 * without hooks or an fsmonitor (as the daemon runs it), never prompts, and is
 * given a time limit. It gets only the environment it needs (see `gitEnvironment`):
 * provider keys and other secrets of this process never reach it.
 */
import { execFile } from "node:child_process"
import { Context, Effect, Layer, Option } from "effect"
import { NotAGitRepository, WorktreeError } from "./ChatError.js"

export class Worktrees extends Context.Tag("@relavium/chat/Worktrees")<
  Worktrees,
  {
    /** The top directory of the git work tree `directory` is in, if any. */
    readonly repositoryOf: (directory: string) => Effect.Effect<Option.Option<string>>
    /** Adds a worktree at `path` on a new `branch` from HEAD; returns the commit it started from. */
    readonly add: (options: {
      readonly repository: string
      readonly path: string
      readonly branch: string
    }) => Effect.Effect<{ readonly baseRef: string }, NotAGitRepository | WorktreeError>
    /**
     * Removes the worktree (its uncommitted changes too). The branch and its commits stay,
     * unless `deleteBranch` names it (undoing an `add` whose chat could not be stored).
     */
    readonly remove: (options: {
      readonly repository: string
      readonly path: string
      readonly deleteBranch?: string | undefined
    }) => Effect.Effect<void, WorktreeError>
  }
>() {
  static readonly layerGit: Layer.Layer<Worktrees> = Layer.succeed(
    Worktrees,
    Worktrees.of({
      repositoryOf: (directory) =>
        git(directory, ["rev-parse", "--show-toplevel"]).pipe(
          Effect.map((out) => Option.some(out.trim())),
          Effect.orElseSucceed(() => Option.none())
        ),
      add: ({ branch, path, repository }) =>
        Effect.gen(function* () {
          const head = yield* git(repository, ["rev-parse", "--verify", "HEAD^{commit}"]).pipe(
            Effect.mapError(() => NotAGitRepository.of(repository, "it has no commit to branch from"))
          )
          yield* git(repository, ["worktree", "add", "-b", branch, path, head.trim()]).pipe(
            Effect.mapError((e) => new WorktreeError({ message: `cannot create the worktree ${path}: ${e.message}` }))
          )
          return { baseRef: head.trim() }
        }),
      remove: ({ deleteBranch, path, repository }) =>
        git(repository, ["worktree", "remove", "--force", path]).pipe(
          Effect.zipRight(deleteBranch === undefined ? Effect.void : git(repository, ["branch", "-D", deleteBranch])),
          Effect.asVoid,
          Effect.mapError((e) => new WorktreeError({ message: `cannot remove the worktree ${path}: ${e.message}` }))
        )
    })
  )
}

const GIT_SAFETY = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]

/** What git needs to find itself, its configuration and its identity, and to speak the user's language. */
const PASSED_TO_GIT = new Set([
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "LANG",
  "LANGUAGE",
  "TZ",
  "TMPDIR",
  "XDG_CONFIG_HOME",
  // Windows: where git, its configuration and temporary files are.
  "SYSTEMROOT",
  "COMSPEC",
  "PATHEXT",
  "USERPROFILE",
  "HOMEDRIVE",
  "HOMEPATH",
  "APPDATA",
  "LOCALAPPDATA",
  "TEMP",
  "TMP",
  // Git's own: configuration files and the identity of the commits it records.
  "GIT_CONFIG_NOSYSTEM",
  "GIT_CONFIG_GLOBAL",
  "GIT_CONFIG_SYSTEM",
  "GIT_AUTHOR_NAME",
  "GIT_AUTHOR_EMAIL",
  "GIT_COMMITTER_NAME",
  "GIT_COMMITTER_EMAIL",
  "GIT_EXEC_PATH"
])

/**
 * The environment git runs with: the variables above and `LC_*` from this process, nothing else
 * (provider keys, tokens and `GIT_DIR`-style redirections stay behind), and never a prompt.
 */
export const gitEnvironment = (from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(from)) {
    if (value === undefined) continue
    const key = process.platform === "win32" ? name.toUpperCase() : name
    if (PASSED_TO_GIT.has(key) || key.startsWith("LC_")) env[name] = value
  }
  env.GIT_TERMINAL_PROMPT = "0"
  return env
}

const git = (cwd: string, args: ReadonlyArray<string>): Effect.Effect<string, WorktreeError> =>
  Effect.async<string, WorktreeError>((resume, signal) => {
    execFile(
      "git",
      [...GIT_SAFETY, ...args],
      { cwd, signal, timeout: 60_000, env: gitEnvironment(), encoding: "utf8" },
      (error, stdout, stderr) => {
        if (error) {
          const detail = (stderr || error.message).trim().split("\n").slice(-2).join("; ")
          resume(Effect.fail(new WorktreeError({ message: detail })))
        } else {
          resume(Effect.succeed(stdout))
        }
      }
    )
  })

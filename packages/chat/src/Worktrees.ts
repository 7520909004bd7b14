/**
 * Git worktrees for chats that work on their own branch: `git worktree add`
 * of a new branch at the project's HEAD, and `git worktree remove`. Git runs
 * without hooks or an fsmonitor (as the daemon runs it), never prompts, and is
 * given a time limit.
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

const git = (cwd: string, args: ReadonlyArray<string>): Effect.Effect<string, WorktreeError> =>
  Effect.async<string, WorktreeError>((resume, signal) => {
    execFile(
      "git",
      [...GIT_SAFETY, ...args],
      { cwd, signal, timeout: 60_000, env: { ...process.env, GIT_TERMINAL_PROMPT: "0" }, encoding: "utf8" },
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

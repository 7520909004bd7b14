/**
 * Decides whether a `run_command` call may run, and which executable runs.
 *
 * The model's program and each allowlist entry's program are resolved to an
 * absolute path through PATH (relative PATH entries are ignored) and compared
 * as paths; the resolved path is what gets spawned, so a later change of PATH
 * or a file the model plants cannot change what an entry means. Arguments are
 * matched with the command pattern language (docs/command-policy.md); a match
 * of an `allowedCommandGlobs` pattern still goes through the deny-list of
 * argument forms that turn programs into shells or writers. `allowedCommands`
 * lines are exact: the author (or the person approving a chat call) spelt out
 * every argument, so the deny-list does not second-guess them.
 */
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { Effect, Either } from "effect"
import { CommandDenyList, CommandPattern, ToolPolicyCheck } from "@relavium/domain"
import { ToolError } from "@relavium/ports"
import type { ToolPolicy } from "./ToolPolicy.js"

const denied = (message: string) => new ToolError({ code: "tool_denied", message })

const isExecutableFile = (path: string): boolean => {
  try {
    if (!Fs.statSync(path).isFile()) return false
    Fs.accessSync(path, Fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The path with its directory resolved through symlinks (`/bin/cat` is
 * `/usr/bin/cat` on a merged-/usr system), but not the file itself: multi-call
 * binaries (busybox) are one file under many names, and the name decides.
 */
const canonical = (path: string): string => {
  try {
    return NodePath.join(Fs.realpathSync(NodePath.dirname(path)), NodePath.basename(path))
  } catch {
    return path
  }
}

/**
 * The absolute path a program name runs as: a name with a `/` is taken as a
 * path (relative to `cwd`), a bare name is looked up in the absolute entries
 * of `searchPath`. Undefined when there is no such executable.
 */
export const resolveProgram = (program: string, searchPath: string | undefined, cwd: string): string | undefined => {
  if (program === "" || program.includes("\0")) return undefined
  if (program.includes("/")) {
    const path = NodePath.resolve(cwd, program)
    return isExecutableFile(path) ? canonical(path) : undefined
  }
  for (const directory of (searchPath ?? "").split(NodePath.delimiter)) {
    if (directory === "" || !NodePath.isAbsolute(directory)) continue
    const candidate = NodePath.join(directory, program)
    if (isExecutableFile(candidate)) return canonical(candidate)
  }
  return undefined
}

const parsed = new Map<string, Either.Either<CommandPattern.CommandPattern, string>>()
const parseCached = (source: string, exact: boolean) => {
  const key = `${exact ? "=" : "~"}${source}`
  let entry = parsed.get(key)
  if (entry === undefined) {
    entry = CommandPattern.parse(source, { exact })
    if (parsed.size > 1000) parsed.clear()
    parsed.set(key, entry)
  }
  return entry
}

export interface Authorized {
  /** The absolute path to spawn. */
  readonly executable: string
}

export interface AuthorizeOptions {
  readonly cwd: string
  readonly searchPath: string | undefined
  /** The workspace root: a bare program name that resolves inside it is refused (the model can write there). */
  readonly workspaceRoot: string
}

const inside = (root: string, path: string) => {
  const relative = NodePath.relative(root, path)
  return relative === "" || (!relative.startsWith("..") && !NodePath.isAbsolute(relative))
}

/** Allows the call (with the executable to spawn) or fails with a `tool_denied` that names what to change. */
export const authorize = (
  policy: ToolPolicy,
  command: string,
  args: ReadonlyArray<string>,
  options: AuthorizeOptions
): Effect.Effect<Authorized, ToolError> =>
  Effect.suspend(() => {
    const exact = policy.allowedCommands ?? []
    const globs = policy.allowedCommandGlobs ?? []
    const line = CommandPattern.display(command, args)
    if (!ToolPolicyCheck.allowsCommands(policy)) return Effect.fail(denied(ToolPolicyCheck.NO_COMMANDS))
    const resolve = (program: string) => resolveProgram(program, options.searchPath, options.cwd)
    const executable = resolve(command)
    const entries = [
      ...exact.map((source) => ({ source, exact: true, pattern: parseCached(source, true) })),
      ...globs.map((source) => ({ source, exact: false, pattern: parseCached(source, false) }))
    ]
    if (executable === undefined) {
      const named = entries.some((entry) => Either.isRight(entry.pattern) && entry.pattern.right.program === command)
      return Effect.fail(
        named
          ? new ToolError({ code: "tool_failed", message: `cannot run '${command}': no such program on the daemon's PATH` })
          : denied(`the command line '${line}' is not allowed: '${command}' is not an executable on the daemon's PATH`)
      )
    }
    if (!command.includes("/") && inside(options.workspaceRoot, executable)) {
      return Effect.fail(denied(`'${command}' resolves to ${executable}, inside the workspace; name the program by its path instead`))
    }
    const reasons: Array<string> = []
    for (const entry of entries) {
      if (Either.isLeft(entry.pattern)) {
        reasons.push(`'${entry.source}' is not a valid pattern (${entry.pattern.left})`)
        continue
      }
      const pattern = entry.pattern.right
      if (resolve(pattern.program) !== executable) continue
      const match = CommandPattern.matchArguments(pattern, args)
      if (!match.matched) {
        reasons.push(`'${entry.source}': ${match.reason}`)
        continue
      }
      if (entry.exact) return Effect.succeed({ executable })
      const denial = CommandDenyList.deniedArguments(executable, args)
      if (denial !== undefined) {
        const what = denial.index === 0 ? `the program '${command}'` : `argument ${denial.index} ${JSON.stringify(denial.argument)}`
        return Effect.fail(denied(`the command line '${line}' is refused: ${what}: ${denial.why}`))
      }
      return Effect.succeed({ executable })
    }
    const why = reasons.length === 0 ? `no entry allows ${executable}` : reasons.slice(0, 3).join("; ")
    return Effect.fail(denied(`the command line '${line}' is not in the workflow's allowedCommands or allowedCommandGlobs: ${why}`))
  })

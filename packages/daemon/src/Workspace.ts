/**
 * Confinement of file tools to the workspace root. A path is resolved against
 * the root, then the deepest part of it that exists is resolved with realpath
 * (following every symlink, including ones a command created a moment ago);
 * anything that lands outside the root is refused with `tool_denied`.
 */
import * as NodeFs from "node:fs/promises"
import * as NodePath from "node:path"
import { Effect } from "effect"
import { ToolError } from "@relavium/ports"

export interface Workspace {
  /** The root as given, for messages. */
  readonly display: string
  /** The root after realpath: every check compares against this. */
  readonly root: string
}

export const denied = (message: string) => new ToolError({ code: "tool_denied", message })
export const failed = (message: string) => new ToolError({ code: "tool_failed", message })

const isInside = (root: string, candidate: string) => {
  const relative = NodePath.relative(root, candidate)
  return relative === "" || (!relative.startsWith(`..${NodePath.sep}`) && relative !== ".." && !NodePath.isAbsolute(relative))
}

/** Opens the workspace: its root must be an existing directory. */
export const open = (directory: string): Effect.Effect<Workspace, ToolError> =>
  Effect.tryPromise({
    try: async () => {
      const root = await NodeFs.realpath(NodePath.resolve(directory))
      const stat = await NodeFs.stat(root)
      if (!stat.isDirectory()) throw new Error("not a directory")
      return { display: directory, root }
    },
    catch: (error) =>
      new ToolError({ code: "tool_unavailable", message: `the daemon's workspace '${directory}' cannot be opened: ${errorText(error)}` })
  })

export const errorText = (error: unknown): string => {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code
    return code !== undefined && !error.message.includes(code) ? `${code}: ${error.message}` : error.message
  }
  return String(error)
}

const lstatOrUndefined = async (path: string) => {
  try {
    return await NodeFs.lstat(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return undefined
    throw error
  }
}

/**
 * The real absolute path of `path` (relative to the root, or absolute inside
 * it), or `tool_denied` if it or any symlink on the way leads outside.
 * Paths that do not exist yet resolve through their deepest existing ancestor.
 */
export const resolve = (workspace: Workspace, path: string): Effect.Effect<string, ToolError> =>
  Effect.gen(function* () {
    if (path.includes("\0")) return yield* denied(`the path ${JSON.stringify(path)} contains a NUL byte`)
    const lexical = NodePath.resolve(workspace.root, path)
    const lexicalFromDisplay = NodePath.resolve(workspace.display, path)
    if (!isInside(workspace.root, lexical) && !isInside(NodePath.resolve(workspace.display), lexicalFromDisplay)) {
      return yield* denied(`'${path}' is outside the workspace; file tools only reach paths inside the workspace root`)
    }
    // An absolute path spelled through the unresolved root (e.g. /tmp/… for /private/tmp/…) is re-based on the real root.
    const target = isInside(workspace.root, lexical)
      ? lexical
      : NodePath.join(workspace.root, NodePath.relative(NodePath.resolve(workspace.display), lexicalFromDisplay))
    const real = yield* Effect.tryPromise({
      try: async () => {
        const missing: Array<string> = []
        let current = target
        for (;;) {
          const stat = await lstatOrUndefined(current)
          if (stat !== undefined) {
            let resolved: string
            try {
              resolved = await NodeFs.realpath(current)
            } catch (error) {
              // A symlink whose target does not exist: writing through it would create the target wherever it points.
              if (stat.isSymbolicLink()) return { dangling: true as const, at: current }
              throw error
            }
            return { dangling: false as const, path: NodePath.join(resolved, ...missing.reverse()) }
          }
          const parent = NodePath.dirname(current)
          if (parent === current) return { dangling: false as const, path: NodePath.join(current, ...missing.reverse()) }
          missing.push(NodePath.basename(current))
          current = parent
        }
      },
      catch: (error) => failed(`cannot resolve '${path}': ${errorText(error)}`)
    })
    if (real.dangling) {
      return yield* denied(`'${path}' goes through the symlink '${NodePath.relative(workspace.root, real.at)}', whose target does not exist; refusing to follow it`)
    }
    if (!isInside(workspace.root, real.path)) {
      return yield* denied(`'${path}' resolves (through a symlink) to a path outside the workspace`)
    }
    return real.path
  })

/** The path relative to the root, for messages and listings ("." for the root). */
export const relative = (workspace: Workspace, real: string) => NodePath.relative(workspace.root, real) || "."

/** Whether the real path lies inside the repository metadata directory (`.git`), which file tools do not write. */
export const isGitMetadata = (workspace: Workspace, real: string) =>
  relative(workspace, real).split(NodePath.sep).includes(".git")

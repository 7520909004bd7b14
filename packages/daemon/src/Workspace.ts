/**
 * Confinement of file tools to the workspace root (docs/security/files.md).
 * On Linux every path is walked from a descriptor of the root without the
 * kernel following any symlink (`internal/Confined.ts`), and files are read
 * and written through the descriptor that was checked, so swapping a
 * directory for a symlink mid-call cannot lead outside. Paths under
 * `excluded` (the data directory, the key file) are never reached. Anything
 * that would land outside or in an excluded path is refused with `tool_denied`.
 */
import * as NodeFs from "node:fs/promises"
import { constants as FsConstants } from "node:fs"
import * as NodePath from "node:path"
import { Effect } from "effect"
import { ToolError } from "@relavium/ports"
import * as Confined from "./internal/Confined.js"

export interface Workspace {
  /** The root as given, for messages. */
  readonly display: string
  /** The root after realpath: every check compares against this. */
  readonly root: string
  /** Real absolute paths no file tool reaches (the data directory, the key file). */
  readonly excluded: ReadonlyArray<string>
  /** The excluded paths that lie inside the root, relative to it with `/`: walks (list, glob, grep) skip them. */
  readonly excludedRelative: ReadonlyArray<string>
}

export const denied = (message: string) => new ToolError({ code: "tool_denied", message })
export const failed = (message: string) => new ToolError({ code: "tool_failed", message })

const isInside = Confined.isInside

/** The real path of `path`, through its deepest existing ancestor when it does not exist (yet). */
const realpathOfDeepest = async (path: string): Promise<string> => {
  const missing: Array<string> = []
  let current = NodePath.resolve(path)
  for (;;) {
    try {
      return NodePath.join(await NodeFs.realpath(current), ...missing.reverse())
    } catch {
      const parent = NodePath.dirname(current)
      if (parent === current) return NodePath.join(current, ...missing.reverse())
      missing.push(NodePath.basename(current))
      current = parent
    }
  }
}

/** Opens the workspace: its root must be an existing directory. `excludedPaths` are absolute paths no file tool reaches. */
export const open = (directory: string, excludedPaths: ReadonlyArray<string> = []): Effect.Effect<Workspace, ToolError> =>
  Effect.tryPromise({
    try: async () => {
      const root = await NodeFs.realpath(NodePath.resolve(directory))
      const stat = await NodeFs.stat(root)
      if (!stat.isDirectory()) throw new Error("not a directory")
      const excluded = new Set<string>()
      for (const path of excludedPaths) {
        if (!NodePath.isAbsolute(path)) throw new Error(`the excluded path '${path}' is not absolute`)
        excluded.add(NodePath.resolve(path))
        excluded.add(await realpathOfDeepest(path))
      }
      const excludedRelative = [...excluded]
        .filter((path) => isInside(root, path))
        .map((path) => NodePath.relative(root, path).split(NodePath.sep).join("/") || ".")
      return { display: directory, root, excluded: [...excluded], excludedRelative: [...new Set(excludedRelative)] }
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
 * it), or `tool_denied` if it or any symlink on the way leads outside or into
 * an excluded path. Paths that do not exist yet resolve lexically from their
 * deepest existing ancestor. For walks and git pathspecs; reads and writes use
 * {@link openRead} and {@link openWrite}, which check the descriptor they use.
 */
export const resolve = (workspace: Workspace, path: string): Effect.Effect<string, ToolError> =>
  Confined.supported
    ? confined(workspace, path, { _tag: "Locate" }, "resolve").pipe(Effect.map((located) => located.real))
    : resolveByRealpath(workspace, path)

/** The parts of `path` relative to the real root, or `tool_denied` when it is lexically outside. */
const lexicalParts = (workspace: Workspace, path: string): Effect.Effect<ReadonlyArray<string>, ToolError> => {
  if (path.includes("\0")) return Effect.fail(denied(`the path ${JSON.stringify(path)} contains a NUL byte`))
  const lexical = NodePath.resolve(workspace.root, path)
  const lexicalFromDisplay = NodePath.resolve(workspace.display, path)
  if (!isInside(workspace.root, lexical) && !isInside(NodePath.resolve(workspace.display), lexicalFromDisplay)) {
    return Effect.fail(denied(`'${path}' is outside the workspace; file tools only reach paths inside the workspace root`))
  }
  const relativePath = isInside(workspace.root, lexical)
    ? NodePath.relative(workspace.root, lexical)
    : NodePath.relative(NodePath.resolve(workspace.display), lexicalFromDisplay)
  return Effect.succeed(relativePath.split(NodePath.sep).filter((part) => part !== ""))
}

const refusalMessage = (path: string, refusal: Confined.Refusal): string => {
  switch (refusal._tag) {
    case "Outside":
      return refusal.viaSymlink
        ? `'${path}' resolves (through a symlink) to a path outside the workspace`
        : `'${path}' is outside the workspace; file tools only reach paths inside the workspace root`
    case "Dangling":
      return `'${path}' goes through the symlink '${refusal.link}', whose target does not exist; refusing to follow it`
    case "Excluded":
      return `'${path}' is excluded from file tools ('${refusal.relative}' holds Relavium's data or keys)`
    case "GitMetadata":
      return `'${path}' is inside .git; file tools do not change repository metadata (use git_commit)`
    case "HardLinked":
      return `'${path}' has ${refusal.links} hard links; file tools only write files with a single link (another link may be outside the workspace)`
    case "ExcludedInode":
      return `'${path}' is a hard link to a file excluded from file tools`
  }
}

const verbOf = { read: "cannot read", write: "cannot write", resolve: "cannot resolve" } as const

const confined = (workspace: Workspace, path: string, intent: Confined.Intent, verb: keyof typeof verbOf) =>
  Effect.flatMap(lexicalParts(workspace, path), (parts) =>
    Effect.tryPromise({
      try: () => Confined.locate(workspace, parts, intent),
      catch: (error) =>
        error instanceof Confined.Refused ? denied(refusalMessage(path, error.refusal)) : failed(`${verbOf[verb]} '${path}': ${errorText(error)}`)
    })
  )

/** An opened file and what it is; the handle is closed when the scope ends. */
export interface OpenedFile {
  readonly handle: NodeFs.FileHandle
  readonly real: string
  readonly size: number
}

const withHandle = (effect: Effect.Effect<Confined.Located, ToolError>) =>
  Effect.acquireRelease(
    Effect.map(effect, (located): OpenedFile => ({ handle: located.handle!, real: located.real, size: located.size })),
    (opened) => Effect.promise(() => opened.handle.close().catch(() => undefined))
  )

/**
 * Opens a regular file of the workspace for reading (never a FIFO, socket or
 * device; never blocking). A file with several hard links is read unless it
 * is one of the excluded files (a hard link to the key file reads as the key file).
 */
export const openRead = (workspace: Workspace, path: string) =>
  withHandle(Confined.supported ? confined(workspace, path, { _tag: "Read" }, "read") : openByRealpath(workspace, path, { _tag: "Read" }))

/**
 * Opens (creating it and its parent directories) a regular file of the
 * workspace for writing: truncated unless `append`; never in `.git`; never a
 * file with more than one hard link.
 */
export const openWrite = (workspace: Workspace, path: string, append: boolean) =>
  withHandle(
    Confined.supported
      ? confined(workspace, path, { _tag: "Write", append }, "write")
      : openByRealpath(workspace, path, { _tag: "Write", append })
  )

/** Where `/proc/self/fd` is missing (macOS): resolve by realpath, then open with O_NOFOLLOW and check the descriptor. */
const openByRealpath = (workspace: Workspace, path: string, intent: Confined.Intent) =>
  Effect.gen(function* () {
    const real = yield* resolveByRealpath(workspace, path)
    const write = intent._tag === "Write"
    if (write && isGitMetadata(workspace, real)) return yield* denied(refusalMessage(path, { _tag: "GitMetadata" }))
    const what = write ? "cannot write" : "cannot read"
    if (write) yield* Effect.tryPromise({ try: () => NodeFs.mkdir(NodePath.dirname(real), { recursive: true }), catch: (e) => failed(`${what} '${path}': ${errorText(e)}`) })
    const flags = (write ? FsConstants.O_WRONLY | FsConstants.O_CREAT | (intent.append ? FsConstants.O_APPEND : 0) : FsConstants.O_RDONLY) |
      FsConstants.O_NOFOLLOW | FsConstants.O_NONBLOCK | FsConstants.O_NOCTTY
    return yield* Effect.tryPromise({
      try: async (): Promise<Confined.Located> => {
        const handle = await NodeFs.open(real, flags, 0o644)
        try {
          const stat = await handle.stat()
          if (stat.isDirectory()) throw new Error("it is a directory (use list_directory)")
          if (!stat.isFile()) throw new Error("it is not a regular file; file tools read and write regular files only")
          if (write && stat.nlink > 1) throw new Confined.Refused({ _tag: "HardLinked", links: stat.nlink })
          if (write && !intent.append) await handle.truncate(0)
          return { real, handle, size: stat.size }
        } catch (error) {
          await handle.close()
          throw error
        }
      },
      catch: (error) => (error instanceof Confined.Refused ? denied(refusalMessage(path, error.refusal)) : failed(`${what} '${path}': ${errorText(error)}`))
    })
  })

const resolveByRealpath = (workspace: Workspace, path: string): Effect.Effect<string, ToolError> =>
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
    const excluded = Confined.excludedBy(workspace, real.path)
    if (excluded !== undefined) return yield* denied(refusalMessage(path, { _tag: "Excluded", relative: excluded }))
    return real.path
  })

/** The path relative to the root, for messages and listings ("." for the root). */
export const relative = (workspace: Workspace, real: string) => NodePath.relative(workspace.root, real) || "."

/** Whether the real path lies inside the repository metadata directory (`.git`), which file tools do not write. */
export const isGitMetadata = (workspace: Workspace, real: string) =>
  relative(workspace, real).split(NodePath.sep).includes(".git")

/** Whether a path relative to the root (with `/`) is, or is inside, an excluded path: walks skip it. */
export const isExcludedRelative = (workspace: Workspace, relativePath: string): boolean =>
  workspace.excludedRelative.some((excluded) => excluded === "." || relativePath === excluded || relativePath.startsWith(`${excluded}/`))

/** Whether a file with several hard links is one of the excluded files (searches skip it, as reads refuse it). */
export const isExcludedFile = (workspace: Workspace, stat: { readonly nlink: number; readonly dev: number; readonly ino: number }): Promise<boolean> =>
  stat.nlink > 1 && workspace.excluded.length > 0 ? Confined.isExcludedInode(workspace, stat.dev, stat.ino) : Promise.resolve(false)

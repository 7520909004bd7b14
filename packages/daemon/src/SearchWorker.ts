/**
 * Worker-thread entry of the search tools (`list_directory`, `glob`, `grep`; the host side is
 * Search.ts). Everything a model's arguments can make expensive runs here: the directory walk, glob
 * matching (a pathological glob backtracks) and the regular expression (a catastrophic pattern never
 * returns). The host terminates this worker at the time limit, so blocking code is fine here.
 * Bundled beside the CLI as search-worker.mjs (apps/cli/build.mjs).
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { serve } from "@relavium/ports/WorkerServe"
import { pathMatcher } from "./Glob.js"

interface Common {
  /** The workspace root (real path). */
  readonly root: string
  /** The real path to search, inside the root. */
  readonly base: string
  /** How `base` is shown, relative to the root ("." for the root). */
  readonly prefix: string
  /** Root-relative paths the walk never lists or enters (e.g. the data directory); "." excludes all. */
  readonly excluded: ReadonlyArray<string>
  /** Real absolute excluded paths: a file with several hard links to one of their files is skipped. */
  readonly excludedPaths: ReadonlyArray<string>
}

export type SearchRequest =
  | Common & { readonly op: "list"; readonly recursive: boolean; readonly glob: string | undefined }
  | Common & { readonly op: "glob"; readonly pattern: string }
  | Common & { readonly op: "grep"; readonly pattern: string; readonly ignoreCase: boolean; readonly glob: string | undefined }

/** `ok: false` is a tool error the model can act on. */
export type SearchReply = { readonly ok: true; readonly output: string } | { readonly ok: false; readonly message: string }

class SearchError extends Error {}

interface Entry {
  readonly relative: string
  readonly kind: "file" | "directory" | "symlink" | "other"
}

/** Directories a walk does not enter unless asked to start in them. */
const SKIPPED_DIRECTORIES = new Set([".git", "node_modules"])
const MAX_WALK_ENTRIES = 50_000
const MAX_GLOB_RESULTS = 2000
const MAX_GREP_MATCHES = 500
const MAX_GREP_FILE_BYTES = 4 * 1024 * 1024
const MAX_GREP_LINE_CHARS = 300

const errorText = (error: unknown): string => {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code
    return code !== undefined && !error.message.includes(code) ? `${code}: ${error.message}` : error.message
  }
  return String(error)
}

const isExcluded = (request: Common, real: string): boolean => {
  const fromRoot = NodePath.relative(request.root, real).split(NodePath.sep).join("/")
  return request.excluded.some((path) => {
    const excluded = path.replace(/^\.\//u, "").replace(/\/+$/u, "")
    return excluded === "." || excluded === "" || fromRoot === excluded || fromRoot.startsWith(`${excluded}/`)
  })
}

/** Linux names every open descriptor's real path in /proc/self/fd: what was opened, not what a path says now. */
const PROC_FD = NodeFs.existsSync("/proc/self/fd")

const isInsideRoot = (request: Common, real: string): boolean =>
  real === request.root || real.startsWith(request.root.endsWith(NodePath.sep) ? request.root : request.root + NodePath.sep)

/**
 * Whether the open descriptor `fd` (opened through `path`) is still inside the workspace and not
 * excluded. A directory on the way swapped for a symlink after the walk saw it (a race) makes the
 * open land outside: the descriptor's real path says so, and the entry is skipped.
 */
const openedInside = (request: Common, fd: number, path: string): boolean => {
  let real: string
  try {
    real = PROC_FD ? NodeFs.readlinkSync(`/proc/self/fd/${fd}`) : NodeFs.realpathSync(path)
  } catch {
    return false
  }
  return isInsideRoot(request, real) && !isExcluded(request, real)
}

const DIRECTORY_FLAGS = NodeFs.constants.O_RDONLY | NodeFs.constants.O_DIRECTORY | NodeFs.constants.O_NOFOLLOW | NodeFs.constants.O_NONBLOCK

/** The entries of a directory, read through a descriptor checked to be inside the workspace (none if it is not). */
const readDirectory = (request: Common, directory: string): Array<NodeFs.Dirent> => {
  const fd = NodeFs.openSync(directory, DIRECTORY_FLAGS)
  try {
    if (!openedInside(request, fd, directory)) return []
    return NodeFs.readdirSync(PROC_FD ? `/proc/self/fd/${fd}` : directory, { withFileTypes: true })
  } finally {
    NodeFs.closeSync(fd)
  }
}

/** Lists `base` depth first, never following symlinks, leaving out excluded paths. */
const walk = (request: Common, recursive: boolean): Array<Entry> => {
  const entries: Array<Entry> = []
  const visit = (directory: string, prefix: string) => {
    let dirents: Array<NodeFs.Dirent>
    try {
      dirents = readDirectory(request, directory)
    } catch (error) {
      // The base must be listable; a subdirectory that changed under the walk is skipped.
      if (prefix === "") throw error
      return
    }
    dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const dirent of dirents) {
      if (entries.length >= MAX_WALK_ENTRIES) return
      const real = NodePath.join(directory, dirent.name)
      if (isExcluded(request, real)) continue
      const relative = prefix === "" ? dirent.name : `${prefix}/${dirent.name}`
      const kind = dirent.isSymbolicLink() ? "symlink" : dirent.isDirectory() ? "directory" : dirent.isFile() ? "file" : "other"
      entries.push({ relative, kind })
      if (recursive && kind === "directory" && !SKIPPED_DIRECTORIES.has(dirent.name)) visit(real, relative)
    }
  }
  let stat: NodeFs.Stats
  try {
    stat = NodeFs.statSync(request.base)
  } catch (error) {
    throw new SearchError(`cannot list the directory: ${errorText(error)}`)
  }
  if (!stat.isDirectory()) throw new SearchError("cannot list the directory: it is not a directory")
  try {
    visit(request.base, "")
  } catch (error) {
    throw new SearchError(`cannot list the directory: ${errorText(error)}`)
  }
  return entries
}

/** An invalid glob (`[z-a]`) is the model's mistake: say which argument and why, so it can fix it. */
const globMatcher = (tool: string, argument: string, glob: string) => {
  try {
    return pathMatcher(glob)
  } catch (error) {
    const reason = errorText(error).replace(/^Invalid regular expression: \/.*\/[a-z]*: /su, "")
    throw new SearchError(`bad arguments for ${tool}: ${argument}: ${JSON.stringify(glob)} is not a valid glob (${reason})`)
  }
}

const shownPath = (prefix: string, relative: string) => (prefix === "." ? relative : `${prefix}/${relative}`)

const list = (request: Extract<SearchRequest, { op: "list" }>): string => {
  const matches = request.glob !== undefined ? globMatcher("list_directory", "glob", request.glob) : undefined
  const entries = walk(request, request.recursive)
  const lines = entries
    .filter((e) => matches === undefined || matches(e.relative))
    .map((e) => `${e.relative}${e.kind === "directory" ? "/" : e.kind === "symlink" ? "@" : ""}`)
  return lines.length === 0 ? "(no entries)" : lines.join("\n")
}

const glob = (request: Extract<SearchRequest, { op: "glob" }>): string => {
  const matches = globMatcher("glob", "pattern", request.pattern)
  const found = walk(request, true)
    .filter((e) => e.kind !== "directory" && matches(e.relative))
    .map((e) => shownPath(request.prefix, e.relative))
  const shown = found.slice(0, MAX_GLOB_RESULTS)
  const more = found.length > shown.length ? `\n[${found.length - shown.length} more matches not shown]` : ""
  return shown.length === 0 ? "(no matches)" : shown.join("\n") + more
}

/** Files under the excluded paths visited to compare inodes with a multiply-linked file (small: the data directory). */
const MAX_EXCLUDED_FILES = 10_000

/** "dev:ino" of every file under the excluded paths, computed once per request when first needed. */
const excludedInodes = (paths: ReadonlyArray<string>): Set<string> => {
  const inodes = new Set<string>()
  let visited = 0
  const visit = (path: string) => {
    if (++visited > MAX_EXCLUDED_FILES) return
    let stat: NodeFs.Stats
    try {
      stat = NodeFs.lstatSync(path)
    } catch {
      return
    }
    inodes.add(`${stat.dev}:${stat.ino}`)
    if (!stat.isDirectory()) return
    let names: Array<string> = []
    try {
      names = NodeFs.readdirSync(path)
    } catch {
      names = []
    }
    for (const name of names) visit(NodePath.join(path, name))
  }
  for (const path of paths) visit(path)
  return inodes
}

/**
 * The text of a regular file, or undefined for what grep skips: too large, binary, or not a regular
 * file, or a file that a swapped directory put outside the workspace. O_NONBLOCK keeps a FIFO
 * (swapped in after the walk) from blocking the open.
 */
const readSearchable = (request: Common, real: string, isExcludedInode: (info: NodeFs.Stats) => boolean): string | undefined => {
  const fd = NodeFs.openSync(real, NodeFs.constants.O_RDONLY | NodeFs.constants.O_NOFOLLOW | NodeFs.constants.O_NONBLOCK)
  try {
    if (!openedInside(request, fd, real)) return undefined
    const info = NodeFs.fstatSync(fd)
    if (!info.isFile() || info.size > MAX_GREP_FILE_BYTES || isExcludedInode(info)) return undefined
    const bytes = NodeFs.readFileSync(fd)
    return bytes.subarray(0, 8192).includes(0) ? undefined : bytes.toString("utf8")
  } finally {
    NodeFs.closeSync(fd)
  }
}

const grep = (request: Extract<SearchRequest, { op: "grep" }>): string => {
  let regex: RegExp
  try {
    regex = new RegExp(request.pattern, request.ignoreCase ? "i" : "")
  } catch (error) {
    throw new SearchError(`bad arguments for grep: pattern: ${errorText(error)}`)
  }
  const matchesGlob = request.glob !== undefined ? globMatcher("grep", "glob", request.glob) : undefined
  let stat: NodeFs.Stats
  try {
    stat = NodeFs.statSync(request.base)
  } catch (error) {
    throw new SearchError(`cannot search '${request.prefix}': ${errorText(error)}`)
  }
  let files: Array<{ readonly real: string; readonly shown: string }>
  if (stat.isDirectory()) {
    files = walk(request, true)
      .filter((e) => e.kind === "file" && (matchesGlob === undefined || matchesGlob(e.relative)))
      .map((e) => ({ real: NodePath.join(request.base, e.relative), shown: shownPath(request.prefix, e.relative) }))
  } else if (stat.isFile()) {
    files = [{ real: request.base, shown: request.prefix }]
  } else {
    throw new SearchError(`cannot search '${request.prefix}': it is not a regular file or a directory`)
  }
  // A hard link to an excluded file (the key file) reads as that file: skipped like it.
  let inodes: Set<string> | undefined
  const isExcludedInode = (info: NodeFs.Stats) => {
    if (info.nlink <= 1 || request.excludedPaths.length === 0) return false
    inodes ??= excludedInodes(request.excludedPaths)
    return inodes.has(`${info.dev}:${info.ino}`)
  }
  const matches: Array<string> = []
  let total = 0
  for (const file of files) {
    let text: string | undefined
    try {
      text = readSearchable(request, file.real, isExcludedInode)
    } catch {
      text = undefined
    }
    if (text === undefined) continue
    const lines = text.split("\n")
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!
      if (regex.test(line)) {
        total++
        if (matches.length < MAX_GREP_MATCHES) {
          const shown = line.length > MAX_GREP_LINE_CHARS ? `${line.slice(0, MAX_GREP_LINE_CHARS)}…` : line
          matches.push(`${file.shown}:${i + 1}: ${shown}`)
        }
      }
    }
  }
  const more = total > matches.length ? `\n[${total - matches.length} more matches not shown]` : ""
  return matches.length === 0 ? "(no matches)" : matches.join("\n") + more
}

const handle = (request: SearchRequest): SearchReply => {
  try {
    const output = request.op === "list" ? list(request) : request.op === "glob" ? glob(request) : grep(request)
    return { ok: true, output }
  } catch (error) {
    if (error instanceof SearchError) return { ok: false, message: error.message }
    throw error
  }
}

serve<SearchRequest, SearchReply>(async () => handle)

/**
 * Race-free path resolution inside the workspace (Linux). A path is walked one
 * component at a time from a descriptor of the workspace root: each directory
 * is opened through `/proc/self/fd/<parent>/<name>` with O_NOFOLLOW, which
 * is `openat(parent, name)` — the kernel never follows a symlink on its own,
 * so a directory swapped for a symlink mid-call is seen as a symlink (and
 * resolved by us, inside the root, or refused) instead of being walked
 * through. Files are opened the same way with O_NONBLOCK (a FIFO never blocks)
 * and checked by descriptor (regular file, hard links) before any byte is read
 * or written; the descriptor's real path is checked once more after opening.
 */
import * as NodeFs from "node:fs/promises"
import { constants as C, existsSync } from "node:fs"
import * as NodePath from "node:path"

/** True where `/proc/self/fd/N/name` behaves as `openat(N, name)`. */
export const supported = process.platform === "linux" && existsSync("/proc/self/fd")

export type Refusal =
  | { readonly _tag: "Outside"; readonly viaSymlink: boolean }
  | { readonly _tag: "Dangling"; readonly link: string }
  | { readonly _tag: "Excluded"; readonly relative: string }
  | { readonly _tag: "GitMetadata" }
  | { readonly _tag: "HardLinked"; readonly links: number }
  | { readonly _tag: "ExcludedInode" }

/** A refusal (`tool_denied`), as opposed to a host failure (`tool_failed`). */
export class Refused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal._tag)
  }
}

const hostError = (code: string, message: string) => Object.assign(new Error(`${code}: ${message}`), { code })

export interface Root {
  /** The root after realpath. */
  readonly root: string
  /** Real absolute paths no file tool reaches. */
  readonly excluded: ReadonlyArray<string>
}

export type Intent =
  | { readonly _tag: "Read" }
  | { readonly _tag: "Write"; readonly append: boolean }
  /** Resolve only (walks, git pathspecs): the real path of an existing file or directory. */
  | { readonly _tag: "Locate" }

export interface Located {
  /** Real absolute path. */
  readonly real: string
  /** The opened file, for Read and Write; the caller closes it. */
  readonly handle?: NodeFs.FileHandle | undefined
  readonly size: number
}

export const isInside = (root: string, candidate: string) => {
  const relative = NodePath.relative(root, candidate)
  return relative === "" || (!relative.startsWith(`..${NodePath.sep}`) && relative !== ".." && !NodePath.isAbsolute(relative))
}

const MAX_SYMLINKS = 40
const MAX_RETRIES = 100
const DIRECTORY_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW
const SAFE = C.O_NOFOLLOW | C.O_NONBLOCK | C.O_NOCTTY

const at = (dir: NodeFs.FileHandle, name: string) => `/proc/self/fd/${dir.fd}/${name}`
const realOf = (handle: NodeFs.FileHandle) => NodeFs.readlink(`/proc/self/fd/${handle.fd}`)

const lstatOrUndefined = async (path: string) => {
  try {
    return await NodeFs.lstat(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw error
  }
}

const raced = (error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code
  return code === "ELOOP" || code === "ENOENT" || code === "EEXIST" || code === "ENOTDIR"
}

/** Whether `real` (absolute) is, or is inside, an excluded path; the excluded path relative to the root. */
export const excludedBy = (root: Root, real: string): string | undefined => {
  const hit = root.excluded.find((excluded) => isInside(excluded, real))
  return hit === undefined ? undefined : NodePath.relative(root.root, hit) || "."
}

/**
 * Walks `parts` (components relative to the root, `..` allowed) from the
 * root descriptor and applies `intent` to what it reaches. Throws `Refused`
 * for confinement refusals and errno-style errors for host failures.
 */
export const locate = async (root: Root, parts: ReadonlyArray<string>, intent: Intent): Promise<Located> => {
  const stack: Array<{ readonly handle: NodeFs.FileHandle; readonly name: string }> = []
  const closeAbove = async (depth: number) => {
    while (stack.length > depth) await stack.pop()!.handle.close().catch(() => undefined)
  }
  try {
    const rootHandle = await NodeFs.open(root.root, DIRECTORY_FLAGS)
    stack.push({ handle: rootHandle, name: "" })
    if ((await realOf(rootHandle)) !== root.root) throw hostError("ECHANGED", "the workspace root was moved or replaced")
    const pending = [...parts]
    // Symlink expansions still being consumed: a missing component inside one means the link dangles.
    const expansions: Array<{ readonly link: string; readonly until: number }> = []
    let symlinks = 0
    let retries = 0
    const realPath = () => NodePath.join(root.root, ...stack.slice(1).map((s) => s.name))
    const retry = () => {
      if (++retries > MAX_RETRIES) throw hostError("ECHANGED", "the path kept changing while it was being opened")
    }
    while (pending.length > 0) {
      const name = pending.shift()!
      const last = pending.length === 0
      if (name === "" || name === ".") continue
      if (name === "..") {
        if (stack.length === 1) throw new Refused({ _tag: "Outside", viaSymlink: expansions.length > 0 })
        await closeAbove(stack.length - 1)
        continue
      }
      const top = stack.at(-1)!.handle
      const here = at(top, name)
      const real = NodePath.join(realPath(), name)
      const excluded = excludedBy(root, real)
      if (excluded !== undefined) throw new Refused({ _tag: "Excluded", relative: excluded })
      if (intent._tag === "Write" && name === ".git") throw new Refused({ _tag: "GitMetadata" })
      const stat = await lstatOrUndefined(here)
      if (stat === undefined) {
        const dangling = expansions.find((e) => pending.length >= e.until)
        if (dangling !== undefined && intent._tag !== "Read") throw new Refused({ _tag: "Dangling", link: dangling.link })
        if (intent._tag === "Locate") {
          // A path that does not exist (yet, or any more: a deleted file to commit) resolves lexically from here.
          const missing = NodePath.resolve(real, ...pending)
          if (!isInside(root.root, missing)) throw new Refused({ _tag: "Outside", viaSymlink: expansions.length > 0 })
          const hit = excludedBy(root, missing)
          if (hit !== undefined) throw new Refused({ _tag: "Excluded", relative: hit })
          return { real: missing, size: 0 }
        }
        if (intent._tag === "Read") throw hostError("ENOENT", "no such file or directory")
        if (last) {
          try {
            return await createFile(root, top, name)
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
            retry()
            pending.unshift(name)
            continue
          }
        }
        try {
          await NodeFs.mkdir(here, { mode: 0o755 })
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
          retry()
        }
        pending.unshift(name)
        continue
      }
      if (stat.isSymbolicLink()) {
        if (++symlinks > MAX_SYMLINKS) throw hostError("ELOOP", "too many levels of symbolic links")
        const target = await NodeFs.readlink(here)
        const link = NodePath.relative(root.root, real)
        if (NodePath.isAbsolute(target)) {
          const normal = NodePath.resolve(target)
          if (!isInside(root.root, normal)) throw new Refused({ _tag: "Outside", viaSymlink: true })
          await closeAbove(1)
          const rebased = NodePath.relative(root.root, normal).split(NodePath.sep).filter((p) => p !== "")
          expansions.push({ link, until: pending.length })
          pending.unshift(...rebased)
        } else {
          expansions.push({ link, until: pending.length })
          pending.unshift(...target.split("/"))
        }
        continue
      }
      if (!last || intent._tag === "Locate") {
        if (!stat.isDirectory()) {
          if (last) return { real, size: stat.size }
          throw hostError("ENOTDIR", "not a directory")
        }
        let handle: NodeFs.FileHandle
        try {
          handle = await NodeFs.open(here, DIRECTORY_FLAGS)
        } catch (error) {
          if (!raced(error)) throw error
          retry()
          pending.unshift(name)
          continue
        }
        stack.push({ handle, name })
        continue
      }
      // The last component: a file to open.
      if (stat.isDirectory()) throw hostError("EISDIR", "it is a directory (use list_directory)")
      if (!stat.isFile()) throw hostError("EFTYPE", `it is not a regular file (${kindOf(stat)}); file tools read and write regular files only`)
      let handle: NodeFs.FileHandle
      try {
        const flags = intent._tag === "Read" ? C.O_RDONLY : C.O_WRONLY | (intent.append ? C.O_APPEND : 0)
        handle = await NodeFs.open(here, flags | SAFE)
      } catch (error) {
        if (!raced(error)) throw error
        retry()
        pending.unshift(name)
        continue
      }
      return await checkOpened(root, handle, intent)
    }
    // The walk ended on a directory (".", "sub/..", or Locate of a directory).
    const real = realPath()
    if (intent._tag !== "Locate") throw hostError("EISDIR", "it is a directory (use list_directory)")
    return { real, size: 0 }
  } finally {
    await closeAbove(0)
  }
}

const kindOf = (stat: { isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }) =>
  stat.isFIFO() ? "a FIFO" : stat.isSocket() ? "a socket" : stat.isCharacterDevice() || stat.isBlockDevice() ? "a device" : "not a file"

const createFile = async (root: Root, dir: NodeFs.FileHandle, name: string): Promise<Located> => {
  const handle = await NodeFs.open(at(dir, name), C.O_WRONLY | C.O_CREAT | C.O_EXCL | SAFE, 0o644)
  return checkOpened(root, handle, { _tag: "Write", append: false })
}

/** Checks an opened descriptor: a regular file, inside the root, not excluded, and (for writes) with one link. */
const checkOpened = async (root: Root, handle: NodeFs.FileHandle, intent: Intent): Promise<Located> => {
  try {
    const stat = await handle.stat()
    if (stat.isDirectory()) throw hostError("EISDIR", "it is a directory (use list_directory)")
    if (!stat.isFile()) throw hostError("EFTYPE", `it is not a regular file (${kindOf(stat)}); file tools read and write regular files only`)
    const real = await realOf(handle)
    if (!isInside(root.root, real)) throw new Refused({ _tag: "Outside", viaSymlink: true })
    const excluded = excludedBy(root, real)
    if (excluded !== undefined) throw new Refused({ _tag: "Excluded", relative: excluded })
    if (stat.nlink > 1) {
      if (intent._tag === "Write") throw new Refused({ _tag: "HardLinked", links: stat.nlink })
      if (await isExcludedInode(root, stat.dev, stat.ino)) throw new Refused({ _tag: "ExcludedInode" })
    }
    if (intent._tag === "Write" && !intent.append) await handle.truncate(0)
    return { real, handle, size: stat.size }
  } catch (error) {
    await handle.close().catch(() => undefined)
    throw error
  }
}

/** Files under the excluded paths visited to compare inodes with a multiply-linked file (small: the data directory). */
const MAX_EXCLUDED_FILES = 10_000

/** Whether (dev, ino) is a file under an excluded path: a hard link to the key file reads as the key file. */
export const isExcludedInode = async (root: Root, dev: number, ino: number): Promise<boolean> => {
  let visited = 0
  const visit = async (path: string): Promise<boolean> => {
    if (++visited > MAX_EXCLUDED_FILES) return false
    const stat = await lstatOrUndefined(path).catch(() => undefined)
    if (stat === undefined) return false
    if (stat.dev === dev && stat.ino === ino) return true
    if (!stat.isDirectory()) return false
    const names = await NodeFs.readdir(path).catch(() => [] as Array<string>)
    for (const name of names) if (await visit(NodePath.join(path, name))) return true
    return false
  }
  for (const excluded of root.excluded) if (await visit(excluded)) return true
  return false
}

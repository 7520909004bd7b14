/**
 * Which directories `POST /projects` accepts: a chat's tools read, write and
 * run commands there, so never `/`, a system directory (`/etc`, `/proc`,
 * `/usr`, …), something that is not a directory, a directory another user
 * owns, or (when a projects root is configured) anything outside that root.
 * Symlinks are resolved first, so `/proc/self` or a link to `/etc` is judged
 * by where it leads. Documented in docs/security/http.md.
 */
import { realpathSync, statSync } from "node:fs"
import { isAbsolute, relative, resolve } from "node:path"

/** Directories refused together with everything under them. */
export const SYSTEM_DIRECTORIES: ReadonlyArray<string> = [
  "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin", "/srv", "/sys", "/usr",
  "/var/cache", "/var/lib", "/var/log", "/var/run", "/var/spool", "/var/mail",
  // macOS
  "/System", "/Library", "/Applications", "/cores", "/private/etc", "/private/var/db", "/private/var/run"
]

/** Directories refused themselves (their subdirectories are fine: a project under /tmp or /home/me is normal). */
export const REFUSED_EXACTLY: ReadonlyArray<string> = ["/", "/home", "/Users", "/root", "/tmp", "/var", "/opt", "/mnt", "/media", "/private", "/private/tmp", "/private/var"]

const within = (parent: string, child: string) => {
  const rel = relative(parent, child)
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel))
}

const systemDirectoryOf = (dir: string): string | undefined => {
  if (REFUSED_EXACTLY.includes(dir)) return dir
  return SYSTEM_DIRECTORIES.find((system) => within(system, dir))
}

export interface ProjectDirectoryOptions {
  /** Only directories under this one are accepted (symlinks resolved). */
  readonly projectsRoot?: string | undefined
  /** The server's user (default: this process's); a directory it does not own is refused. */
  readonly uid?: number | undefined
}

/** The directory's real path when it may be a project, else a message saying why not and what to do. */
export const checkProjectDirectory = (
  dir: string,
  options: ProjectDirectoryOptions = {}
): { readonly _tag: "Accepted"; readonly path: string } | { readonly _tag: "Refused"; readonly message: string } => {
  const refuse = (message: string) => ({ _tag: "Refused" as const, message })
  if (!isAbsolute(dir)) return refuse(`${dir} is not an absolute path; give the project's directory on the server's machine`)
  let real: string
  try {
    real = realpathSync(resolve(dir))
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    return refuse(
      code === "ENOENT"
        ? `${dir} does not exist on the server's machine; create it first`
        : `${dir} cannot be opened (${code ?? String(e)})`
    )
  }
  const shown = real === dir ? dir : `${dir} (${real})`
  const system = systemDirectoryOf(real)
  if (system !== undefined) {
    return refuse(
      system === real
        ? `${shown} cannot be a project: it is a system or top-level directory; give a directory of your own`
        : `${shown} cannot be a project: it is inside the system directory ${system}; give a directory of your own`
    )
  }
  const stat = statSync(real)
  if (!stat.isDirectory()) return refuse(`${shown} is not a directory`)
  const uid = options.uid ?? process.getuid?.()
  if (uid !== undefined && stat.uid !== uid) {
    return refuse(`${shown} belongs to another user (uid ${stat.uid}); the server only opens projects its user (uid ${uid}) owns`)
  }
  if (options.projectsRoot !== undefined) {
    let root: string
    try {
      root = realpathSync(resolve(options.projectsRoot))
    } catch {
      return refuse(`the server's projects root ${options.projectsRoot} does not exist; ask its operator`)
    }
    if (!within(root, real)) return refuse(`${shown} is outside the server's projects root ${root}; give a directory under it`)
  }
  return { _tag: "Accepted", path: real }
}

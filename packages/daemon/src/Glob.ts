/**
 * Glob matching for file tools (`list_directory` glob, the `glob` search) and
 * for `allowedCommandGlobs`. Neither builds a backtracking regular expression
 * from an author's or a model's pattern into anything that can explode.
 */

const escapeRegex = (char: string) => (/[\\^$.*+?()[\]{}|/]/.test(char) ? `\\${char}` : char)

/**
 * A path glob: `**` crosses directories, `*` and `?` stay inside one segment,
 * `{a,b}` alternates, `[abc]`/`[!abc]` are classes. A pattern without `/`
 * matches the last segment (the file name) at any depth.
 */
export const pathMatcher = (pattern: string): ((relativePath: string) => boolean) => {
  const source = pattern.replace(/^\.\//, "")
  const baseOnly = !source.includes("/")
  let out = ""
  let braceDepth = 0
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!
    if (char === "*") {
      if (source[i + 1] === "*") {
        const slashAfter = source[i + 2] === "/"
        out += slashAfter ? "(?:[^/]*(?:/|$))*" : ".*"
        i += slashAfter ? 2 : 1
      } else {
        out += "[^/]*"
      }
    } else if (char === "?") {
      out += "[^/]"
    } else if (char === "[") {
      const close = source.indexOf("]", i + 2)
      if (close === -1) {
        out += "\\["
      } else {
        let body = source.slice(i + 1, close)
        if (body.startsWith("!")) body = `^${body.slice(1)}`
        out += `[${body.replace(/\\/g, "\\\\")}]`
        i = close
      }
    } else if (char === "{") {
      braceDepth++
      out += "(?:"
    } else if (char === "}" && braceDepth > 0) {
      braceDepth--
      out += ")"
    } else if (char === "," && braceDepth > 0) {
      out += "|"
    } else {
      out += escapeRegex(char)
    }
  }
  out += ")".repeat(braceDepth)
  const regex = new RegExp(`^${out}$`)
  return (relativePath) => regex.test(baseOnly ? relativePath.slice(relativePath.lastIndexOf("/") + 1) : relativePath)
}

// The esbuild options every bundle of this repository is built with: the CLI (build.mjs), its
// worker-thread entries and the benchmark bundles (scripts/bench/run.mjs), so that what is measured
// is built exactly as what ships.
import { existsSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { dirname, join, sep } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const workspace = join(here, "../../packages")

// Start-up is module loading (see the performance notes): @effect/platform-node's index re-exports
// undici with `export *`, which forces that large CommonJS package to evaluate on every start even
// though the CLI never touches it through the index. Nothing imports `Undici` from the index, so
// the re-export is dropped; a future import of it fails this build rather than slowing start-up.
export const dropUndiciReexport = {
  name: "drop-undici-reexport",
  setup(b) {
    b.onLoad({ filter: /@effect[\\/]platform-node[\\/]dist[\\/]esm[\\/]index\.js$/ }, async (args) => {
      const source = await readFile(args.path, "utf8")
      return { contents: source.replace(/^export \* as Undici from "\.\/Undici\.js";?$/m, ""), loader: "js", resolveDir: dirname(args.path) }
    })
  }
}

// The workspace packages' modules only define things (schemas, tags, layers, functions), so a module
// the CLI never uses (an LLM adapter, the Postgres layer) is left out with everything it imports,
// even though a class built from a Schema counts as a side effect to the bundler.
export const workspaceSideEffectFree = {
  name: "workspace-side-effect-free",
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === "resolving") return undefined
      if (!(args.path.startsWith("@relavium/") || args.path.startsWith(workspace) || args.importer.startsWith(workspace))) return undefined
      const { errors, external, path, sideEffects } = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: "resolving"
      })
      if (errors.length > 0) return { errors }
      return { path, external, sideEffects: path.startsWith(workspace) ? false : sideEffects }
    })
  }
}

// With code splitting, a chunk holds every file reachable from its entry through import
// statements, re-exports included, whether or not the entry uses them: `import { Effect } from
// "effect"` in a command's definition reaches the whole index of `@effect/platform` (the API docs
// UI, the HTTP server) or of `@relavium/chat`. Our own sources' imports from a package index
// (`import { A, B } from "pkg"`) are rewritten here to import each name from the module that
// defines it (`import * as A from ".../A.js"`), so each chunk holds only what it imports. A name
// the index does not re-export plainly is left importing from the index.
const barrels = ["effect", "@effect/platform", "@effect/platform-node", "@effect/cli", "@effect/sql", "@effect/rpc", "@effect/experimental"]
const isBarrel = (specifier) => barrels.includes(specifier) || /^@relavium\/[a-z-]+$/.test(specifier)

const identifier = "[A-Za-z_$][\\w$]*"

/** The names a module exports and where each comes from: `{ kind: "namespace" | "named", path, name }`. */
const readExports = async (file, seen = new Set()) => {
  const names = new Map()
  if (seen.has(file)) return names
  seen.add(file)
  let source
  try {
    source = await readFile(file, "utf8")
  } catch {
    return names
  }
  const dir = dirname(file)
  const target = (relative) => resolveModule(dir, relative)
  for (const m of source.matchAll(new RegExp(`^export \\* as (${identifier}) from ["']([^"']+)["']`, "gm"))) {
    const path = target(m[2])
    if (path !== undefined) names.set(m[1], { kind: "namespace", path })
  }
  for (const m of source.matchAll(/^export\s*(type\s*)?\{([^}]*)\}\s*from\s*["']([^"']+)["']/gm)) {
    const path = target(m[3])
    if (path === undefined || m[1]) continue
    for (const spec of m[2].split(",").map((s) => s.trim()).filter((s) => s !== "" && !s.startsWith("type "))) {
      const [name, alias] = spec.split(/\s+as\s+/)
      names.set(alias ?? name, { kind: "named", path, name })
    }
  }
  for (const m of source.matchAll(/^export \* from ["']([^"']+)["']/gm)) {
    const path = target(m[1])
    if (path === undefined) continue
    for (const [name, origin] of await readExports(path, seen)) if (!names.has(name)) names.set(name, origin)
  }
  for (const m of source.matchAll(new RegExp(`^export\\s+(?:declare\\s+)?(?:abstract\\s+)?(?:const|let|var|class|function\\*?|async\\s+function|enum)\\s+(${identifier})`, "gm"))) {
    if (names.get(m[1])?.kind !== "named") names.set(m[1], { kind: "named", path: file, name: m[1] })
  }
  for (const m of source.matchAll(new RegExp(`^export\\s+(?:declare\\s+)?(?:interface|type)\\s+(${identifier})`, "gm"))) {
    if (!names.has(m[1])) names.set(m[1], { kind: "type" })
  }
  for (const m of source.matchAll(/^export\s*\{([^}]*)\}\s*;?\s*$/gm)) {
    for (const spec of m[1].split(",").map((s) => s.trim()).filter((s) => s !== "" && !s.startsWith("type "))) {
      const [name, alias] = spec.split(/\s+as\s+/)
      if (!names.has(alias ?? name)) names.set(alias ?? name, { kind: "named", path: file, name })
    }
  }
  return names
}

/** `./X.js` beside `dir`: the file itself, or its TypeScript source. */
const resolveModule = (dir, relative) => {
  if (!relative.startsWith(".")) return undefined
  const path = join(dir, relative)
  for (const candidate of [path, path.replace(/\.js$/, ".ts")]) if (existsSync(candidate)) return candidate
  return undefined
}

export const directImports = {
  name: "direct-imports",
  setup(b) {
    const indexes = new Map()
    const exportsOf = (specifier, resolveDir) => {
      const key = `${resolveDir}\0${specifier}`
      if (!indexes.has(key)) {
        indexes.set(
          key,
          b.resolve(specifier, { kind: "import-statement", resolveDir }).then((r) => (r.errors.length > 0 ? new Map() : readExports(r.path)))
        )
      }
      return indexes.get(key)
    }
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (args.path.includes(`${sep}node_modules${sep}`)) return undefined
      const source = await readFile(args.path, "utf8")
      const resolveDir = dirname(args.path)
      const statements = [...source.matchAll(/^import\s*\{([^}]*)\}\s*from\s*["']([^"']+)["'];?/gm)].filter((m) => isBarrel(m[2]))
      let contents = source
      for (const m of statements.reverse()) {
        const exported = await exportsOf(m[2], resolveDir)
        const direct = []
        const rest = []
        for (const spec of m[1].split(",").map((s) => s.trim()).filter((s) => s !== "")) {
          if (spec.startsWith("type ")) continue
          const [name, alias] = spec.split(/\s+as\s+/)
          const local = alias ?? name
          const origin = exported.get(name)
          if (origin === undefined) rest.push(spec)
          else if (origin.kind === "type") continue
          else if (origin.kind === "namespace") direct.push(`import * as ${local} from ${JSON.stringify(origin.path)};`)
          else direct.push(`import { ${origin.name} as ${local} } from ${JSON.stringify(origin.path)};`)
        }
        if (rest.length > 0 && process.env.RELAVIUM_BUILD_DEBUG) console.error(`${args.path}: from the index of ${m[2]}: ${rest.join(", ")}`)
        if (rest.length > 0) direct.push(`import { ${rest.join(", ")} } from ${JSON.stringify(m[2])};`)
        // Same number of lines, so that the source map still points at the right line.
        const lines = m[0].split("\n").length
        const replacement = direct.join(" ") + "\n".repeat(lines - 1)
        contents = contents.slice(0, m.index) + replacement + contents.slice(m.index + m[0].length)
      }
      return { contents, loader: "ts", resolveDir }
    })
  }
}

/** ESM for Node 20, with `require` for CommonJS dependencies; less text for V8 to scan on every start. */
export const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  minifyWhitespace: true,
  minifySyntax: true,
  plugins: [dropUndiciReexport, workspaceSideEffectFree, directImports],
  // Native addons load their .node binary relative to their own files: keep them as packages.
  external: ["better-sqlite3", "@napi-rs/keyring"],
  banner: { js: "import { createRequire as __relaviumCreateRequire } from 'node:module'; const require = __relaviumCreateRequire(import.meta.url);" }
}

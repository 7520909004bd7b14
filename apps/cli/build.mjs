// Bundles the CLI into one ESM file so `relavium` starts by loading one module.
import { build } from "esbuild"
import { copyFileSync, mkdirSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { dirname, join } from "node:path"

const here = dirname(fileURLToPath(import.meta.url))

// Start-up is module loading (see the performance notes): @effect/platform-node's index re-exports
// undici with `export *`, which forces that large CommonJS package to evaluate on every start even
// though the CLI never touches it through the index. Nothing imports `Undici` from the index, so
// the re-export is dropped; a future import of it fails this build rather than slowing start-up.
const dropUndiciReexport = {
  name: "drop-undici-reexport",
  setup(b) {
    b.onLoad({ filter: /@effect[\\/]platform-node[\\/]dist[\\/]esm[\\/]index\.js$/ }, async (args) => {
      const { readFile } = await import("node:fs/promises")
      const source = await readFile(args.path, "utf8")
      return { contents: source.replace(/^export \* as Undici from "\.\/Undici\.js";?$/m, ""), loader: "js", resolveDir: dirname(args.path) }
    })
  }
}

// The workspace packages' modules only define things (schemas, tags, layers, functions), so a module
// the CLI never uses (an LLM adapter, the Postgres layer) is left out with everything it imports,
// even though a class built from a Schema counts as a side effect to the bundler.
const workspaceSideEffectFree = {
  name: "workspace-side-effect-free",
  setup(b) {
    const workspace = join(here, "../../packages")
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === "resolving" || !(args.path.startsWith("@relavium/") || args.importer.startsWith(workspace))) return undefined
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

/** What the CLI bundle and the worker bundles share: ESM for Node 20, with `require` for CommonJS dependencies. */
const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  // Less text for V8 to scan on every start.
  minifyWhitespace: true,
  minifySyntax: true,
  banner: { js: "import { createRequire as __relaviumCreateRequire } from 'node:module'; const require = __relaviumCreateRequire(import.meta.url);" }
}

await build({
  ...common,
  entryPoints: [join(here, "src/main.ts")],
  outfile: join(here, "dist/relavium.mjs"),
  keepNames: false,
  plugins: [dropUndiciReexport, workspaceSideEffectFree],
  // Native addons load their .node binary relative to their own files: keep them as packages.
  external: ["better-sqlite3", "@napi-rs/keyring"]
})

// Worker-thread entries (expressions, search tools) are separate bundles beside the CLI bundle, where
// the pools look for them (packages/ports/src/WorkerPool.ts): `new URL("./x-worker.mjs", import.meta.url)`
// inside the CLI bundle points into dist/.
await build({
  entryPoints: {
    "quickjs-worker": join(here, "../../packages/core/src/QuickJsWorker.ts"),
    "search-worker": join(here, "../../packages/daemon/src/SearchWorker.ts")
  },
  ...common,
  outdir: join(here, "dist"),
  outExtension: { ".js": ".mjs" }
})

// The expression sandbox loads QuickJS from a .wasm file beside the bundle.
const require = createRequire(join(here, "../../packages/core/package.json"))
const variant = dirname(require.resolve("@jitl/quickjs-wasmfile-release-sync"))
mkdirSync(join(here, "dist"), { recursive: true })
copyFileSync(join(variant, "emscripten-module.wasm"), join(here, "dist/emscripten-module.wasm"))

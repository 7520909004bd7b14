// Bundles the CLI into dist/: the entry (relavium.mjs) holds the command definitions, and each
// command's implementation is a chunk loaded by dynamic import only when that command runs, so a
// `relavium run` never loads the HTTP server, the tools daemon's RPC or the distributed mode.
// bin/relavium.mjs answers `--version` and `--help` from dist/answers.json, written here by
// running the real CLI, without loading the bundle at all.
import { build } from "esbuild"
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { dirname, join } from "node:path"
import { common } from "./esbuild.options.mjs"
import { fastArguments } from "./bin/fast.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, "dist")
const { version } = JSON.parse(readFileSync(join(here, "package.json"), "utf8"))

// Chunks from an earlier build would otherwise pile up beside the new ones.
rmSync(dist, { recursive: true, force: true })
mkdirSync(dist, { recursive: true })

const cli = await build({
  ...common,
  entryPoints: { relavium: join(here, "src/main.ts") },
  outdir: dist,
  outExtension: { ".js": ".mjs" },
  splitting: true,
  // Flat beside the entry: code in a chunk finds the worker bundles and the .wasm with
  // `new URL("./x", import.meta.url)`, as it did in the single-file bundle.
  chunkNames: "chunk-[hash]",
  metafile: true,
  define: { __RELAVIUM_VERSION__: JSON.stringify(version) }
})
// What each output imports statically and dynamically (test/… checks what `run` loads).
writeFileSync(join(dist, "meta.json"), JSON.stringify(cli.metafile))

// Worker-thread entries (expressions, search tools) are separate bundles beside the CLI bundle, where
// the pools look for them (packages/ports/src/WorkerPool.ts): `new URL("./x-worker.mjs", import.meta.url)`
// inside the CLI bundle points into dist/.
await build({
  ...common,
  entryPoints: {
    "quickjs-worker": join(here, "../../packages/core/src/QuickJsWorker.ts"),
    "search-worker": join(here, "../../packages/daemon/src/SearchWorker.ts")
  },
  outdir: dist,
  outExtension: { ".js": ".mjs" }
})

// The expression sandbox loads QuickJS from a .wasm file beside the bundle.
const require = createRequire(join(here, "../../packages/core/package.json"))
const variant = dirname(require.resolve("@jitl/quickjs-wasmfile-release-sync"))
copyFileSync(join(variant, "emscripten-module.wasm"), join(dist, "emscripten-module.wasm"))

// The answers bin/relavium.mjs gives without loading the bundle: exactly what the real CLI prints.
const answers = {}
for (const argument of fastArguments) {
  const real = spawnSync(process.execPath, [join(dist, "relavium.mjs"), argument], { encoding: "utf8", timeout: 120_000 })
  if (real.status !== 0 || real.stderr !== "") {
    throw new Error(`relavium ${argument} exited ${real.status}: ${real.stderr}`)
  }
  answers[argument] = real.stdout
}
writeFileSync(join(dist, "answers.json"), JSON.stringify({ version, answers }))

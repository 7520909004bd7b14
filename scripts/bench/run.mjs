// `pnpm bench`: bundles the benchmarks with esbuild, with the options apps/cli/build.mjs
// bundles the CLI with (apps/cli/esbuild.options.mjs, so the measured engine is built as
// the code that ships, with no TypeScript loader in the way), builds the CLI they start,
// then runs the bundle in a fresh Node with --expose-gc. Env: see BENCHMARKS.md (BENCH_QUICK=1 for a smoke run).
import { build } from "esbuild"
import { spawnSync } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { common } from "../../apps/cli/esbuild.options.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "../..")
const out = join(root, "bench/.build")
mkdirSync(out, { recursive: true })

// BENCH_CLI_BUILT=1: the CLI in apps/cli/dist is current (the test suite builds it once and runs
// other files against it meanwhile, which a rebuild here would overwrite under them).
if (process.env.BENCH_CLI_BUILT !== "1") {
  const cli = spawnSync(process.execPath, [join(root, "apps/cli/build.mjs")], { stdio: "inherit" })
  if (cli.status !== 0) process.exit(cli.status ?? 1)
}

// The bundles live in bench/.build, where only the workspace root's packages resolve: better-sqlite3
// (a root dev dependency) stays external, the rest is bundled.
const options = { ...common, external: [] }
await build({ ...options, entryPoints: [join(here, "main.ts")], outfile: join(out, "bench.mjs") })

// The benchmarks on the durable stores, the server + hubs and the distributed mode are separate
// bundles: a package that is missing or does not build yet skips its benchmarks instead of
// failing the whole run.
const bundles = [
  { name: "gateway", entry: "GatewayBench.ts", needs: ["packages/inference/src/Gateway.ts"] },
  { name: "store", entry: "StoreBench.ts", needs: ["packages/store/src/index.ts"] },
  { name: "server", entry: "ServerBench.ts", needs: ["packages/server/src/index.ts", "packages/hub/src/index.ts", "packages/store/src/index.ts"] },
  { name: "distributed", entry: "DistributedBench.ts", needs: ["packages/queue/src/index.ts", "packages/hub/src/index.ts", "packages/store/src/index.ts"] },
  { name: "chat", entry: "ChatBench.ts", needs: ["packages/chat/src/index.ts", "packages/store/src/index.ts"] },
  { name: "tracing", entry: "TracingBench.ts", needs: ["packages/store/src/index.ts", "apps/cli/src/runtime/TelemetrySdk.ts"] }
]
for (const bundle of bundles) {
  const errorFile = join(out, `${bundle.name}-build-error.txt`)
  rmSync(join(out, `${bundle.name}.mjs`), { force: true })
  rmSync(errorFile, { force: true })
  const missing = bundle.needs.find((file) => !existsSync(join(root, file)))
  if (missing !== undefined) {
    writeFileSync(errorFile, `${missing.split("/src/")[0]} is not there yet\n`)
    continue
  }
  try {
    // Native addons load their .node binary relative to their own files: keep them as packages.
    await build({ ...options, logLevel: "silent", external: ["better-sqlite3"], entryPoints: [join(here, bundle.entry)], outfile: join(out, `${bundle.name}.mjs`) })
  } catch (error) {
    writeFileSync(errorFile, `${bundle.entry} does not build: ${error?.errors?.[0]?.text ?? String(error)}\n`)
  }
}

// The expression sandbox loads QuickJS from a .wasm file beside the bundle.
const require = createRequire(join(root, "packages/core/package.json"))
const variant = dirname(require.resolve("@jitl/quickjs-wasmfile-release-sync"))
copyFileSync(join(variant, "emscripten-module.wasm"), join(out, "emscripten-module.wasm"))

// The worker-thread entries (expressions, search tools) are looked up beside the bundle that starts them.
for (const worker of ["quickjs-worker.mjs", "search-worker.mjs"]) {
  copyFileSync(join(root, "apps/cli/dist", worker), join(out, worker))
}

const flags = (process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter((f) => f !== "")
const run = spawnSync(process.execPath, ["--expose-gc", ...flags, join(out, "bench.mjs")], {
  stdio: "inherit",
  env: { ...process.env, BENCH_ROOT: root }
})
process.exit(run.status ?? 1)

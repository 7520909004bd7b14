// Bundles the CLI into one ESM file so `relavium` starts by loading one module.
import { build } from "esbuild"
import { copyFileSync, mkdirSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { dirname, join } from "node:path"

const here = dirname(fileURLToPath(import.meta.url))
await build({
  entryPoints: [join(here, "src/main.ts")],
  outfile: join(here, "dist/relavium.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  banner: { js: "import { createRequire as __relaviumCreateRequire } from 'node:module'; const require = __relaviumCreateRequire(import.meta.url);" }
})

// The expression sandbox loads QuickJS from a .wasm file beside the bundle.
const require = createRequire(join(here, "../../packages/core/package.json"))
const variant = dirname(require.resolve("@jitl/quickjs-wasmfile-release-sync"))
mkdirSync(join(here, "dist"), { recursive: true })
copyFileSync(join(variant, "emscripten-module.wasm"), join(here, "dist/emscripten-module.wasm"))

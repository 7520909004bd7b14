// Bundles the CLI into one ESM file so `relavium` starts by loading one module.
import { build } from "esbuild"
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

/**
 * The `relavium` binary the end-to-end tests start. When the CLI's main.ts
 * wires `relavium monolith`, that bundle (built by the suite's global setup);
 * otherwise a bundle of the fixture entry with the monolith command alone.
 */
import { build } from "esbuild"
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "../../../..")
const cliBundle = join(root, "apps/cli/dist/relavium.mjs")

export const cliWiresMonolith = () => /commands\/Monolith\.js/.test(readFileSync(join(root, "apps/cli/src/main.ts"), "utf8"))

let built: Promise<string> | undefined

export const monolithBinary = (): Promise<string> =>
  (built ??= (async () => {
    if (cliWiresMonolith() && existsSync(cliBundle)) return cliBundle
    const outdir = join(here, "../.dist")
    mkdirSync(outdir, { recursive: true })
    await build({
      entryPoints: [join(here, "../fixtures/monolith-main.ts")],
      outfile: join(outdir, "relavium-monolith.mjs"),
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      logLevel: "warning",
      external: ["better-sqlite3", "@napi-rs/keyring"],
      banner: { js: "import { createRequire as __relaviumCreateRequire } from 'node:module'; const require = __relaviumCreateRequire(import.meta.url);" }
    })
    const require = createRequire(join(root, "packages/core/package.json"))
    const variant = dirname(require.resolve("@jitl/quickjs-wasmfile-release-sync"))
    copyFileSync(join(variant, "emscripten-module.wasm"), join(outdir, "emscripten-module.wasm"))
    return join(outdir, "relavium-monolith.mjs")
  })())

// Module hooks for worker threads started from the TypeScript sources (tests, `pnpm relavium` from
// a checkout without a build): `.ts` files are transpiled with esbuild (a dev dependency of the
// workspace), and a relative `./x.js` import falls back to `./x.ts` as the bundler resolution does.
// The shipped CLI never uses this: its workers are bundled beside it by apps/cli/build.mjs.
import { transform } from "esbuild"
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"

const isPathLike = (specifier) => specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("file:")

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context)
  } catch (error) {
    if (specifier.endsWith(".js") && isPathLike(specifier)) return next(`${specifier.slice(0, -3)}.ts`, context)
    throw error
  }
}

export async function load(url, context, next) {
  if (url.startsWith("file:") && url.endsWith(".ts")) {
    const file = fileURLToPath(url)
    const source = await readFile(file, "utf8")
    const out = await transform(source, { loader: "ts", format: "esm", target: "node20", sourcefile: file })
    return { format: "module", source: out.code, shortCircuit: true }
  }
  return next(url, context)
}

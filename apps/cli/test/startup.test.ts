/**
 * Start-up: `--version` and `--help` are answered by bin/relavium.mjs from what build.mjs recorded
 * by running the real CLI (dist/relavium.mjs), and the bundle is split so that `relavium run`
 * loads none of the code of the other deployments (checked on esbuild's metafile of the build).
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { root } from "./relavium.js"

const cli = join(root, "apps/cli")
const node = (args: ReadonlyArray<string>) => {
  const result = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 60_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe("relavium --version and --help", () => {
  it("answer exactly what the real CLI prints", () => {
    const answered = Object.keys((JSON.parse(readFileSync(join(cli, "dist/answers.json"), "utf8")) as { answers: object }).answers)
    assert.includeMembers(answered, ["--version", "--help", "-h"])
    for (const argument of answered) {
      const fast = node([join(cli, "bin/relavium.mjs"), argument])
      const real = node([join(cli, "dist/relavium.mjs"), argument])
      assert.strictEqual(real.status, 0, real.stderr)
      assert.deepStrictEqual(fast, real, argument)
    }
  })

  it("--version is the package's version", () => {
    const { version } = JSON.parse(readFileSync(join(cli, "package.json"), "utf8")) as { version: string }
    assert.strictEqual(node([join(cli, "bin/relavium.mjs"), "--version"]).stdout.trim(), version)
  })
})

interface Metafile {
  readonly outputs: Record<
    string,
    {
      readonly entryPoint?: string
      readonly imports: ReadonlyArray<{ readonly path: string; readonly kind: string; readonly external?: boolean }>
      readonly inputs: Record<string, { readonly bytesInOutput: number }>
    }
  >
}

/** The source files in the outputs that loading `entries` loads before any dynamic import. */
const loadedBy = (meta: Metafile, entries: ReadonlyArray<string>): ReadonlyArray<string> => {
  const outputOf = (entry: string) => {
    const found = Object.entries(meta.outputs).find(([, output]) => output.entryPoint?.endsWith(entry))
    if (found === undefined) throw new Error(`no output for ${entry}`)
    return found[0]
  }
  const seen = new Set<string>()
  const stack = entries.map(outputOf)
  while (stack.length > 0) {
    const output = stack.pop()!
    if (seen.has(output)) continue
    seen.add(output)
    for (const imported of meta.outputs[output]!.imports) {
      if (imported.kind === "import-statement" && imported.external !== true) stack.push(imported.path)
    }
  }
  return [...seen].flatMap((output) => Object.entries(meta.outputs[output]!.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([file]) => file))
}

/** What a local run must not load: the other deployments, the tools daemon, the live model providers. */
const notForARun: ReadonlyArray<[string, RegExp]> = [
  ["the API docs UI", /@effect\/platform\/dist\/esm\/internal\/httpApiScalar\.js$/],
  ["an HTTP server", /@effect\/platform(-node)?\/dist\/esm\/(internal\/)?(httpServer|HttpServer|NodeHttpServer|httpRouter|HttpRouter)\w*\.js$/],
  ["the HTTP API", /packages\/server\//],
  ["the MCP SDK", /node_modules\/@modelcontextprotocol\//],
  ["the tools daemon", /packages\/daemon\//],
  ["the daemon's RPC", /node_modules\/@effect\/rpc\//],
  ["BullMQ", /node_modules\/(bullmq|ioredis)\//],
  ["NATS", /node_modules\/(nats|@nats-io\/[^/]+)\/|packages\/hub\//],
  ["Postgres", /node_modules\/(pg|pg-[a-z]+|@effect\/sql-pg)\//],
  ["certificate generation", /node_modules\/@peculiar\//],
  ["the provider SDKs", /node_modules\/@effect\/ai[a-z-]*\/|packages\/llm\/src\/adapters\//],
  ["undici", /node_modules\/undici\//]
]

describe("the CLI bundle", () => {
  const meta = JSON.parse(readFileSync(join(cli, "dist/meta.json"), "utf8")) as Metafile

  it("loads, for `relavium run`, none of what a local run does not use", () => {
    const files = loadedBy(meta, ["apps/cli/src/main.ts", "apps/cli/src/handlers/Run.ts"])
    assert.isTrue(files.some((file) => file.endsWith("packages/core/src/Engine.ts")), "the engine is loaded")
    assert.isTrue(files.some((file) => file.endsWith("packages/store/src/Store.ts")), "the store is loaded")
    for (const [what, pattern] of notForARun) {
      assert.deepStrictEqual(files.filter((file) => pattern.test(file)), [], `relavium run loads ${what}`)
    }
  })

  it("loads, before a command is chosen, only the command definitions", () => {
    const files = loadedBy(meta, ["apps/cli/src/main.ts"])
    for (const file of ["packages/core/src/Engine.ts", "packages/store/src/Store.ts", "apps/cli/src/runtime/Local.ts"]) {
      assert.notInclude(files, file)
    }
    for (const [what, pattern] of notForARun) {
      assert.deepStrictEqual(files.filter((file) => pattern.test(file)), [], `the command definitions load ${what}`)
    }
  })
})

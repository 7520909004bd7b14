/**
 * The contract every `DaemonRouter` layer must meet (in-process; the daemon in
 * this process, over its RPC socket, over NATS through a gateway). The suite
 * makes a workspace directory with a few text files; `make(workspace)` must
 * give a router whose `read_file` tool reads that workspace (confined to it).
 * The router is what is under test: lookups, results and typed errors cross
 * it unchanged, and concurrent calls do not mix.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, type Layer, Option, Schema } from "effect"
import { DaemonRouter, type InProcessTool, type ToolCall, ToolError } from "../DaemonRouter.js"

/** The files of the workspace the suite hands to `make`. */
export const daemonRouterFiles: Readonly<Record<string, string>> = {
  "notes/hello.txt": "hello from the contract\n",
  ...Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`many/file-${i}.txt`, `content of file ${i}\n`]))
}

const workspace = (): string => {
  const root = Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "relavium-router-contract-")))
  process.once("exit", () => Fs.rmSync(root, { recursive: true, force: true }))
  for (const [name, content] of Object.entries(daemonRouterFiles)) {
    Fs.mkdirSync(Path.dirname(Path.join(root, name)), { recursive: true })
    Fs.writeFileSync(Path.join(root, name), content)
  }
  return root
}

let calls = 0
const call = (name: string, args: unknown): ToolCall => ({ runId: "run-contract", nodeId: "agent", callId: `contract-${++calls}`, name, args })

const toolErrorOf = <A>(effect: Effect.Effect<A, ToolError>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
    if (Option.isNone(error)) assert.fail(`expected a ToolError, got ${String(exit)}`)
    const value = Option.getOrThrow(error)
    assert.strictEqual(value._tag, "ToolError")
    return value
  })

const ReadFileArgs = Schema.Struct({ path: Schema.String })

/**
 * A `read_file` confined to `root` with the daemon's error codes, for routers
 * whose tools are in-process (and gateways serving them) to run the suite with.
 */
export const workspaceReadFile = (root: string): InProcessTool => ({
  definition: { name: "read_file", description: "Read a UTF-8 text file in the workspace.", parameters: { type: "object" } },
  run: (call) =>
    Effect.gen(function* () {
      const args = yield* Schema.decodeUnknown(ReadFileArgs)(call.args).pipe(
        Effect.mapError(() => new ToolError({ code: "tool_failed", message: "bad arguments for read_file: (path) is required" }))
      )
      const file = Path.resolve(root, args.path)
      if (Path.relative(root, file).startsWith("..")) {
        return yield* new ToolError({ code: "tool_denied", message: `'${args.path}' is outside the workspace` })
      }
      const text = yield* Effect.try({
        try: () => Fs.readFileSync(file, "utf8"),
        catch: () => new ToolError({ code: "tool_failed", message: `'${args.path}' does not exist` })
      })
      return { output: text }
    })
})

export const daemonRouterContract = (name: string, make: (workspace: string) => Layer.Layer<DaemonRouter, unknown>) =>
  describe(`DaemonRouter contract: ${name}`, () => {
    it.live("lists the definitions of the tools asked for, in the order asked", () =>
      Effect.gen(function* () {
        const router = yield* DaemonRouter
        assert.deepStrictEqual(yield* router.tools([]), [])
        const [readFile] = yield* router.tools(["read_file"])
        assert.strictEqual(readFile?.name, "read_file")
        assert.isNotEmpty(readFile?.description)
        assert.strictEqual((readFile?.parameters as { type?: unknown } | undefined)?.type, "object")
      }).pipe(Effect.provide(make(workspace())), Effect.timeout("20 seconds")))

    it.live("a tool that is not there is tool_unavailable, named, when listed and when called", () =>
      Effect.gen(function* () {
        const router = yield* DaemonRouter
        const listed = yield* toolErrorOf(router.tools(["read_file", "no_such_tool"]))
        assert.strictEqual(listed.code, "tool_unavailable")
        assert.include(listed.message, "no_such_tool")
        const called = yield* toolErrorOf(router.execute(call("no_such_tool", {})))
        assert.strictEqual(called.code, "tool_unavailable")
        assert.include(called.message, "no_such_tool")
      }).pipe(Effect.provide(make(workspace())), Effect.timeout("20 seconds")))

    it.live("executes a call and returns what the model sees, isError false", () =>
      Effect.gen(function* () {
        const router = yield* DaemonRouter
        const result = yield* router.execute(call("read_file", { path: "notes/hello.txt" }))
        assert.include(result.output, "hello from the contract")
        assert.strictEqual(result.isError, false)
      }).pipe(Effect.provide(make(workspace())), Effect.timeout("20 seconds")))

    it.live("bad arguments and a missing file are tool_failed; a path outside the workspace is tool_denied", () =>
      Effect.gen(function* () {
        const router = yield* DaemonRouter
        const badArgs = yield* toolErrorOf(router.execute(call("read_file", { file: 42 })))
        assert.strictEqual(badArgs.code, "tool_failed")
        assert.include(badArgs.message, "read_file")
        const missing = yield* toolErrorOf(router.execute(call("read_file", { path: "notes/missing.txt" })))
        assert.strictEqual(missing.code, "tool_failed")
        assert.include(missing.message, "notes/missing.txt")
        const outside = yield* toolErrorOf(router.execute(call("read_file", { path: "../../../../etc/passwd" })))
        assert.strictEqual(outside.code, "tool_denied")
        assert.notInclude(outside.message, "root:")
      }).pipe(Effect.provide(make(workspace())), Effect.timeout("20 seconds")))

    it.live("concurrent calls each get their own result", () =>
      Effect.gen(function* () {
        const router = yield* DaemonRouter
        const indices = Array.from({ length: 8 }, (_, i) => i)
        const results = yield* Effect.forEach(
          [...indices, ...indices],
          (i) => router.execute(call("read_file", { path: `many/file-${i}.txt` })),
          { concurrency: "unbounded" }
        )
        results.forEach((result, k) => assert.include(result.output, `content of file ${k % 8}\n`))
      }).pipe(Effect.provide(make(workspace())), Effect.timeout("20 seconds")))
  })

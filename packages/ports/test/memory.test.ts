/**
 * Every contract suite against the reference memory layers of @relavium/ports
 * (the behaviour the other layers are held to). The in-process `DaemonRouter`
 * is given a small confined `read_file`, as the daemon's.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Schema } from "effect"
import {
  ChatStore,
  DaemonRouter,
  type InProcessTool,
  KeyStore,
  RunQueue,
  RunStore,
  ToolError,
  UpdateHub,
  WorkflowStore
} from "@relavium/ports"
import {
  chatStoreContract,
  daemonRouterContract,
  keyStoreContract,
  runQueueContract,
  runStoreContract,
  updateHubContract,
  workflowStoreContract
} from "@relavium/ports/testing"

runStoreContract("memory", RunStore.layerMemory)
workflowStoreContract("memory", WorkflowStore.layerMemory)
chatStoreContract("memory", ChatStore.layerMemory)
updateHubContract("memory", () => UpdateHub.layerMemory)
runQueueContract("memory", () => ({ instance: (concurrency) => RunQueue.layerMemory(concurrency) }), { distributed: false })
keyStoreContract("memory", (seed) => KeyStore.layerMemory(seed))

const ReadFileArgs = Schema.Struct({ path: Schema.String })

/** `read_file` confined to `root`, with the daemon's error codes. */
const readFile = (root: string): InProcessTool => ({
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

daemonRouterContract("in-process", (workspace) => DaemonRouter.layerInProcess([readFile(workspace)]))

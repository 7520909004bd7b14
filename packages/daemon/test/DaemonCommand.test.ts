/**
 * `relavium daemon start` (apps/cli/src/commands/Daemon.ts) serves a
 * workspace on 127.0.0.1 with the given token until interrupted.
 */
import * as Net from "node:net"
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { daemon } from "../../../apps/cli/src/commands/Daemon.js"
import { layerRpcClient } from "../src/index.js"
import { callOf, makeWorkspace, routerFrom } from "./support.js"

const freePort = Effect.async<number>((resume) => {
  const probe = Net.createServer().listen(0, "127.0.0.1", () => {
    const port = (probe.address() as Net.AddressInfo).port
    probe.close(() => resume(Effect.succeed(port)))
  })
})

describe("relavium daemon start", () => {
  it.scopedLive("serves the workspace with the given token until interrupted", () =>
    Effect.gen(function* () {
      const root = makeWorkspace({ "a.txt": "from the CLI daemon" })
      const port = yield* freePort
      const token = "cli-token-0123456789abcdef"
      const cli = Command.run(Command.make("relavium").pipe(Command.withSubcommands([daemon])), { name: "relavium", version: "test" })
      const fiber = yield* cli(["node", "relavium", "daemon", "start", "--workspace", root, "--port", String(port), "--token", token]).pipe(
        Effect.provide(NodeContext.layer),
        Effect.fork
      )
      const router = yield* routerFrom(layerRpcClient({ url: `ws://127.0.0.1:${port}/rpc`, token }))
      let output = ""
      for (let attempt = 0; attempt < 50 && output === ""; attempt++) {
        output = yield* router.execute(callOf("read_file", { path: "a.txt" })).pipe(
          Effect.map((r) => r.output),
          Effect.catchAll(() => Effect.sleep("100 millis").pipe(Effect.as("")))
        )
      }
      assert.strictEqual(output, "from the CLI daemon")
      yield* Fiber.interrupt(fiber)
      const refused = yield* Effect.async<boolean>((resume) => {
        const socket = Net.connect(port, "127.0.0.1")
        socket.on("connect", () => {
          socket.destroy()
          resume(Effect.succeed(false))
        })
        socket.on("error", () => resume(Effect.succeed(true)))
      })
      assert.isTrue(refused, "the port is closed once the command is interrupted")
    }))
})

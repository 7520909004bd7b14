/**
 * The DaemonRouter contract over NATS (real server at 127.0.0.1:4222, a
 * subject prefix per test): the worker's router (`makeRouter`) on one
 * connection, a gateway (`serveDaemon`) on another answering with in-process
 * tools over the suite's workspace. Fails, saying so, when NATS is down.
 */
import { Context, Effect, Layer } from "effect"
import { DaemonRouter } from "@relavium/ports"
import { daemonRouterContract, workspaceReadFile } from "@relavium/ports/testing"
import { NatsDaemonRouter } from "../src/index.js"

const natsUrl = "nats://127.0.0.1:4222"

daemonRouterContract("NATS", (workspace) =>
  Layer.scoped(
    DaemonRouter,
    Effect.gen(function* () {
      const subjectPrefix = `relavium-test.${crypto.randomUUID().replaceAll("-", "")}`
      const gateway = yield* NatsDaemonRouter.acquireConnection({ servers: natsUrl, name: "contract-gateway" })
      const tools = yield* Layer.build(DaemonRouter.layerInProcess([workspaceReadFile(workspace)]))
      yield* NatsDaemonRouter.serveDaemon(gateway, Context.get(tools, DaemonRouter), {
        daemon: "contract",
        subjectPrefix
      })
      const worker = yield* NatsDaemonRouter.acquireConnection({ servers: natsUrl, name: "contract-worker" })
      return NatsDaemonRouter.makeRouter(worker, { daemon: "contract", subjectPrefix })
    })
  )
)

/**
 * The DaemonRouter contract on every layer of packages/daemon, each over the
 * suite's workspace: the daemon in this process (`layerLocal`), a daemon
 * process's RPC socket (`layerRpcClient` to `serveDaemon`, real websocket on
 * loopback).
 */
import { Effect, Layer } from "effect"
import { daemonRouterContract } from "@relavium/ports/testing"
import { layerLocal, layerRpcClient, serveDaemon } from "../src/index.js"

const TOKEN = "contract-token-0123456789abcdef"

daemonRouterContract("daemon in process", (workspace) => layerLocal({ workspace }))

daemonRouterContract("RPC client to a daemon server", (workspace) =>
  Layer.unwrapScoped(
    Effect.map(serveDaemon({ workspace, port: 0, token: TOKEN }), (server) => layerRpcClient({ url: server.url, token: TOKEN }))
  )
)

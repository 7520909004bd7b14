/**
 * The tools daemon in this process, loaded on the first tool call: a run or chat that calls no
 * tool never loads the daemon's tools, its MCP client or its RPC protocol.
 */
import { Context, Effect, Layer } from "effect"
import type { LocalDaemonOptions } from "@relavium/daemon"
import { DaemonRouter } from "@relavium/ports"

export const layer = (options: LocalDaemonOptions): Layer.Layer<DaemonRouter> =>
  Layer.scoped(
    DaemonRouter,
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      const open = yield* Effect.cached(
        Effect.promise(() => import("./InProcessDaemonLayer.js")).pipe(
          Effect.flatMap((daemon) => Layer.buildWithScope(daemon.layerLocal(options), scope)),
          Effect.map((context) => Context.get(context, DaemonRouter))
        )
      )
      return DaemonRouter.of({
        tools: (names) => Effect.flatMap(open, (router) => router.tools(names)),
        execute: (call, options) => Effect.flatMap(open, (router) => router.execute(call, options))
      })
    })
  )

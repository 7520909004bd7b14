/**
 * The local deployment of the chats (`relavium chat`, and the monolith's chats): the chat service
 * on the local store, model and prices, with the in-process tools daemon per workspace.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { ChatHub, ChatTools, layer as chatServiceLayer, Worktrees } from "@relavium/chat"
import { layerLocal as localDaemon } from "@relavium/daemon"
import { DataDir, KeySecrets } from "@relavium/keys"
import { DaemonRouter, ToolError } from "@relavium/ports"
import { type LocalFlags, type LocalOptions, modelLayer, pricingLayer, resolveOptions, storeLayer } from "./Local.js"

/**
 * The chat service on the store, model and prices it is given (the CLI's own, or the monolith's):
 * live events in memory, the in-process daemon per workspace, worktrees in the data directory.
 */
export const chatServices = (options: {
  readonly dataDir: string
  /** The tools of a project bound to a dialed-in daemon (the monolith's); none: such a project's tool calls fail. */
  readonly daemons?: ((name: string) => Layer.Layer<DaemonRouter>) | undefined
}) =>
  chatServiceLayer({ worktreesDir: DataDir.worktreesDir(options.dataDir) }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        ChatHub.layerMemory,
        ChatTools.layer(({ daemon, workspace }) =>
          daemon === undefined
            ? localDaemon({ workspace, excludedPaths: KeySecrets.excludedPaths(options.dataDir, workspace) })
            : (options.daemons?.(daemon) ?? unreachableDaemon(daemon))
        ),
        Worktrees.layerGit
      )
    )
  )

/** The tools of a project bound to a daemon this process cannot reach: every call is `tool_unavailable`, naming it. */
const unreachableDaemon = (daemon: string): Layer.Layer<DaemonRouter> => {
  const unavailable = new ToolError({
    code: "tool_unavailable",
    message: `the project works in tools daemon '${daemon}', which dials in to a monolith or a gateway; this process cannot reach it`
  })
  return Layer.succeed(DaemonRouter, DaemonRouter.of({ tools: () => Effect.fail(unavailable), execute: () => Effect.fail(unavailable) }))
}

/** The chat service on this machine: SQLite, the in-process daemon per workspace, worktrees in the data directory. */
export const chatLayer = (options: LocalOptions) =>
  chatServices(options).pipe(
    Layer.provideMerge(Layer.merge(modelLayer(options), pricingLayer(options.dataDir))),
    Layer.provideMerge(storeLayer(options.dataDir)),
    Layer.provideMerge(NodeContext.layer)
  )

/** Runs `effect` on the local chat service. */
export const withChatService = <A, E, R>(effect: Effect.Effect<A, E, R>, flags: LocalFlags) =>
  Effect.flatMap(resolveOptions(flags), (options) => effect.pipe(Effect.provide(chatLayer(options))))


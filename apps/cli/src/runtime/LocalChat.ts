/**
 * The local deployment of the chats (`relavium chat`, and the monolith's chats): the chat service
 * on the local store, model and prices, with the in-process tools daemon per workspace.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { ChatHub, ChatTools, layer as chatServiceLayer, Worktrees } from "@relavium/chat"
import { layerLocal as localDaemon } from "@relavium/daemon"
import { DataDir, KeySecrets } from "@relavium/keys"
import { type LocalFlags, type LocalOptions, modelLayer, pricingLayer, resolveOptions, storeLayer } from "./Local.js"

/**
 * The chat service on the store, model and prices it is given (the CLI's own, or the monolith's):
 * live events in memory, the in-process daemon per workspace, worktrees in the data directory.
 */
export const chatServices = (options: { readonly dataDir: string }) =>
  chatServiceLayer({ worktreesDir: DataDir.worktreesDir(options.dataDir) }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(ChatHub.layerMemory, ChatTools.layer(({ workspace }) =>
          localDaemon({ workspace, excludedPaths: KeySecrets.excludedPaths(options.dataDir, workspace) })
        ), Worktrees.layerGit)
    )
  )

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


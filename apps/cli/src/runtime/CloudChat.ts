/**
 * The chats of the distributed deployment (`relavium server api` and
 * `relavium server worker`), on the same chat service as `relavium chat` and
 * the monolith, with these layers:
 *
 * - turns as `ChatTurn` jobs on the deployment's `RunQueue` (BullMQ): an api
 *   replica claims a turn and stores its start, a worker takes the claim over
 *   and runs it (`ChatTurnQueue.layerRunQueue`; `layerTurnJobs` on workers,
 *   with the sweep that settles the turns of a worker that died);
 * - live chat events on core NATS subjects `<prefix>.chat.<chatId>`, joined to
 *   the Postgres log by the numbered-log follower on any replica; requests to
 *   cancel a turn on `<prefix>.chat-cancel.requests`, heard by every worker;
 * - tool calls over NATS to the gateway holding the project's daemon (its
 *   `daemon`, else the deployment's, `default`): a worker never runs a chat's
 *   tools on its own machine.
 */
import { Context, type Duration, Effect, Layer, Schema, Stream } from "effect"
import { ChatCancels, ChatEvent, ChatHub, ChatTools, ChatTurnQueue, layer as chatServiceLayer, layerTurnJobs, Worktrees } from "@relavium/chat"
import { NatsDaemonRouter, NatsTopic, NatsUpdateHub } from "@relavium/hub"
import { type Deployment, natsServers } from "./Deployment.js"

/** Live chat events, and requests to cancel a turn running on a worker, on one NATS connection. */
export const chatHub = (d: Deployment, name: string): Layer.Layer<ChatHub | ChatCancels, NatsUpdateHub.HubError> =>
  Layer.scopedContext(
    Effect.map(NatsUpdateHub.acquireConnection({ servers: natsServers(d.natsUrl), connectTimeout: d.connectTimeout, name }), (nc) => {
      const events = NatsTopic.make(nc, { kind: "chat", subjectPrefix: d.subjectPrefix, schema: ChatEvent, keyOf: (event) => event.chatId })
      const cancels = NatsTopic.make(nc, { kind: "chat-cancel", subjectPrefix: d.subjectPrefix, schema: CancelRequest, keyOf: () => "requests" })
      return Context.make(ChatHub, ChatHub.of(events)).pipe(
        Context.add(
          ChatCancels,
          ChatCancels.of({
            request: (chatId) => cancels.publish([{ chatId }]),
            requests: Effect.map(cancels.subscribe("requests"), Stream.map((r) => r.chatId))
          })
        )
      )
    })
  )

const CancelRequest = Schema.Struct({ chatId: Schema.String })

/** A chat's tools: over NATS to the gateway holding its project's daemon (`defaultDaemon` for a project that names none). */
export const chatTools = (d: Deployment, defaultDaemon: string): Layer.Layer<ChatTools, NatsDaemonRouter.NatsRouterError> =>
  Layer.scoped(
    ChatTools,
    Effect.map(
      NatsDaemonRouter.acquireConnection({ servers: natsServers(d.natsUrl), connectTimeout: d.connectTimeout, name: "relavium-chat-tools" }),
      (nc) =>
        ChatTools.of({
          router: (target) => Effect.succeed(NatsDaemonRouter.makeRouter(nc, { daemon: target.daemon ?? defaultDaemon, subjectPrefix: d.subjectPrefix }))
        })
    )
  )

/**
 * The chat service of an api replica or a worker on the deployment's store, queue, model and
 * prices: turns handed to workers through the queue, events on NATS, tools through a gateway.
 */
export const cloudChats = (d: Deployment & { readonly daemon?: string | undefined }, name: string) =>
  chatServiceLayer().pipe(
    Layer.provide(
      Layer.mergeAll(chatHub(d, name), chatTools(d, d.daemon ?? "default"), Worktrees.layerGit, ChatTurnQueue.layerRunQueue)
    )
  )

/** A worker's chats: the service above, running the `ChatTurn` jobs it takes, and the sweep for turns of dead workers. */
export const workerChats = (d: Deployment & { readonly daemon?: string | undefined }, sweepEvery?: Duration.DurationInput) =>
  layerTurnJobs({ sweepEvery }).pipe(Layer.provideMerge(cloudChats(d, "relavium-worker-chats")))

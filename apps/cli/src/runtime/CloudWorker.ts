/**
 * `relavium server worker`: a worker of the distributed deployment.
 * `layerWorker` executes orchestrator, node and system jobs from the queue,
 * with the expression sandbox, the model (Models.ts: a cassette or the live
 * providers, keys from the deployment's `KeyStore`), the shipped prices and a
 * `DaemonRouter` that sends tool calls over NATS to the gateway holding the
 * daemon; it only checks the Postgres schema.
 */
import { NodeContext } from "@effect/platform-node"
import { type Duration, Layer, Option } from "effect"
import { layerEngine, layerWorker, layerWorkerWith, type WorkerOptions as EngineWorkerOptions, QuickJsSandbox } from "@relavium/core"
import { DaemonRouter, type LlmProvider, type ModelPricing, type RunQueue, type UpdateHub } from "@relavium/ports"
import { NatsDaemonRouter } from "@relavium/hub"
import { Pricing } from "@relavium/llm"
import { TriggerScheduler } from "@relavium/server"
import type { Store } from "@relavium/store"
import { type Deployment, infrastructure, keys, natsServers, type StartupError } from "./Deployment.js"
import * as Models from "./Models.js"
import { workerChats } from "./CloudChat.js"
import type { MasterKeySettings } from "./Settings.js"
import { triggersLayer } from "./Tenancy.js"

/** The models a worker calls (see Models.ts) and the price table. */
export const models = (options: Models.ModelOptions) => Layer.merge(Models.layer(options), Pricing.layerStatic)

/**
 * Tool calls of a worker's agents: over NATS to the `relavium server gateway` holding the daemon
 * named `daemon` (default `default`). With no gateway holding it, a call fails at once with
 * `tool_unavailable` (no responders) and the node's retry policy applies; a worker never runs
 * tools on its own machine.
 */
export const tools = (d: Deployment & { readonly daemon?: string | undefined }): Layer.Layer<DaemonRouter, NatsDaemonRouter.NatsRouterError> =>
  NatsDaemonRouter.layerRouter({
    servers: natsServers(d.natsUrl),
    subjectPrefix: d.subjectPrefix,
    connectTimeout: d.connectTimeout,
    daemon: d.daemon ?? "default",
    name: "relavium-worker-tools"
  })

/** No tools at all (each call is `tool_unavailable`), for in-process tests that need no gateway. */
export const noTools: Layer.Layer<DaemonRouter> = DaemonRouter.layerInProcess([])

/**
 * A worker on the given services: `layerWorker` consuming the queue until the layer is released
 * (active jobs get the queue's close timeout to finish; the rest are taken over by other workers).
 */
export const workerOn = <E1, R1, E2, R2>(
  services: Layer.Layer<Store.Services | RunQueue | UpdateHub, E1, R1>,
  execution: Layer.Layer<LlmProvider | ModelPricing | DaemonRouter, E2, R2>,
  sweep?: EngineWorkerOptions,
  masterKey: Option.Option<MasterKeySettings> = Option.none()
) => {
  const infra = services.pipe(Layer.provideMerge(NodeContext.layer))
  const worker = (sweep === undefined ? layerWorker : layerWorkerWith(sweep)).pipe(
    Layer.provide(Layer.merge(QuickJsSandbox.layerQuickJs, execution).pipe(Layer.provideMerge(infra)))
  )
  // Every worker fires the schedule triggers of every org; a fire starts one run however many do (docs/triggers.md).
  const scheduler = TriggerScheduler.layer().pipe(
    Layer.provide(triggersLayer(Option.getOrUndefined(masterKey))),
    Layer.provide(layerEngine({ executionMode: "cloud" })),
    Layer.provide(infra)
  )
  return Layer.merge(worker, scheduler)
}

export interface WorkerOptions extends Deployment, Models.ModelOptions {
  readonly masterKey: Option.Option<MasterKeySettings>
  /** The tools daemon (its `--name`) agents' tool calls go to, through a gateway (default `default`). */
  readonly daemon?: string | undefined
  /** Where agents' tool calls go (default {@link tools}: over NATS to a gateway). */
  readonly daemonRouter?: Layer.Layer<DaemonRouter, StartupError> | undefined
  /** The sweep for runs whose jobs were lost (a worker killed between a commit and its offer). */
  readonly sweep?: EngineWorkerOptions | undefined
  /** How often the worker settles chat turns whose worker died (default 5 s). */
  readonly chatSweepEvery?: Duration.DurationInput | undefined
}

/**
 * A whole worker process on the deployment's Postgres, Redis and NATS; it also runs chat turns
 * (CloudChat.ts), with the same model, prices and queue.
 */
export const layerWorkerProcess = (options: WorkerOptions) => {
  const infra = infrastructure(options, "worker")
  const execution = Layer.merge(models(options), options.daemonRouter ?? tools(options)).pipe(Layer.provide(keys(options.masterKey)))
  return workerOn(infra, execution, options.sweep, options.masterKey).pipe(
    Layer.provide(workerChats(options, options.chatSweepEvery).pipe(Layer.provide(Layer.provideMerge(execution, infra))))
  )
}

/**
 * The local composition root: which layer backs each component tag when the
 * CLI runs a workflow on this machine. This is the only place that chooses.
 */
import { NodeContext } from "@effect/platform-node"
import { Layer, Stream } from "effect"
import {
  DaemonRouter,
  KeyStore,
  layerLocal,
  LlmProvider,
  QuickJsSandbox,
  RunQueue,
  RunStore,
  UpdateHub,
  WorkflowStore
} from "@relavium/core"
import { Llm } from "@relavium/domain"
import { Cassette, Pricing } from "@relavium/llm"

/** Stands in for live providers until keys and adapters are configured: every call says what to do. */
const noProvider = Layer.succeed(
  LlmProvider,
  LlmProvider.of({
    stream: (request) =>
      Stream.fail(
        new Llm.LlmError({
          kind: "auth",
          retryable: false,
          provider: request.provider,
          model: request.model,
          message: `no model is available for ${request.provider}/${request.model}: pass --cassette FILE to replay a recorded model`
        })
      )
  })
)

export const llmLayer = (cassette: Llm.Cassette | undefined, tokenDelayMs: number) =>
  cassette === undefined ? noProvider : Cassette.layerCassette(cassette, { tokenDelayMs })

const memoryQueue = RunQueue.layerMemory()

/** Everything in this process and in memory: the one-shot `relavium run`. */
export const localLayer = (llm: Layer.Layer<LlmProvider>) =>
  layerLocal({ executionMode: "local" }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        RunStore.layerMemory,
        UpdateHub.layerMemory,
        memoryQueue,
        WorkflowStore.layerMemory,
        QuickJsSandbox.layerQuickJs,
        llm,
        Pricing.layerStatic,
        DaemonRouter.layerInProcess(),
        KeyStore.layerMemory()
      )
    ),
    Layer.provideMerge(NodeContext.layer)
  )

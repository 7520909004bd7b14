/**
 * The deployment `relavium test` runs each scenario on: the engine in this process on fresh
 * in-memory stores, hub and queue (nothing is written to the data directory), the shipped prices,
 * no key store and no network — the model is the scenario's cassette or script, and the tools are
 * scripted or the in-process tools daemon confined to the scenario's workspace.
 */
import { NodeContext } from "@effect/platform-node"
import { Layer } from "effect"
import { layerLocal, Scenario } from "@relavium/core"
import { Pricing } from "@relavium/llm"
import { type DaemonRouter, type LlmProvider, RunQueue, RunStore, UpdateHub, WorkflowStore } from "@relavium/ports"
import * as InProcessDaemon from "./InProcessDaemon.js"

/** The tools of a scenario: its scripted results, or the real tools confined to `workspace`. */
export const toolsLayer = (scripted: Scenario.Scenario["tools"], workspace: string): Layer.Layer<DaemonRouter> =>
  scripted !== undefined ? Scenario.scriptedTools(scripted) : InProcessDaemon.layer({ workspace, excludedPaths: [] })

/**
 * One scenario's engine. The expression sandbox comes from the caller, built once for every
 * scenario of a `relavium test`.
 */
export const scenarioLayer = (model: Layer.Layer<LlmProvider>, tools: Layer.Layer<DaemonRouter>) =>
  layerLocal({ executionMode: "local" }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        RunStore.layerMemory,
        WorkflowStore.layerMemory,
        UpdateHub.layerMemory,
        RunQueue.layerMemory(),
        Pricing.layerStatic,
        model,
        tools
      )
    ),
    Layer.provideMerge(NodeContext.layer)
  )

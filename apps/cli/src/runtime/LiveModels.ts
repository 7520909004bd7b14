/** The live providers over undici: loaded (see Models.ts) when a process first calls a model. */
import { NodeHttpClient } from "@effect/platform-node"
import { Layer } from "effect"
import { Providers } from "@relavium/llm"

export const layer = (config: Providers.ProvidersConfig | undefined) => Providers.layer(config).pipe(Layer.provide(NodeHttpClient.layerUndici))

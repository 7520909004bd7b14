/** The live providers over undici: loaded (see Models.ts) when a process first calls a model. */
import { NodeHttpClient } from "@effect/platform-node"
import { Layer } from "effect"
import { ManagedGateway, Providers } from "@relavium/llm"

export const layer = (config: Providers.ProvidersConfig | undefined) => Providers.layer(config).pipe(Layer.provide(NodeHttpClient.layerUndici))

/** Managed mode: every model call to the Relavium gateway, over undici. */
export const managed = (options: ManagedGateway.ManagedGatewayOptions) =>
  ManagedGateway.layer(options).pipe(Layer.provide(NodeHttpClient.layerUndici))

/** Provider keys on this machine: the OS keychain (or the 0600 file in the data directory), environment first. */
import { NodeContext } from "@effect/platform-node"
import { Layer } from "effect"
import { KeyStores } from "@relavium/keys"

export const keysLayer = (dataDir: string) =>
  KeyStores.layerKeychain({ dataDir }).pipe(Layer.provide(NodeContext.layer))

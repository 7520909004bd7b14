/**
 * The KeyStore contract on every layer of packages/keys: the OS keychain
 * (an in-memory keychain backend standing in for the platform's), the 0600
 * key file (directly, and as the keychain's fallback when no keychain answers),
 * and the environment (read-only). Each test gets a fresh data directory.
 */
import { NodeContext } from "@effect/platform-node"
import { ConfigProvider, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { keyStoreContract } from "@relavium/ports/testing"
import { KeyStores } from "../src/index.js"

const freshDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "relavium-keys-contract-"))
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }))
  return path.join(dir, "data")
}

/** No RELAVIUM_* variables at all, so only the store under test answers. */
const noEnv = Layer.setConfigProvider(ConfigProvider.fromMap(new Map()))

/** A keychain holding `seed` under the relavium service. */
const keychainWith = (seed: Readonly<Record<string, string>>): KeyStores.KeyringBackend => {
  const entries = new Map(Object.entries(seed).map(([provider, key]) => [`relavium/${provider}`, key]))
  return (service, account) => ({
    getPassword: () => entries.get(`${service}/${account}`) ?? null,
    setPassword: (value) => void entries.set(`${service}/${account}`, value),
    deletePassword: () => entries.delete(`${service}/${account}`)
  })
}

const noKeychain: KeyStores.KeyringBackend = () => {
  throw new Error("Couldn't access platform storage: no secret service")
}

/** A data directory whose key file holds `seed`, as `relavium keys set` leaves it. */
const fileWith = (seed: Readonly<Record<string, string>>) => {
  const dir = freshDir()
  if (Object.keys(seed).length > 0) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    fs.writeFileSync(KeyStores.keyFilePath(dir), JSON.stringify(seed), { mode: 0o600 })
  }
  return dir
}

keyStoreContract("keychain", (seed) =>
  KeyStores.layerKeychain({ dataDir: freshDir(), backend: keychainWith(seed), environment: false }).pipe(
    Layer.provide(NodeContext.layer)
  )
)

keyStoreContract("key file", (seed) =>
  KeyStores.layerFile({ dataDir: fileWith(seed), environment: false }).pipe(Layer.provide(NodeContext.layer))
)

keyStoreContract("key file under the environment", (seed) =>
  KeyStores.layerFile({ dataDir: fileWith(seed) }).pipe(Layer.provide(NodeContext.layer), Layer.provide(noEnv))
)

keyStoreContract("keychain fallback to the key file", (seed) =>
  KeyStores.layerKeychain({ dataDir: fileWith(seed), backend: noKeychain, environment: false }).pipe(
    Layer.provide(NodeContext.layer)
  )
)

keyStoreContract(
  "environment",
  (seed) =>
    Layer.merge(
      KeyStores.layerEnv,
      Layer.setConfigProvider(
        ConfigProvider.fromMap(new Map(Object.entries(seed).map(([provider, key]) => [KeyStores.envVarFor(provider), key])))
      )
    ),
  { readOnly: true }
)

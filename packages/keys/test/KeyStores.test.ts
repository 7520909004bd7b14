import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { KeyStore } from "@relavium/ports"
import { ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DataDir, KeyStores } from "../src/index.js"

const KEY = "sk-test-KEYS-a91c0e55d3"
const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "relavium-keys-"))

/** A keychain that has no service behind it, like headless Linux. */
const noKeychain: KeyStores.KeyringBackend = () => {
  throw new Error("Couldn't access platform storage: no secret service")
}
/** An in-memory stand-in for a working keychain. */
const fakeKeychain = (): KeyStores.KeyringBackend => {
  const entries = new Map<string, string>()
  return (service, account) => ({
    getPassword: () => entries.get(`${service}/${account}`) ?? null,
    setPassword: (value) => void entries.set(`${service}/${account}`, value),
    deletePassword: () => entries.delete(`${service}/${account}`)
  })
}

const withEnv = (env: Record<string, string>) => Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("KeyStores.layerKeychain", () => {
  it.effect("falls back to a 0600 file with a one-line notice when no keychain answers", () =>
    Effect.gen(function* () {
      const dir = path.join(tmpDir(), "data")
      const lines: Array<string> = []
      const original = console.error
      console.error = (...args: Array<unknown>) => void lines.push(args.join(" "))
      const result = yield* Effect.gen(function* () {
        const keys = yield* KeyStore
        yield* keys.set("anthropic", Redacted.make(KEY))
        const listed = yield* keys.list
        const got = yield* keys.get("anthropic")
        const removed = yield* keys.remove("anthropic")
        const after = yield* keys.get("anthropic")
        return { listed, got, removed, after }
      }).pipe(
        Effect.provide(KeyStores.layerKeychain({ dataDir: dir, backend: noKeychain }).pipe(Layer.provide(NodeContext.layer), Layer.provide(withEnv({})))),
        Effect.ensuring(Effect.sync(() => (console.error = original)))
      )
      assert.deepStrictEqual(result.listed, ["anthropic"])
      assert.strictEqual(Redacted.value(Option.getOrThrow(result.got)), KEY)
      assert.isTrue(result.removed)
      assert.isTrue(Option.isNone(result.after))
      assert.strictEqual(lines.length, 1)
      assert.match(lines[0]!, /no OS keychain service is available; keys are stored in .*keys\.json \(mode 0600\)/)
      assert.strictEqual(fs.statSync(path.join(dir, "keys.json")).mode & 0o777, 0o600)
      assert.strictEqual(fs.statSync(dir).mode & 0o777, 0o700)
      // list never returns values; a Redacted key prints as <redacted>.
      assert.notInclude(JSON.stringify(result.listed), KEY)
      assert.notInclude(String(result.got), KEY)
    }))

  it.effect("uses the keychain when one answers; the environment wins over a stored key", () =>
    Effect.gen(function* () {
      const keys = yield* KeyStore
      yield* keys.set("openai", Redacted.make("stored-openai-key"))
      yield* keys.set("gemini", Redacted.make("stored-gemini-key"))
      const openai = yield* keys.get("openai")
      const gemini = yield* keys.get("gemini")
      const list = yield* keys.list
      assert.strictEqual(Redacted.value(Option.getOrThrow(openai)), "from-env-openai")
      assert.strictEqual(Redacted.value(Option.getOrThrow(gemini)), "stored-gemini-key")
      assert.deepStrictEqual(list, ["deepseek", "gemini", "openai"])
      const bad = yield* Effect.flip(keys.set("Bad Name!", Redacted.make("x")))
      assert.match(bad.message, /not a provider name/)
    }).pipe(
      Effect.provide(
        KeyStores.layerKeychain({ dataDir: tmpDir(), backend: fakeKeychain() }).pipe(
          Layer.provide(NodeContext.layer),
          Layer.provide(withEnv({ RELAVIUM_OPENAI_API_KEY: "from-env-openai", RELAVIUM_DEEPSEEK_API_KEY: "ds" }))
        )
      )
    ))

  it("env var names", () => {
    assert.strictEqual(KeyStores.envVarFor("openai-compatible"), "RELAVIUM_OPENAI_COMPATIBLE_API_KEY")
    assert.strictEqual(KeyStores.howToSet("anthropic"), "run `relavium keys set anthropic` or set RELAVIUM_ANTHROPIC_API_KEY")
  })
})

describe("DataDir.resolveDataDir", () => {
  it("flag > RELAVIUM_DATA_DIR > platform convention", () => {
    const home = "/home/ada"
    assert.strictEqual(DataDir.resolveDataDir({ flag: "/x/y", env: { RELAVIUM_DATA_DIR: "/env" }, homedir: home, platform: "linux" }), "/x/y")
    assert.strictEqual(DataDir.resolveDataDir({ env: { RELAVIUM_DATA_DIR: "/env" }, homedir: home, platform: "linux" }), "/env")
    assert.strictEqual(DataDir.resolveDataDir({ env: { XDG_DATA_HOME: "/xdg" }, homedir: home, platform: "linux" }), "/xdg/relavium")
    assert.strictEqual(DataDir.resolveDataDir({ env: {}, homedir: home, platform: "linux" }), "/home/ada/.local/share/relavium")
    assert.strictEqual(DataDir.resolveDataDir({ env: {}, homedir: "/Users/ada", platform: "darwin" }), "/Users/ada/Library/Application Support/relavium")
    assert.strictEqual(
      DataDir.resolveDataDir({ env: { APPDATA: "C:\\Users\\ada\\AppData\\Roaming" }, homedir: "C:\\Users\\ada", platform: "win32" }),
      "C:\\Users\\ada\\AppData\\Roaming\\relavium"
    )
  })
})

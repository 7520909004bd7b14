/**
 * RELAVIUM_HUB picks what carries a distributed deployment's live run events:
 * `nats` or `redis`; anything else is refused with a message naming the
 * setting and its choices.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import * as Settings from "../src/runtime/Settings.js"

const read = (env: Record<string, string>) =>
  Effect.withConfigProvider(Settings.hub.config, ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("RELAVIUM_HUB", () => {
  it.effect("reads nats or redis", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* read({ RELAVIUM_HUB: "redis" }), "redis")
      assert.strictEqual(yield* read({ RELAVIUM_HUB: " nats " }), "nats")
    }))

  it.effect("refuses anything else, naming the setting and its choices", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(read({ RELAVIUM_HUB: "kafka" }))
      assert.include(String(error), "RELAVIUM_HUB must be nats or redis")
    }))
})

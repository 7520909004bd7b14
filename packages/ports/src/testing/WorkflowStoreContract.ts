/**
 * The contract every `WorkflowStore` layer must meet (memory, SQLite, Postgres):
 * versions numbered per name, the same source stored once.
 */
import { assert, it } from "@effect/vitest"
import { Effect, type Layer, Option } from "effect"
import type { StoreError } from "../RunStore.js"
import { WorkflowStore } from "../WorkflowStore.js"
import { newRunId } from "./RunStoreContract.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

export const workflowStoreContract = (name: string, layer: Layer.Layer<WorkflowStore, StoreError>) =>
  it.layer(layer, { timeout: "60 seconds" })(`WorkflowStore contract: ${name}`, (it) => {
    it.effect("stores versions: the same source is the same version, a changed one the next", () =>
      Effect.gen(function* () {
        const store = yield* WorkflowStore
        const name = `wf-${newRunId()}`
        const v1 = yield* store.put({ name, source: "a: 1\n", file: "one.yaml" })
        assert.strictEqual(v1.version, 1)
        assert.strictEqual(v1.name, name)
        assert.strictEqual(v1.file, "one.yaml")
        const again = yield* store.put({ name, source: "a: 1\n", file: "elsewhere.yaml" })
        assert.deepStrictEqual(again, v1)
        const v2 = yield* store.put({ name, source: "a: 2\n", file: "one.yaml" })
        assert.strictEqual(v2.version, 2)
        assert.notStrictEqual(v2.workflowId, v1.workflowId)
        assert.deepStrictEqual(yield* store.put({ name, source: "a: 1\n", file: "one.yaml" }), v1)
        const other = yield* store.put({ name: `${name}-other`, source: "a: 1\n", file: "other.yaml" })
        assert.strictEqual(other.version, 1)
        assert.deepStrictEqual(yield* store.get(v2.workflowId), Option.some(v2))
        assert.isTrue(Option.isNone(yield* store.get(newRunId())))
        const listed = (yield* store.list).filter((w) => w.name.startsWith(name))
        const byId = (a: { workflowId: string }, b: { workflowId: string }) => (a.workflowId < b.workflowId ? -1 : 1)
        assert.deepStrictEqual([...listed].sort(byId), [v1, v2, other].sort(byId))
      }))

    it.effect("numbers concurrent puts of one workflow without a duplicate version", () =>
      Effect.gen(function* () {
        const store = yield* WorkflowStore
        const name = `wf-${newRunId()}`
        const stored = yield* Effect.forEach(range(12), (i) => store.put({ name, source: `v: ${i % 6}\n`, file: "f.yaml" }), {
          concurrency: "unbounded"
        })
        const versions = [...new Set(stored.map((w) => w.version))].sort((a, b) => a - b)
        assert.deepStrictEqual(versions, [1, 2, 3, 4, 5, 6])
        for (const w of stored) assert.deepStrictEqual(yield* store.get(w.workflowId), Option.some(w))
      }))
  })

/**
 * The user's price file: a model the shipped table does not know is priced
 * from `prices.json` in the data directory, so its cost is reported and a
 * budget can stop it; a broken file is a located error before anything runs.
 */
import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ndjson, relavium, tempFile } from "./relavium.js"

const workflow = tempFile(
  "local-model.relavium.yaml",
  `schema_version: '1.0'
workflow:
  id: local-model
  name: A self-hosted model
  agents:
    - { id: local, provider: openai-compatible, model: 'llama3.1:8b', max_tokens: 100, system_prompt: Be brief. }
  nodes:
    - { id: ask, type: agent, agent_ref: local, prompt_template: Say hi }
    - { id: out, type: output }
  edges:
    - { from: ask, to: out }
`
)

const cassette = tempFile(
  "local-model.cassette.json",
  JSON.stringify({
    schema_version: "1.0",
    provider: "openai-compatible",
    model: "llama3.1:8b",
    calls: [
      [
        { type: "text_delta", text: "Hi!" },
        { type: "stop", stopReason: "stop", usage: { inputTokens: 2_000_000, outputTokens: 1_000_000 } }
      ]
    ]
  })
)

const dataDirWith = (prices: string | undefined) => {
  const dir = mkdtempSync(join(tmpdir(), "relavium-prices-"))
  if (prices !== undefined) writeFileSync(join(dir, "prices.json"), prices)
  return dir
}

const run = (dataDir: string) => relavium(["run", workflow, "--cassette", cassette, "--json", "--data-dir", dataDir])

describe("prices.json", () => {
  it("without a price the model runs unpriced; with one, its cost is reported", () => {
    const unpriced = run(dataDirWith(undefined))
    assert.strictEqual(unpriced.status, 0, unpriced.stderr)
    const before = ndjson(unpriced.stdout).find((e) => e.type === "cost:updated")!
    assert.strictEqual(before.costMicrocents, 0)
    assert.strictEqual(before.priced, false)

    const prices = JSON.stringify({
      prices: [{ provider: "openai-compatible", model: "llama3.1:8b", input_per_mtok_usd: 0.5, output_per_mtok_usd: 2 }]
    })
    const priced = run(dataDirWith(prices))
    assert.strictEqual(priced.status, 0, priced.stderr)
    const after = ndjson(priced.stdout).find((e) => e.type === "cost:updated")!
    // 2 MTok × $0.50 + 1 MTok × $2 = $3 = 300,000,000 micro-cents
    assert.strictEqual(after.costMicrocents, 300_000_000)
    assert.notStrictEqual(after.priced, false)
  })

  it("`relavium models` lists the user's models and says which entries a shipped price overrides", () => {
    const dir = dataDirWith(
      JSON.stringify({
        prices: [
          { provider: "openai-compatible", model: "llama3.1:8b", input_per_mtok_usd: 0.5, output_per_mtok_usd: 2 },
          { provider: "openai", model: "gpt-4o", input_per_mtok_usd: 0.01, output_per_mtok_usd: 0.01 }
        ]
      })
    )
    const table = relavium(["models", "--data-dir", dir])
    assert.strictEqual(table.status, 0, table.stderr)
    assert.match(table.stdout, /openai-compatible\s+llama3\.1:8b \(yours\)\s+-\s+\$0\.50?\s+\$2\.00?/)
    assert.include(table.stdout, "Ignored in")
    assert.include(table.stdout, "openai/gpt-4o has a shipped price, which wins.")
    const json = JSON.parse(relavium(["models", "--json", "--data-dir", dir]).stdout) as Array<{ model: string; source: string }>
    assert.deepStrictEqual(json.filter((r) => r.source === "user").map((r) => r.model), ["llama3.1:8b"])
  })

  it("a malformed price file is a located error (exit 2) and nothing runs", () => {
    const dir = dataDirWith(JSON.stringify({ prices: [{ provider: "openai-compatible", model: "x", input_per_mtok_usd: -1, output_per_mtok_usd: 1, extra: 1 }] }))
    const result = run(dir)
    assert.strictEqual(result.status, 2)
    assert.include(result.stderr, "prices.json: prices.0.input_per_mtok_usd:")
    assert.include(result.stderr, "prices.0.extra:")
    assert.strictEqual(result.stdout.trim(), "")
    const notJson = run(dataDirWith("{ nope"))
    assert.strictEqual(notJson.status, 2)
    assert.include(notJson.stderr, "prices.json: not valid JSON")
  })
})

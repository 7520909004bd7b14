/**
 * Poison runs (issue 14, finding 1): a run whose node stops the process every
 * time it runs — here a model call that never answers, the process SIGKILLed
 * while it waits, as a user kills a frozen `relavium` — must not be resumed
 * forever. Each recovery is counted in the run's log; after three resumes the
 * next recovery fails the run with `poison_run`, naming the node, without
 * running it again. Real `relavium` processes on one SQLite data directory.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ndjson, relaviumAsync, root } from "../../apps/cli/test/relavium.js"

const KEY = "sk-test-poison-run-0123456789"
const bin = join(root, "apps/cli/bin/relavium.mjs")

/** A model server that takes every request and never answers it; `requested` fires on each. */
const startFrozenModel = () =>
  new Promise<{ url: string; calls: () => number; onRequest: (f: () => void) => void; close: () => void }>((resolve) => {
    let calls = 0
    let listener: (() => void) | undefined
    const server = http.createServer((req) => {
      req.resume()
      req.on("end", () => {
        calls++
        listener?.()
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
        calls: () => calls,
        onRequest: (f) => void (listener = f),
        close: () => {
          server.closeAllConnections()
          server.close()
        }
      })
    )
  })

const workflow = `schema_version: '1.0'
workflow:
  id: poison
  agents:
    - { id: bot, provider: openai, model: gpt-4o-mini, max_tokens: 50, system_prompt: Answer. }
  nodes:
    - { id: first, type: transform, transform: '"before the stuck node"' }
    - { id: stuck, type: agent, agent_ref: bot, prompt_template: Say hi }
    - { id: out, type: output }
  edges:
    - { from: first, to: stuck }
    - { from: stuck, to: out }
`

/** Runs `relavium ARGS --json` and SIGKILLs it if the model is asked; resolves with what it printed. */
const runUntilModelCall = (args: ReadonlyArray<string>, env: Record<string, string>, model: Awaited<ReturnType<typeof startFrozenModel>>) =>
  new Promise<{ stdout: string; stderr: string; status: number | null; killed: boolean }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args, "--json"], { cwd: root, env: { ...process.env, ...env, NO_COLOR: "1" } })
    let stdout = ""
    let stderr = ""
    let killed = false
    model.onRequest(() => {
      killed = true
      child.kill("SIGKILL")
    })
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    child.on("error", reject)
    child.on("exit", (status) => resolve({ stdout, stderr, status, killed }))
  })

describe("poison runs", () => {
  it("a run killed in the same node on every resume is failed with poison_run after three resumes, not resumed again", { timeout: 120_000 }, async () => {
    const model = await startFrozenModel()
    try {
      const dir = mkdtempSync(join(tmpdir(), "relavium-poison-"))
      mkdirSync(join(dir, "ws"))
      const file = join(dir, "poison.relavium.yaml")
      writeFileSync(file, workflow)
      const env = { RELAVIUM_DATA_DIR: join(dir, "data"), RELAVIUM_OPENAI_BASE_URL: model.url, RELAVIUM_OPENAI_API_KEY: KEY }
      const workspace = ["--workspace", join(dir, "ws")]

      const first = await runUntilModelCall(["run", file, ...workspace], env, model)
      assert.isTrue(first.killed, "the run never reached its model call")
      const runId = ndjson(first.stdout)[0]!.runId as string

      // Three crash-resumes: each `relavium resume` runs the node again and is killed in it again.
      for (let resume = 1; resume <= 3; resume++) {
        const resumed = await runUntilModelCall(["resume", runId, ...workspace], env, model)
        assert.isTrue(resumed.killed, `resume ${resume} did not run the node again`)
        assert.strictEqual(model.calls(), 1 + resume)
      }

      // The fourth recovery finds the node interrupted once more: the run fails and the node is not run.
      const poisoned = await runUntilModelCall(["resume", runId, ...workspace], env, model)
      assert.isFalse(poisoned.killed, "the poisoned node was run again")
      assert.strictEqual(poisoned.status, 1, poisoned.stderr)
      assert.strictEqual(model.calls(), 4)
      const printed = ndjson(poisoned.stdout)
      const failed = printed.at(-1)!
      assert.strictEqual(failed.type, "run:failed")
      const error = failed.error as { code: string; message: string; nodeId: string }
      assert.strictEqual(error.code, "poison_run")
      assert.strictEqual(error.nodeId, "stuck")
      assert.match(error.message, /interrupted 4 times while running node 'stuck'/)
      assert.match(error.message, /not resumed again/)
      assert.deepStrictEqual(failed.partialOutputs, { first: "before the stuck node" })

      // The log: numbered without gaps, three recorded interruptions, the node failed, the run failed last.
      const log = ndjson((await relaviumAsync(["runs", "logs", runId, "--json"], { env })).stdout)
      log.forEach((event, i) => assert.strictEqual(event.sequenceNumber, i, `gap at ${i}`))
      const interruptions = log.filter((e) => e.type === "node:retrying" && e.interrupted === true)
      assert.deepStrictEqual(interruptions.map((e) => [e.nodeId, e.attemptNumber]), [["stuck", 2], ["stuck", 3], ["stuck", 4]])
      const nodeFailed = log.filter((e) => e.type === "node:failed")
      assert.deepStrictEqual(nodeFailed.map((e) => [e.nodeId, (e.error as { code: string }).code]), [["stuck", "poison_run"]])
      assert.strictEqual(log.filter((e) => e.type === "run:failed" || e.type === "run:completed" || e.type === "run:cancelled").length, 1)
      assert.strictEqual(log.at(-1)!.type, "run:failed")

      // It stays failed: another resume finds it ended and asks nothing.
      const again = await relaviumAsync(["resume", runId, "--json", ...workspace], { env })
      assert.notStrictEqual(again.status, 0)
      assert.match(again.stdout + again.stderr, /already ended \(failed\)/)
      assert.strictEqual(model.calls(), 4)
    } finally {
      model.close()
    }
  })
})

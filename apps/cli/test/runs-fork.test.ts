/**
 * `relavium runs fork` and `relavium runs retry`, as a user runs them: on this machine (the local
 * database) and with `--server` against a `relavium monolith` child process. The new run is
 * followed like `relavium run` (same output and exit codes); bad requests exit 2 with one line.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Monolith, startMonolith } from "../../../packages/server/test/support/monolith.js"
import { ndjson, relaviumAsync, tempFile } from "./relavium.js"

const workflow = tempFile(
  "fork.relavium.yaml",
  `schema_version: '1.0'
workflow:
  id: cli-fork
  inputs:
    - { name: k, type: number, default: 1 }
  nodes:
    - { id: s1, type: transform, transform: '1' }
    - { id: s2, type: transform, transform: 'run.outputs["s1"] + 1' }
    - { id: s3, type: transform, transform: 'inputs.k >= 0 ? run.outputs["s2"] * inputs.k : undefined.negative' }
    - { id: s4, type: transform, transform: 'run.outputs["s3"] + 1' }
    - { id: out, type: output }
  edges:
    - { from: s1, to: s2 }
    - { from: s2, to: s3 }
    - { from: s3, to: s4 }
    - { from: s4, to: out }
`
)

type Event = ReturnType<typeof ndjson>[number]
const reused = (events: ReadonlyArray<Event>) => events.filter((e) => e.type === "node:completed" && e.reusedFrom !== undefined).map((e) => e.nodeId)
const started = (events: ReadonlyArray<Event>) => events.filter((e) => e.type === "node:started").map((e) => e.nodeId)

const dirs: Array<string> = []
const freshDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(dir)
  return dir
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** `relavium run` of the workflow on `dataDir`: the run's id and its events. */
const runOnce = async (cli: (args: ReadonlyArray<string>) => ReturnType<typeof relaviumAsync>, k: number, status: number) => {
  const r = await cli(["run", workflow, "--json", "--input", `k=${k}`])
  expect(r.status, r.stderr).toBe(status)
  const events = ndjson(r.stdout)
  return { runId: events[0]!.runId as string, events }
}

describe("relavium runs fork|retry on this machine", () => {
  const dataDir = freshDir("relavium-fork-cli-")
  const cli = (args: ReadonlyArray<string>) => relaviumAsync([...args, "--data-dir", dataDir])

  it("forks a run from a node with a changed input and follows the new run", async () => {
    const original = await runOnce(cli, 2, 0)
    expect(original.events.at(-1)).toMatchObject({ type: "run:completed", outputs: { out: 5 } })

    const forked = await cli(["runs", "fork", original.runId, "--from", "s3", "--input", "k=10", "--json"])
    expect(forked.status, forked.stderr).toBe(0)
    const events = ndjson(forked.stdout)
    expect(events[0]).toMatchObject({ type: "run:started", inputs: { k: 10 }, forkedFrom: { runId: original.runId, nodeId: "s3", kind: "fork" } })
    expect(events[0]!.runId).not.toBe(original.runId)
    expect(reused(events)).toEqual(["s1", "s2"])
    expect(started(events)).toEqual(["s3", "s4", "out"])
    expect(events.at(-1)).toMatchObject({ type: "run:completed", outputs: { out: 21 } })

    const shown = await cli(["runs", "show", events[0]!.runId as string])
    expect(shown.status, shown.stderr).toBe(0)
    expect(shown.stdout).toContain(`forked    run ${original.runId} from node s3\n`)
    expect(shown.stdout).toMatch(new RegExp(`\\n  s2 +completed +reused from run ${original.runId}\\n`))
    expect(shown.stdout).toMatch(/\n  s3 +completed +\d+ ms\n/)

    // Rendered: the new run's id first, the reused nodes marked as such.
    const rendered = await cli(["runs", "fork", original.runId, "--from", "s4"])
    expect(rendered.status, rendered.stderr).toBe(0)
    expect(rendered.stdout).toMatch(/^Running cli-fork run [0-9a-f-]{36}\n/)
    expect(rendered.stdout).toContain(`✓ s3 reused from run ${original.runId}`)
    expect(rendered.stdout).toMatch(/✓ s4 \d+ ms/)
  }, 60_000)

  it("retries a failed run (it fails again the same way), and a fork with a fixed input completes", async () => {
    const original = await runOnce(cli, -1, 1)
    expect(original.events.at(-1)).toMatchObject({ type: "run:failed", error: { nodeId: "s3" } })

    const retried = await cli(["runs", "retry", original.runId, "--json"])
    expect(retried.status, retried.stderr).toBe(1)
    const events = ndjson(retried.stdout)
    expect(events[0]).toMatchObject({ forkedFrom: { runId: original.runId, kind: "retry" } })
    expect(reused(events)).toEqual(["s1", "s2"])
    expect(started(events)).toEqual(["s3"])

    const fixed = await cli(["runs", "fork", original.runId, "--from", "s3", "--input", "k=3", "--json"])
    expect(fixed.status, fixed.stderr).toBe(0)
    expect(ndjson(fixed.stdout).at(-1)).toMatchObject({ type: "run:completed", outputs: { out: 7 } })
  }, 60_000)

  it("forks an agent run: without a key or a cassette it says how to get one; with the cassette only the agent runs again", async () => {
    const cassette = "examples/cassettes/code-review.cassette.json"
    const original = await cli(["run", "examples/code-review.relavium.yaml", "--cassette", cassette, "--json"])
    expect(original.status, original.stderr).toBe(0)
    const runId = ndjson(original.stdout)[0]!.runId as string

    const noKey = await cli(["runs", "fork", runId, "--from", "review"])
    expect(noKey.status).toBe(2)
    expect(noKey.stderr).toMatch(/no API key for anthropic: run `relavium keys set anthropic` or set RELAVIUM_ANTHROPIC_API_KEY/)

    const forked = await cli(["runs", "fork", runId, "--from", "review", "--cassette", cassette, "--json"])
    expect(forked.status, forked.stderr).toBe(0)
    const events = ndjson(forked.stdout)
    expect(reused(events)).toEqual(["start"])
    expect(started(events)[0]).toBe("review")
    expect(events.at(-1)!.type).toBe("run:completed")
  }, 60_000)

  it("refuses an unknown run, an unknown node, a bad input and --detach with one line (exit 2), creating no run", async () => {
    const original = await runOnce(cli, 1, 0)
    const before = (await cli(["runs", "list", "--json", "--limit", "500"])).stdout

    const unknownRun = await cli(["runs", "fork", "no-such-run", "--from", "s3"])
    expect(unknownRun.status).toBe(2)
    expect(unknownRun.stderr).toBe("relavium: no run with id no-such-run\n")

    const unknownNode = await cli(["runs", "fork", original.runId, "--from", "s9", "--json"])
    expect(unknownNode.status).toBe(2)
    expect(JSON.parse(unknownNode.stderr)).toEqual({
      type: "error",
      code: "validation",
      message: "from: workflow 'cli-fork' has no node 's9' (nodes: s1, s2, s3, s4, out)"
    })

    const badInput = await cli(["runs", "fork", original.runId, "--from", "s3", "--input", "k=lots"])
    expect(badInput.status).toBe(2)
    expect(badInput.stderr).toBe('relavium: inputs.k: must be a number, got "lots"\n')

    const completed = await cli(["runs", "retry", original.runId])
    expect(completed.status).toBe(2)
    expect(completed.stderr).toContain("completed: there is nothing to retry")

    const detached = await cli(["runs", "fork", original.runId, "--from", "s3", "--detach"])
    expect(detached.status).toBe(2)
    expect(detached.stderr).toContain("--detach applies with --server")

    expect((await cli(["runs", "list", "--json", "--limit", "500"])).stdout).toBe(before)
  }, 60_000)
})

describe("relavium runs fork|retry --server", () => {
  let m: Monolith
  const dataDir = freshDir("relavium-fork-monolith-")
  // The CLI finds the monolith's token and certificate in its data directory.
  const remote = (args: ReadonlyArray<string>) => relaviumAsync([...args, "--server", m.url], { env: { RELAVIUM_DATA_DIR: dataDir } })

  beforeAll(async () => {
    m = await startMonolith(dataDir)
  }, 60_000)

  afterAll(async () => {
    await m?.stop()
  })

  it("forks and retries on the monolith, with the same output as locally; --detach prints the new run's id", async () => {
    const original = await runOnce(remote, 2, 0)
    const forked = await remote(["runs", "fork", original.runId, "--from", "s3", "--input", "k=10", "--json"])
    expect(forked.status, forked.stderr).toBe(0)
    const events = ndjson(forked.stdout)
    expect(events[0]).toMatchObject({ type: "run:started", inputs: { k: 10 }, forkedFrom: { runId: original.runId, nodeId: "s3", kind: "fork" } })
    expect(reused(events)).toEqual(["s1", "s2"])
    expect(events.at(-1)).toMatchObject({ type: "run:completed", outputs: { out: 21 } })

    const detached = await remote(["runs", "fork", original.runId, "--from", "s4", "--detach", "--json"])
    expect(detached.status, detached.stderr).toBe(0)
    const ref = JSON.parse(detached.stdout) as { runId: string; status: string }
    expect(ref.status).toBe("running")
    const summary = await m.api("GET", `/runs/${ref.runId}`)
    expect(summary.json.forkedFrom).toEqual({ runId: original.runId, nodeId: "s4", kind: "fork" })

    const failed = await runOnce(remote, -1, 1)
    const retried = await remote(["runs", "retry", failed.runId, "--json"])
    expect(retried.status, retried.stderr).toBe(1)
    expect(reused(ndjson(retried.stdout))).toEqual(["s1", "s2"])

    const unknownNode = await remote(["runs", "fork", original.runId, "--from", "s9"])
    expect(unknownNode.status).toBe(2)
    expect(unknownNode.stderr).toContain("has no node 's9'")
    const badInput = await remote(["runs", "fork", original.runId, "--from", "s3", "--input", "k=lots"])
    expect(badInput.status).toBe(2)
    expect(badInput.stderr).toBe('relavium: inputs.k: must be a number, got "lots"\n')
  }, 90_000)
})

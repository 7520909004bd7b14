/**
 * Live tool output in the distributed deployment, every part an OS process of
 * the bundled `relavium` against the real Postgres, Redis and NATS on
 * loopback: an api replica, a worker, a gateway and a tools daemon dialed in
 * to it. A workflow run's scripted agent calls `run_command` with a shell
 * loop (a line every 100 ms for 2 s) that runs in the remote daemon's
 * workspace; its output crosses the daemon's RPC stream, the gateway and the
 * NATS router to the worker, which stores it as `tool:output` events; an SSE
 * client on the api replica receives several of them before the tool's
 * `agent:tool_result`, while the command runs (the loop waits for a file the
 * test writes only once the client has its first chunk).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type ApiProcess, type CloudProcess, createDeployment, type Deployment, type SseEvent, startApi, startWorker } from "./support/cloud.js"
import { type GatewayProcess, startGateway, startRemoteDaemon } from "./support/distributed.js"
import { liveChunksBefore, LOOP_OUTPUT, loopCalls, loopCassette, loopWorkflow, openGateOn } from "./support/liveOutput.js"

describe("distributed: live tool output through the gateway and the NATS router", () => {
  let d: Deployment
  let api: ApiProcess
  let worker: CloudProcess
  let gateway: GatewayProcess
  let daemon: CloudProcess
  let workspace: string
  let scratch: string

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "relavium-live-dist-"))
    workspace = mkdtempSync(join(tmpdir(), "relavium-live-dist-ws-"))
    const tape = join(scratch, "live.cassette.json")
    writeFileSync(tape, loopCassette(loopCalls("toolu_dist_loop")))
    d = await createDeployment("live")
    api = await startApi(d)
    ;[gateway, worker] = await Promise.all([startGateway(d), startWorker(d, { args: ["--cassette", tape] })])
    daemon = await startRemoteDaemon(gateway, workspace)
  }, 180_000)

  afterAll(async () => {
    await Promise.all([api, worker, gateway, daemon].map((p) => p?.stop("SIGKILL")))
    await d?.dispose()
    for (const dir of [scratch, workspace]) if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it("an SSE client on the api sees the loop's lines as tool:output events before agent:tool_result", async () => {
    const uploaded = await api.api("POST", "/workflows", { yaml: loopWorkflow("live-loop"), file: "live-loop.relavium.yaml" })
    expect(uploaded.status, uploaded.text).toBe(201)
    const started = await api.api("POST", "/runs", { workflowId: uploaded.json.workflowId })
    expect(started.status, `${started.text}\n${api.output().slice(-2000)}`).toBe(201)
    const runId = started.json.runId as string
    const received: Array<SseEvent> = []
    let opened = false
    const events = await api.events(runId, {
      until: (event) => {
        received.push(event)
        if (!opened) opened = openGateOn(workspace, received)
        return false
      }
    })
    expect(events.at(-1)!.type, `${JSON.stringify(events.at(-1))}\n${worker.output().slice(-3000)}`).toBe("run:completed")
    const live = liveChunksBefore(events, "agent:tool_result", "toolu_dist_loop")
    expect(live.chunks.length).toBeGreaterThanOrEqual(5)
    expect(live.text).toBe(LOOP_OUTPUT)
    expect(live.after).toEqual([])
    for (const e of live.chunks) expect(e.data).toMatchObject({ runId, nodeId: "run", stream: "stdout" })
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i))
    expect(events.find((e) => e.type === "agent:tool_result")!.data).toMatchObject({ success: true, outputSummary: LOOP_OUTPUT })
  })
})

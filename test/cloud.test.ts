/**
 * The distributed mode end to end, as OS processes of the bundled `relavium`:
 * `relavium server api` and `relavium server worker` replicas on the real
 * Postgres, Redis and NATS on loopback (a fresh database and prefixes of their
 * own per deployment), driven over HTTP and SSE as a client would; provider
 * keys set through the API and checked never to reach Redis; `relavium db
 * migrate`; and the settings a server refuses to start with.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { randomBytes } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { openAiChat } from "../packages/llm/test/fixtures/wire.js"
import {
  type ApiProcess,
  type CloudProcess,
  createDatabase,
  createDeployment,
  type Deployment,
  dropDatabase,
  dumpRedis,
  natsUrl,
  redisUrl,
  runRelavium,
  type SseEvent,
  startApi,
  startWorker
} from "./support/cloud.js"

const wf = (body: string) => `schema_version: '1.0'\nworkflow:\n${body.replace(/^/gm, "  ")}\n`

const workflows = {
  linear: wf(`id: linear
inputs:
  - { name: n, type: number, default: 2 }
nodes:
  - { id: start, type: input }
  - { id: double, type: transform, transform: 'inputs.n * 2' }
  - { id: plus-one, type: transform, transform: 'run.outputs["double"] + 1' }
  - { id: out, type: output }
edges:
  - { from: start, to: double }
  - { from: double, to: plus-one }
  - { from: plus-one, to: out }`),
  parallel: wf(`id: fan-out
nodes:
  - { id: start, type: input }
  - { id: split, type: parallel, parallel_of: [a, b, c] }
  - { id: a, type: transform, transform: '"a"' }
  - { id: b, type: transform, transform: '"b"' }
  - { id: c, type: transform, transform: '"c"' }
  - { id: gather, type: merge, merge_strategy: concat }
  - { id: out, type: output }
edges:
  - { from: start, to: split }
  - { from: a, to: gather }
  - { from: b, to: gather }
  - { from: c, to: gather }
  - { from: gather, to: out }`),
  gated: wf(`id: gated
nodes:
  - { id: plan, type: transform, transform: '"plan"' }
  - { id: approve, type: human_gate, gate_type: approval, message_template: 'ship it?' }
  - { id: ship, type: transform, transform: 'run.outputs["approve"]' }
  - { id: out, type: output }
edges:
  - { from: plan, to: approve }
  - { from: approve, to: ship }
  - { from: ship, to: out }`),
  agent: wf(`id: keyed-agent
agents:
  - { id: writer, provider: openai, model: gpt-4o-mini, system_prompt: Answer briefly. }
nodes:
  - { id: ask, type: agent, agent_ref: writer, prompt_template: Say hello }
  - { id: out, type: output }
edges:
  - { from: ask, to: out }`)
}

const upload = async (api: ApiProcess, yaml: string) => {
  const response = await api.api("POST", "/workflows", { yaml, file: "test.relavium.yaml" })
  expect(response.status, response.text).toBe(201)
  return response.json.workflowId as string
}

const startRun = async (api: ApiProcess, workflowId: string) => {
  const response = await api.api("POST", "/runs", { workflowId })
  expect(response.status, response.text).toBe(201)
  return response.json.runId as string
}

/** Sequence numbers 0..n-1, each node completed once, ending with run:completed. */
const expectCompleteLog = (events: ReadonlyArray<SseEvent>, runId: string) => {
  expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i))
  expect(events.every((e) => e.data.runId === runId && e.data.sequenceNumber === e.id)).toBe(true)
  expect(events.at(-1)?.type).toBe("run:completed")
  const completed = events.filter((e) => e.type === "node:completed").map((e) => e.data.nodeId as string)
  expect(new Set(completed).size).toBe(completed.length)
}

/** An OpenAI-compatible server on loopback answering every chat call; records the Authorization headers. */
const fakeOpenAi = async () => {
  const authorizations: Array<string> = []
  const server = http.createServer((req, res) => {
    req.resume()
    req.on("end", () => {
      authorizations.push(req.headers.authorization ?? "")
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
      for (const frame of openAiChat.text()) res.write(frame)
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    authorizations,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

const timings: Array<string> = []
const timed = async <A>(what: string, f: () => Promise<A>): Promise<A> => {
  const started = Date.now()
  try {
    return await f()
  } finally {
    timings.push(`${what}: ${Date.now() - started} ms`)
  }
}
afterAll(() => {
  console.log(`cloud.test.ts timings\n  ${timings.join("\n  ")}`)
})

describe("relavium server api + 2 workers", () => {
  const masterKey = randomBytes(32).toString("base64")
  const providerKey = `sk-test-${randomBytes(16).toString("hex")}`
  let d: Deployment
  let api: ApiProcess
  let workers: Array<CloudProcess>
  let provider: Awaited<ReturnType<typeof fakeOpenAi>>

  beforeAll(async () => {
    await timed("api + 2 workers up", async () => {
      ;[d, provider] = await Promise.all([createDeployment("procs"), fakeOpenAi()])
      // The deployment is migrated by the operator role (as `relavium db migrate` does); the api and
      // the workers connect as relavium_app and only check the schema: start all three at once.
      const env = { RELAVIUM_MASTER_KEY: masterKey, RELAVIUM_OPENAI_BASE_URL: provider.baseUrl }
      ;[api, ...workers] = await Promise.all([
        startApi(d, { env: { RELAVIUM_MASTER_KEY: masterKey } }),
        startWorker(d, { env }),
        startWorker(d, { env })
      ])
    })
  }, 30_000)

  afterAll(async () => {
    await Promise.all([api?.stop("SIGKILL"), ...(workers ?? []).map((w) => w.stop("SIGKILL"))])
    await provider?.close()
    await d?.dispose()
  })

  it("says where it listens and what it connected to", () => {
    expect(api.output()).toMatch(/relavium server api: listening on http:\/\/127\.0\.0\.1:\d+ \(pid \d+\)/)
    expect(api.output()).toMatch(new RegExp(`Postgres: Postgres at ${d.appDatabaseUrl} \\(schema \\d+; up to date\\)`))
    expect(api.output()).toContain(`Redis:    ${redisUrl} (queue prefix ${d.queuePrefix})`)
    expect(api.output()).toContain(`NATS:     ${natsUrl} (subject prefix ${d.subjectPrefix})`)
    expect(api.output()).toMatch(/keys: +AES-256-GCM encrypted in Postgres \(master key [0-9a-f]{16}\)/)
    for (const w of workers) expect(w.output()).toMatch(/relavium server worker: taking jobs \(orchestrator 8, node 64, system 4 at once/)
  })

  it("refuses a request without the bearer token", async () => {
    const response = await api.api("GET", "/runs", undefined, { token: null })
    expect(response.status).toBe(401)
    expect((await api.api("GET", "/runs", undefined, { token: "wrong-token-wrong-token" })).status).toBe(401)
  })

  it("runs linear, fan-out and gated workflows started over HTTP on the workers; SSE streams every event once, in order", async () => {
    await timed("9 runs (linear, fan-out, gate approved) over HTTP + SSE", async () => {
      const ids = {
        linear: await upload(api, workflows.linear),
        parallel: await upload(api, workflows.parallel),
        gated: await upload(api, workflows.gated)
      }
      const expected = { linear: { out: 5 }, parallel: { out: ["a", "b", "c"] }, gated: { out: { decision: "approved" } } }
      const kinds = (["linear", "parallel", "gated"] as const).flatMap((k) => [k, k, k])
      const results = await Promise.all(
        kinds.map(async (kind) => {
          const runId = await startRun(api, ids[kind])
          if (kind === "gated") {
            // Follow until the gate pauses the run, approve it through the API, then resume from where we were.
            const upToPause = await api.events(runId, { until: (e) => e.type === "run:paused" })
            const gates = await api.api("GET", `/gates?runId=${runId}`)
            expect(gates.json).toHaveLength(1)
            const decided = await api.api("POST", `/runs/${runId}/gates/${encodeURIComponent(gates.json[0].gateId)}/approve`, { comment: "ok" })
            expect(decided.status, decided.text).toBe(200)
            const rest = await api.events(runId, { lastEventId: upToPause.at(-1)!.id })
            return { kind, runId, events: [...upToPause, ...rest] }
          }
          return { kind, runId, events: await api.events(runId) }
        })
      )
      for (const { events, kind, runId } of results) {
        expectCompleteLog(events, runId)
        expect(events[0]!.data).toMatchObject({ type: "run:started", executionMode: "cloud" })
        expect(events.at(-1)!.data.outputs).toEqual(expected[kind])
        const summary = await api.api("GET", `/runs/${runId}`)
        expect(summary.json.status).toBe("completed")
      }
    })
  }, 30_000)

  it("gives the workers a key set through the API, and the key never appears in the Redis job data", async () => {
    await timed("4 agent runs with a Redis scan", async () => {
      const set = await api.api("PUT", "/keys/openai", { key: providerKey })
      expect(set.status, set.text).toBe(204)
      const listed = await api.api("GET", "/keys")
      expect(listed.json).toEqual({ providers: ["openai"] })
      expect(listed.text).not.toContain(providerKey)
      const workflowId = await upload(api, workflows.agent)

      // Scan everything the deployment keeps in Redis while the runs go, and once after.
      const samples: Array<{ keys: number; text: string }> = []
      let running = true
      const scanning = (async () => {
        while (running) samples.push(await dumpRedis(d.queuePrefix))
      })()
      const runIds = await Promise.all(Array.from({ length: 4 }, () => startRun(api, workflowId)))
      const logs = await Promise.all(runIds.map((runId) => api.events(runId)))
      running = false
      await scanning
      samples.push(await dumpRedis(d.queuePrefix))

      for (const [i, events] of logs.entries()) {
        expectCompleteLog(events, runIds[i]!)
        expect(events.at(-1)!.data.outputs).toEqual({ out: "Hello, world!" })
        expect(JSON.stringify(events)).not.toContain(providerKey)
      }
      // The key did travel: from Postgres, decrypted by a worker, to the provider.
      expect(provider.authorizations).toHaveLength(4)
      for (const header of provider.authorizations) expect(header).toBe(`Bearer ${providerKey}`)
      // The scan looked at the jobs of these runs (the BullMQ job hashes and their data).
      const last = samples.at(-1)!.text
      for (const runId of runIds) expect(last).toContain(`"data":"{\\"_tag\\":\\"ExecuteNode\\",\\"runId\\":\\"${runId}\\"`)
      expect(samples.length).toBeGreaterThan(1)
      for (const sample of samples) expect(sample.text).not.toContain(providerKey)
    })
  }, 30_000)

  it("stops the api and the workers on SIGTERM with exit 0", async () => {
    const codes = await timed("SIGTERM of api + 2 workers", () => Promise.all([api.stop("SIGTERM"), ...workers.map((w) => w.stop("SIGTERM"))]))
    expect(codes).toEqual([0, 0, 0])
    for (const p of [api, ...workers]) expect(p.output()).not.toMatch(/error|Error/)
  }, 20_000)
})

describe("relavium server worker --cassette", () => {
  let d: Deployment
  let api: ApiProcess | undefined
  let worker: CloudProcess | undefined
  const dir = mkdtempSync(join(tmpdir(), "relavium-cloud-"))
  const cassette = join(dir, "hello.cassette.json")
  writeFileSync(
    cassette,
    JSON.stringify({
      schema_version: "1.0",
      provider: "openai",
      model: "gpt-4o-mini",
      calls: [[{ type: "text_delta", text: "Hello from the " }, { type: "text_delta", text: "cassette." }, { type: "stop", stopReason: "stop", usage: { inputTokens: 12, outputTokens: 5 } }]]
    })
  )

  beforeAll(async () => {
    d = await createDeployment("cassette", { migrated: false })
  })

  afterAll(async () => {
    await Promise.all([api?.stop("SIGKILL"), worker?.stop("SIGKILL")])
    await d?.dispose()
    rmSync(dir, { recursive: true, force: true })
  })

  it("the api migrates a fresh database and only enqueues: a run waits for a worker, which replays the cassette offline", async () => {
    await timed("api alone, then a cassette worker", async () => {
      // An api connected as the operator role migrates on start; the worker connects as relavium_app.
      api = await startApi(d, { env: { RELAVIUM_DATABASE_URL: d.databaseUrl } })
      expect(api.output()).toMatch(new RegExp(`Postgres: Postgres at ${d.databaseUrl} \\(schema \\d+; applied 1_initial, 2_provider_keys[^)]*\\)`))
      const runId = await startRun(api, await upload(api, workflows.agent))
      // No worker yet: the run is accepted and stays at its start, however long we look.
      await new Promise((r) => setTimeout(r, 500))
      const before = await api.api("GET", `/runs/${runId}`)
      expect(before.json.status).toBe("running")
      expect(before.json.nodes ?? []).toEqual([])
      worker = await startWorker(d, { args: ["--cassette", cassette] })
      expect(worker.output()).toContain(`models:   replayed from the cassette ${cassette}`)
      const events = await api.events(runId)
      expectCompleteLog(events, runId)
      expect(events.at(-1)!.data.outputs).toEqual({ out: "Hello from the cassette." })
    })
  }, 30_000)
})

describe("relavium db migrate", () => {
  it("applies the migrations once, says what it applied, and takes turns with concurrent migrators", async () => {
    await timed("db migrate, 3 at once", async () => {
      const { name, url } = await createDatabase("dbmigrate")
      try {
        // Two take the URL as a flag, one from the environment.
        const results = await Promise.all([
          runRelavium(["db", "migrate", "--database-url", url]),
          runRelavium(["db", "migrate", "--database-url", url]),
          runRelavium(["db", "migrate"], { RELAVIUM_DATABASE_URL: url })
        ])
        expect(results.map((r) => r.status)).toEqual([0, 0, 0])
        const applied = results.filter((r) => r.output.includes(": applied "))
        expect(applied).toHaveLength(1)
        expect(applied[0]!.output).toMatch(
          new RegExp(`^relavium db migrate: Postgres at ${url}: applied 1_initial, 2_provider_keys(, [0-9a-z_]+)* \\(schema \\d+\\)\\n$`)
        )
        for (const r of results.filter((r) => !r.output.includes(": applied "))) {
          expect(r.output).toMatch(new RegExp(`^relavium db migrate: Postgres at ${url}: up to date \\(schema \\d+\\)\\n$`))
        }
      } finally {
        await dropDatabase(name)
      }
    })
  }, 30_000)

  it("without a database URL, says which setting is missing (exit 2)", async () => {
    const result = await runRelavium(["db", "migrate"])
    expect(result.status).toBe(2)
    expect(result.output).toBe("relavium db migrate: missing --database-url (or RELAVIUM_DATABASE_URL)\n")
  })
})

describe("a server that cannot start says why, on one line", () => {
  const good = { RELAVIUM_REDIS_URL: redisUrl, RELAVIUM_NATS_URL: natsUrl, RELAVIUM_TOKEN: "relavium-test-token-0123456789abcdef" }
  let database: { readonly name: string; readonly url: string }
  beforeAll(async () => {
    database = await createDatabase("badconfig")
  })
  afterAll(async () => {
    await dropDatabase(database.name)
  })

  it("names the unreachable service (Postgres, Redis or NATS) with its URL, password masked, and exits 1", async () => {
    // One service down per process, api and worker alternately.
    const cases = [
      { role: "api", flag: ["--database-url", "postgres://relavium:s3cret@127.0.0.1:1/relavium"], says: "cannot reach Postgres at postgres://relavium:***@127.0.0.1:1/relavium" },
      { role: "worker", flag: ["--redis-url", "redis://relavium:s3cret@127.0.0.1:1"], says: "cannot reach Redis at redis://relavium:***@127.0.0.1:1" },
      { role: "api", flag: ["--nats-url", "nats://relavium:s3cret@127.0.0.1:1"], says: "cannot reach NATS at nats://***@127.0.0.1:1" },
      { role: "worker", flag: ["--database-url", "postgres://relavium:s3cret@127.0.0.1:1/relavium"], says: "cannot reach Postgres at postgres://relavium:***@127.0.0.1:1/relavium" }
    ] as const
    // The api migrates the database, and workers only check it: migrate it first, so that only
    // the broken service can be at fault whichever process starts first.
    expect((await runRelavium(["db", "migrate", "--database-url", database.url])).status).toBe(0)
    const results = await timed(`${cases.length} servers that cannot start (in parallel)`, () =>
      Promise.all(
        cases.map(async ({ flag, role, says }) => {
          const args = ["server", role, ...(role === "api" ? ["--port", "0"] : []), ...flag]
          return { role, says, ...(await runRelavium(args, { ...good, RELAVIUM_DATABASE_URL: database.url })) }
        })
      )
    )
    for (const r of results) {
      timings.push(`  server ${r.role}, ${r.says.split(" at ")[0]}: exit ${r.status} after ${r.ms} ms`)
      expect(r.status, r.output).toBe(1)
      expect(r.output.startsWith(`relavium server ${r.role}: ${r.says}: `), r.output).toBe(true)
      expect(r.output.trim().split("\n")).toHaveLength(1)
      expect(r.output).not.toContain("s3cret")
    }
  }, 30_000)

  it("a worker on a database that was never migrated says to migrate it (exit 1)", async () => {
    const fresh = await createDatabase("badconfig")
    try {
      const result = await runRelavium(["server", "worker"], { ...good, RELAVIUM_DATABASE_URL: fresh.url })
      expect(result.status).toBe(1)
      expect(result.output).toMatch(
        new RegExp(`^relavium server worker: Postgres at ${fresh.url} has schema version 0; this build needs \\d+: run \`relavium db migrate --database-url URL\` with the operator role's URL \\(or start \`relavium server api\` connected as it, which migrates\\)\\n$`)
      )
    } finally {
      await dropDatabase(fresh.name)
    }
  })

  it("missing settings are named, and nothing starts (exit 2)", async () => {
    const [noUrls, noToken, badKey] = await Promise.all([
      runRelavium(["server", "worker"]),
      runRelavium(["server", "api", "--port", "0"], { RELAVIUM_REDIS_URL: redisUrl, RELAVIUM_NATS_URL: natsUrl, RELAVIUM_DATABASE_URL: database.url }),
      runRelavium(["server", "api", "--port", "0"], { ...good, RELAVIUM_DATABASE_URL: database.url, RELAVIUM_MASTER_KEY: "not-a-key" })
    ])
    expect(noUrls.status).toBe(2)
    expect(noUrls.output).toBe(
      "relavium server worker: missing --database-url (or RELAVIUM_DATABASE_URL), --redis-url (or RELAVIUM_REDIS_URL), --nats-url (or RELAVIUM_NATS_URL): the distributed mode runs on Postgres, Redis and NATS\n"
    )
    expect(noToken.status).toBe(2)
    expect(noToken.output).toBe("relavium server api: missing --token (or RELAVIUM_TOKEN): the bearer token clients must send\n")
    expect(badKey.status).toBe(2)
    expect(badKey.output).toBe(
      "relavium server api: RELAVIUM_MASTER_KEY must be 32 random bytes in base64 or hex (make one with `openssl rand -base64 32`)\n"
    )
    expect(badKey.output).not.toContain("not-a-key")
  })
})

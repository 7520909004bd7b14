/**
 * More of a distributed deployment for tests, on top of `cloud.ts`: the
 * gateway (`relavium server gateway`) and a remote tools daemon dialed in to
 * it (`relavium daemon start --gateway`), both as OS processes; the stock
 * `eventsource` client on an api replica; a query on a deployment's Postgres
 * (to read event logs as stored); and a cassette for concurrent agent runs.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { EventSource } from "eventsource"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Redacted } from "effect"
import { type CloudProcess, type Deployment, root, type SseEvent, spawnRelavium, testToken, waitForOutput, withRedis } from "./cloud.js"
import { RunEvent } from "@relavium/domain"

export interface GatewayProcess extends CloudProcess {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** `ws://127.0.0.1:PORT/rpc/daemon`, what `relavium daemon start --gateway` takes. */
  readonly daemonUrl: string
  readonly token: string
}

/** `relavium server gateway --port 0` of `d` (NATS and its subject prefix); resolves once it listens. */
export const startGateway = async (
  d: Pick<Deployment, "env">,
  options: { readonly token?: string; readonly args?: ReadonlyArray<string> } = {}
): Promise<GatewayProcess> => {
  const token = options.token ?? testToken
  const p = spawnRelavium(["server", "gateway", "--port", "0", ...(options.args ?? [])], {
    RELAVIUM_NATS_URL: d.env.RELAVIUM_NATS_URL!,
    RELAVIUM_SUBJECT_PREFIX: d.env.RELAVIUM_SUBJECT_PREFIX!,
    RELAVIUM_TOKEN: token
  })
  const [, url, daemonUrl] = await waitForOutput(p, /listening on (http:\/\/\S+) [^\n]*\n\s+tools daemons: (ws:\/\/\S+)/)
  return { ...p, url: url!, daemonUrl: daemonUrl!, token }
}

/**
 * `relavium daemon start --gateway URL` serving `workspace`, with the token in RELAVIUM_TOKEN (never
 * on the command line); resolves once both sides say it is connected (the gateway answers its
 * NATS subject from then on).
 */
export const startRemoteDaemon = async (
  gateway: GatewayProcess,
  workspace: string,
  options: { readonly name?: string } = {}
): Promise<CloudProcess> => {
  const name = options.name ?? "default"
  const p = spawnRelavium(["daemon", "start", "--gateway", gateway.daemonUrl, "--workspace", workspace, "--name", name], {
    RELAVIUM_TOKEN: gateway.token
  })
  await waitForOutput(p, new RegExp(`relavium daemon: connected to \\S+ as '${name}'`))
  await waitForOutput(gateway, new RegExp(`tools daemon '${name}' connected`))
  return p
}

/**
 * Follows a run's events on an api replica with the stock `eventsource` client until the run's
 * terminal event (the server ends the stream there).
 */
export const followWithEventSource = (apiUrl: string, runId: string, token = testToken, timeoutMs = 120_000) =>
  new Promise<Array<SseEvent>>((resolve, reject) => {
    const received: Array<SseEvent> = []
    const source = new EventSource(`${apiUrl}/runs/${runId}/events`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${token}` } })
    })
    const timer = setTimeout(() => {
      source.close()
      reject(new Error(`no end of the event stream of ${runId} after ${received.length} events`))
    }, timeoutMs)
    const onEvent = (message: MessageEvent) => {
      const event: SseEvent = { id: Number(message.lastEventId), type: message.type, data: JSON.parse(message.data) }
      received.push(event)
      if (["run:completed", "run:failed", "run:cancelled"].includes(event.type)) {
        clearTimeout(timer)
        source.close()
        resolve(received)
      }
    }
    for (const type of RUN_EVENT_TYPES) source.addEventListener(type, onEvent)
    source.onerror = (error) => {
      if (source.readyState === source.CLOSED) {
        clearTimeout(timer)
        reject(new Error(`the event stream of ${runId} failed: ${String((error as { message?: string }).message)}`))
      }
      // Otherwise the client reconnects by itself with Last-Event-ID.
    }
  })

const RUN_EVENT_TYPES = RunEvent.runEventTypes

/** A stored event: its sequence number, type and JSON payload, as Postgres holds it. */
export interface StoredEvent {
  readonly seq: number
  readonly type: string
  readonly payload: { readonly [k: string]: any }
}

/** Runs `statement` on the deployment's database; its rows. */
export const queryDatabase = <A extends object>(databaseUrl: string, statement: string): Promise<ReadonlyArray<A>> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(PgClient.make({ url: Redacted.make(databaseUrl), connectTimeout: Duration.seconds(5) }), (sql) =>
        sql.unsafe<A>(statement)
      )
    ).pipe(Effect.provide(Reactivity.layer))
  )

/** Every stored event of every run, by run, in sequence order. */
export const storedEvents = async (databaseUrl: string): Promise<Map<string, Array<StoredEvent>>> => {
  const rows = await queryDatabase<{ run_id: string; seq: number; type: string; payload: unknown }>(
    databaseUrl,
    "SELECT run_id, seq, type, payload FROM run_events ORDER BY run_id, seq"
  )
  const byRun = new Map<string, Array<StoredEvent>>()
  for (const row of rows) {
    const payload = typeof row.payload === "string" ? JSON.parse(row.payload) : row.payload
    const list = byRun.get(row.run_id) ?? []
    list.push({ seq: Number(row.seq), type: row.type, payload })
    byRun.set(row.run_id, list)
  }
  return byRun
}

/**
 * The BullMQ jobs under `prefix` that were taken over after their worker died: BullMQ's stalled-job
 * check counts each move back to the queue in the job hash's `stc` field (completed jobs are kept).
 */
export const takenOverJobs = (prefix: string) =>
  withRedis(async (client) => {
    const found: Array<{ readonly key: string; readonly name: string; readonly stalled: number }> = []
    let cursor = "0"
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000)
      cursor = next
      for (const key of keys) {
        if ((await client.type(key)) !== "hash") continue
        const [name, stalled] = await client.hmget(key, "name", "stc")
        if (name !== null && Number(stalled ?? 0) > 0) found.push({ key, name, stalled: Number(stalled) })
      }
    } while (cursor !== "0")
    return found
  })

export const fixtures = join(root, "apps/cli/test/fixtures")

/**
 * The remote-writer cassette (the agent writes hello.txt with `write_file`, then says so) with its
 * pair of calls repeated `runs` times. A worker replays a cassette's calls in order across its
 * runs, so agent runs that follow one another each get the pair: tool call, then answer.
 */
export const writerCassette = (runs: number): string => {
  const recorded = JSON.parse(readFileSync(join(fixtures, "remote-writer.cassette.json"), "utf8"))
  const pair = recorded.calls.slice(0, 2)
  const file = join(mkdtempSync(join(tmpdir(), "relavium-cassette-")), "writer.cassette.json")
  writeFileSync(file, JSON.stringify({ ...recorded, calls: Array.from({ length: runs }, () => pair).flat() }))
  return file
}

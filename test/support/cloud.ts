/**
 * Driving a distributed deployment from tests, on the real Postgres, Redis and
 * NATS on loopback (`bash scripts/services.sh` starts them): a fresh Postgres
 * database and a unique Redis key prefix and NATS subject prefix per
 * deployment, cleaned up afterwards; `relavium server api|worker` and
 * `relavium db migrate` as real OS processes of the bundled CLI; an HTTP
 * client with the bearer token; an SSE reader; and a dump of everything the
 * deployment keeps in Redis (the BullMQ job hashes included).
 *
 * Written to be built on (more replicas, a gateway, SIGKILLs): every process
 * is a `CloudProcess` with its output, its exit, and `stop`/`kill`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Redis } from "ioredis"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Redacted } from "effect"

export const root = fileURLToPath(new URL("../../", import.meta.url))
export const bin = join(root, "apps/cli/bin/relavium.mjs")

export const pgServer = process.env.RELAVIUM_TEST_PG ?? "postgres://postgres@127.0.0.1:5432"
export const redisUrl = process.env.RELAVIUM_TEST_REDIS ?? "redis://127.0.0.1:6379"
export const natsUrl = process.env.RELAVIUM_TEST_NATS ?? "nats://127.0.0.1:4222"

// ---------------------------------------------------------------------------
// Postgres, Redis and NATS namespaces
// ---------------------------------------------------------------------------

/** Runs one statement on the database at `url` as the operator (the superuser of the test server). */
export const onDatabase = (url: string, statement: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(PgClient.make({ url: Redacted.make(url), connectTimeout: Duration.seconds(5) }), (sql) => sql.unsafe(statement))
    ).pipe(Effect.provide(Reactivity.layer))
  )

const onAdmin = (statement: string) => onDatabase(`${pgServer}/test`, statement)

/** A new, empty database; its URL. */
export const createDatabase = async (label = "cloud"): Promise<{ readonly name: string; readonly url: string }> => {
  const name = `relavium_${label}_${crypto.randomUUID().replaceAll("-", "")}`
  await onAdmin(`CREATE DATABASE ${name}`)
  return { name, url: `${pgServer}/${name}` }
}

/** The same database as the application role `relavium_app` (trust auth on the test server), as servers connect. */
export const asAppRole = (url: string): string => {
  const parsed = new URL(url)
  parsed.username = "relavium_app"
  parsed.password = ""
  return parsed.toString()
}

export const dropDatabase = (name: string) => onAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)

/** Runs `f` with a Redis client, disconnected afterwards. */
export const withRedis = async <A>(f: (client: Redis) => Promise<A>): Promise<A> => {
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  try {
    return await f(client)
  } finally {
    client.disconnect()
  }
}

const keysUnder = async (client: Redis, prefix: string): Promise<Array<string>> => {
  const keys: Array<string> = []
  let cursor = "0"
  do {
    const [next, batch] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== "0")
  return keys
}

/** Deletes every Redis key under `prefix`. */
export const deleteRedisKeys = (prefix: string) =>
  withRedis(async (client) => {
    const keys = await keysUnder(client, prefix)
    for (let i = 0; i < keys.length; i += 500) await client.del(...keys.slice(i, i + 500))
  })

/**
 * Everything Redis holds under `prefix`, as text: each key's name and every value in it (hash
 * fields and values — a BullMQ job is a hash whose `data` field is the payload —, list, set and
 * sorted-set members, strings, stream entries). What a leak scan searches.
 */
export const dumpRedis = (prefix: string) =>
  withRedis(async (client) => {
    const parts: Array<string> = []
    for (const key of await keysUnder(client, prefix)) {
      parts.push(key)
      const type = await client.type(key)
      switch (type) {
        case "hash":
          parts.push(JSON.stringify(await client.hgetall(key)))
          break
        case "list":
          parts.push(...(await client.lrange(key, 0, -1)))
          break
        case "set":
          parts.push(...(await client.smembers(key)))
          break
        case "zset":
          parts.push(...(await client.zrange(key, 0, -1)))
          break
        case "string":
          parts.push((await client.get(key)) ?? "")
          break
        case "stream":
          parts.push(JSON.stringify(await client.xrange(key, "-", "+")))
          break
      }
    }
    return { keys: parts.length, text: parts.join("\n") }
  })

/**
 * Where one deployment's processes meet: a fresh database and prefixes of its own. The database
 * is migrated by the operator role (`databaseUrl`, the `postgres` superuser; unless `migrated:
 * false`), and the servers connect as the application role (`appDatabaseUrl`, in `env`), under
 * row-level security, as in production.
 */
export interface Deployment {
  readonly databaseName: string
  /** The operator role's URL: migrations, and reading every org's rows in checks. */
  readonly databaseUrl: string
  /** The application role's URL, which the servers get. */
  readonly appDatabaseUrl: string
  readonly queuePrefix: string
  readonly subjectPrefix: string
  /** The environment a `relavium server` process of this deployment gets. */
  readonly env: Readonly<Record<string, string>>
  /** Drops the database and deletes the Redis keys. */
  readonly dispose: () => Promise<void>
}

export const createDeployment = async (label = "cloud", options: { readonly migrated?: boolean } = {}): Promise<Deployment> => {
  const { name, url } = await createDatabase(label)
  if (options.migrated !== false) {
    const migrated = await runRelavium(["db", "migrate", "--database-url", url])
    if (migrated.status !== 0) throw new Error(`cannot migrate ${url}: ${migrated.output}`)
  }
  const appUrl = asAppRole(url)
  const id = crypto.randomUUID().replaceAll("-", "")
  const queuePrefix = `relavium-test-${label}-${id}`
  const subjectPrefix = `relavium-test.${label}.${id}`
  return {
    databaseName: name,
    databaseUrl: url,
    appDatabaseUrl: appUrl,
    queuePrefix,
    subjectPrefix,
    env: {
      RELAVIUM_DATABASE_URL: appUrl,
      RELAVIUM_REDIS_URL: redisUrl,
      RELAVIUM_NATS_URL: natsUrl,
      RELAVIUM_QUEUE_PREFIX: queuePrefix,
      RELAVIUM_SUBJECT_PREFIX: subjectPrefix
    },
    dispose: async () => {
      await dropDatabase(name)
      await deleteRedisKeys(queuePrefix)
    }
  }
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

export interface CloudProcess {
  readonly process: ChildProcess
  /** Everything it wrote, stdout and stderr interleaved as received. */
  readonly output: () => string
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>
  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** The environment a child process gets: this one's, without any Relavium setting, plus `env`. */
const childEnv = (env: Readonly<Record<string, string>>) => {
  const base: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("RELAVIUM_")) base[k] = v
  return { ...base, NO_COLOR: "1", ...env }
}

/** Starts `relavium ARGS` as an OS process. */
export const spawnRelavium = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): CloudProcess => {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  return {
    process: child,
    output: () => output,
    exited,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    }
  }
}

/** Runs `relavium ARGS` to its end. */
export const runRelavium = async (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}) => {
  const started = Date.now()
  const p = spawnRelavium(args, env)
  const status = await p.exited
  return { status, output: p.output(), ms: Date.now() - started }
}

/** Waits until the process prints something matching `pattern`; rejects if it exits first. */
export const waitForOutput = (p: CloudProcess, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> =>
  new Promise((resolve, reject) => {
    const check = () => {
      const match = pattern.exec(p.output())
      if (match) {
        cleanup()
        resolve(match)
      }
    }
    const onExit = (code: number | null) => {
      cleanup()
      reject(new Error(`the process exited (${code}) before printing ${pattern}:\n${p.output()}`))
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${p.output()}`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      p.process.stdout!.off("data", check)
      p.process.stderr!.off("data", check)
      p.process.off("exit", onExit)
    }
    p.process.stdout!.on("data", check)
    p.process.stderr!.on("data", check)
    p.process.once("exit", onExit)
    check()
  })

export interface ApiProcess extends CloudProcess {
  readonly url: string
  readonly token: string
  readonly api: (method: string, path: string, body?: unknown, options?: { readonly token?: string | null }) => Promise<ApiResponse>
  /** Follows a run's events over SSE until its terminal event (or `until` says stop). */
  readonly events: (runId: string, options?: { readonly until?: (event: SseEvent) => boolean; readonly lastEventId?: number }) => Promise<Array<SseEvent>>
}

export interface ApiResponse {
  readonly status: number
  readonly json: any
  readonly text: string
}

export interface SseEvent {
  readonly id: number
  readonly type: string
  readonly data: { readonly type: string; readonly sequenceNumber: number; readonly runId: string; readonly [k: string]: unknown }
}

export const testToken = "relavium-test-token-0123456789abcdef"

/** `relavium server api --port 0` of `d`; resolves once it listens. */
export const startApi = async (
  d: Deployment,
  options: { readonly args?: ReadonlyArray<string>; readonly env?: Readonly<Record<string, string>>; readonly token?: string } = {}
): Promise<ApiProcess> => {
  const token = options.token ?? testToken
  const p = spawnRelavium(["server", "api", "--port", "0", ...(options.args ?? [])], { ...d.env, RELAVIUM_TOKEN: token, ...options.env })
  const [, url] = await waitForOutput(p, /listening on (https?:\/\/\S+)/)
  return { ...p, url: url!, token, api: apiClient(url!, token), events: sseClient(url!, token) }
}

/** `relavium server worker` of `d`; resolves once it takes jobs. */
export const startWorker = async (
  d: Deployment,
  options: { readonly args?: ReadonlyArray<string>; readonly env?: Readonly<Record<string, string>> } = {}
): Promise<CloudProcess> => {
  const p = spawnRelavium(["server", "worker", ...(options.args ?? [])], { ...d.env, ...options.env })
  await waitForOutput(p, /relavium server worker: taking jobs/)
  return p
}

export const apiClient =
  (url: string, token: string): ApiProcess["api"] =>
  async (method, path, body, options = {}) => {
    const headers: Record<string, string> = {}
    const bearer = options.token === undefined ? token : options.token
    if (bearer !== null) headers.authorization = `Bearer ${bearer}`
    if (body !== undefined) headers["content-type"] = "application/json"
    const response = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = await response.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, json, text }
  }

const terminal = new Set(["run:completed", "run:failed", "run:cancelled"])

/** A minimal SSE reader over fetch: `id:`, `event:`, `data:` lines; comments ignored. */
export const sseClient =
  (url: string, token: string): ApiProcess["events"] =>
  async (runId, options = {}) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "text/event-stream" }
    if (options.lastEventId !== undefined) headers["last-event-id"] = String(options.lastEventId)
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), 30_000)
    const response = await fetch(`${url}/runs/${runId}/events`, { headers, signal: controller.signal })
    if (response.status === 204) {
      clearTimeout(timer)
      return []
    }
    if (response.status !== 200 || response.body === null) {
      clearTimeout(timer)
      throw new Error(`GET /runs/${runId}/events: ${response.status} ${await response.text()}`)
    }
    const received: Array<SseEvent> = []
    const decoder = new TextDecoder()
    let buffer = ""
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const fields: Record<string, string> = {}
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue
            const colon = line.indexOf(":")
            if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart()
          }
          if (fields.data === undefined || fields.event === undefined) continue
          const event: SseEvent = { id: Number(fields.id), type: fields.event, data: JSON.parse(fields.data) }
          received.push(event)
          if (terminal.has(event.type) || options.until?.(event) === true) return received
        }
      }
      return received
    } finally {
      clearTimeout(timer)
      controller.abort()
    }
  }

/** Polls `probe` until it returns a value. */
export const waitFor = async <A>(probe: () => Promise<A | undefined>, what: string, timeoutMs = 15_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

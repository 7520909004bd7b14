/**
 * The leak scanner: given every secret a test configured (provider keys, the
 * master key in each encoding it was given, bearer and org tokens), it
 * searches the places the product promises to keep clean and returns located
 * findings — which surface, where in it, which secret by name and in which
 * encoding. The secret itself is never part of a finding, so an assertion
 * message built from findings never prints it.
 *
 * Surfaces: a Postgres database (every column of every table, cast to text),
 * a SQLite file, Redis (BullMQ job hashes field by field, and every other key
 * under the given patterns: streams, lists, sets, strings), HTTP responses
 * (bodies and headers, SSE streams included, through {@link recordFetch}),
 * events (any JSON value, located by path) and process output.
 *
 * A secret matches as an exact substring and as its base64 (at any byte
 * alignment, so inside a longer encoded value too), base64url, hex (either
 * case) and URL-encoded forms. See docs/security/leaks.md.
 */
import { createRequire } from "node:module"
import { Redis } from "ioredis"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Redacted } from "effect"

/** The part of better-sqlite3 (which ships no types) the scanner and its test use. */
export interface SqliteDatabase {
  readonly prepare: (sql: string) => { readonly all: () => Array<unknown>; readonly run: (...params: Array<unknown>) => unknown }
  readonly exec: (sql: string) => void
  readonly close: () => void
}
export const openSqlite: (file: string, options?: { readonly readonly?: boolean; readonly fileMustExist?: boolean }) => SqliteDatabase = (() => {
  const Database = createRequire(import.meta.url)("better-sqlite3") as new (file: string, options?: object) => SqliteDatabase
  return (file, options) => new Database(file, options)
})()

// ---------------------------------------------------------------------------
// Secrets and their encodings
// ---------------------------------------------------------------------------

/** A secret the test configured: a name to report and the forms it was given in (text or bytes). */
export interface Secret {
  readonly name: string
  readonly forms: ReadonlyArray<string | Uint8Array>
}

export type Surface = "postgres" | "sqlite" | "redis" | "yaml" | "http" | "sse" | "events" | "logs"

export interface Finding {
  readonly surface: Surface
  /** Where in the surface: a table, column and row; a Redis key and field; a URL and header; a JSON path; a process. */
  readonly where: string
  /** The secret's name (never its value). */
  readonly secret: string
  /** How it appeared: raw, base64, base64url, hex, url-encoded. */
  readonly encoding: string
}

/** One string searched for: a form of a secret in one encoding. */
interface Needle {
  readonly secret: string
  readonly encoding: string
  readonly text: string
  /** Compared case-insensitively (hex). */
  readonly folded: boolean
}

/** A secret given as text (a provider key, a token). */
export const textSecret = (name: string, value: string): Secret => ({ name, forms: [value] })

/**
 * A master key as `RELAVIUM_MASTER_KEY` takes it: the text given (base64, base64url or hex of 32
 * bytes) and the bytes themselves, so every other encoding of the same key is searched as well.
 */
export const masterKeySecret = (name: string, ...given: ReadonlyArray<string>): Secret => {
  const forms: Array<string | Uint8Array> = [...given]
  for (const text of given) {
    const bytes = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, "hex") : Buffer.from(text.replaceAll("-", "+").replaceAll("_", "/"), "base64")
    if (bytes.length === 32) forms.push(new Uint8Array(bytes))
  }
  return { name, forms }
}

const MIN_NEEDLE = 12

/**
 * The base64 characters that depend only on `bytes`, for each of the 3 alignments `bytes` can have
 * inside a longer encoded value (a secret in a JSON payload that was base64-encoded as a whole).
 */
const base64Aligned = (bytes: Buffer): Array<string> =>
  [0, 1, 2].map((k) => {
    const encoded = Buffer.concat([Buffer.alloc(k), bytes]).toString("base64").replace(/=+$/, "")
    const first = Math.ceil((8 * k) / 6)
    const last = Math.floor((8 * (k + bytes.length)) / 6) // chars [first, last) carry only bits of `bytes`
    return encoded.slice(first, last)
  })

const needlesOf = (secrets: ReadonlyArray<Secret>): Array<Needle> => {
  const needles: Array<Needle> = []
  const add = (secret: string, encoding: string, text: string, folded = false) => {
    if (text.length < MIN_NEEDLE) return
    const key = folded ? text.toLowerCase() : text
    if (needles.some((n) => n.secret === secret && n.text === key)) return
    needles.push({ secret, encoding, text: key, folded })
  }
  // The most direct encodings first: a place holding a secret is reported once, in the first that matches.
  const encoders: ReadonlyArray<(secret: Secret, form: string | Uint8Array, bytes: Buffer) => void> = [
    (s, form) => typeof form === "string" && add(s.name, "raw", form),
    (s, form) => typeof form === "string" && add(s.name, "url-encoded", encodeURIComponent(form)),
    (s, form) => typeof form === "string" && add(s.name, "json-escaped", JSON.stringify(form).slice(1, -1)),
    (s, _, bytes) => base64Aligned(bytes).forEach((b64) => add(s.name, "base64", b64)),
    (s, _, bytes) => base64Aligned(bytes).forEach((b64) => add(s.name, "base64url", b64.replaceAll("+", "-").replaceAll("/", "_"))),
    (s, _, bytes) => base64Aligned(bytes).forEach((b64) => add(s.name, "base64, url-encoded", encodeURIComponent(b64))),
    (s, _, bytes) => add(s.name, "hex", bytes.toString("hex"), true)
  ]
  for (const encode of encoders) {
    for (const secret of secrets) {
      for (const form of secret.forms) {
        const bytes = typeof form === "string" ? Buffer.from(form, "utf8") : Buffer.from(form)
        if (bytes.length < 8) throw new Error(`the secret ${secret.name} is too short to search for without false alarms`)
        encode(secret, form, bytes)
      }
    }
  }
  return needles
}

/** What to search for, built once from the secrets. */
export class LeakScanner {
  readonly needles: ReadonlyArray<Needle>
  constructor(readonly secrets: ReadonlyArray<Secret>) {
    if (secrets.length === 0) throw new Error("a leak scan needs the secrets to look for")
    this.needles = needlesOf(secrets)
  }

  /** Findings of `text` at `where` of `surface`: one per secret found, in the most direct encoding that matches. */
  text(surface: Surface, where: string, text: string): Array<Finding> {
    if (text.length < MIN_NEEDLE) return []
    let lower: string | undefined
    const found: Array<Finding> = []
    const seen = new Set<string>()
    for (const needle of this.needles) {
      const haystack = needle.folded ? (lower ??= text.toLowerCase()) : text
      if (!haystack.includes(needle.text)) continue
      if (seen.has(needle.secret)) continue
      seen.add(needle.secret)
      found.push({ surface, where: this.redact(where), secret: needle.secret, encoding: needle.encoding })
    }
    return found
  }

  /** `text` with every secret in it replaced by `<its name>`: a location built from a key or a path must not show one. */
  redact(text: string): string {
    let out = text
    for (const needle of this.needles) {
      if (needle.folded) out = out.replace(new RegExp(needle.text.replace(/[^0-9a-z]/g, "\\$&"), "gi"), `<${needle.secret}>`)
      else out = out.replaceAll(needle.text, `<${needle.secret}>`)
    }
    return out
  }

  /** Findings in any JSON-like value (events, a response's JSON), each located by its path under `where`. */
  value(surface: Surface, where: string, value: unknown): Array<Finding> {
    const found: Array<Finding> = []
    const walk = (v: unknown, path: string) => {
      if (typeof v === "string") found.push(...this.text(surface, path, v))
      else if (Array.isArray(v)) v.forEach((item, i) => walk(item, `${path}[${i}]`))
      else if (v !== null && typeof v === "object") {
        for (const [k, item] of Object.entries(v)) {
          found.push(...this.text(surface, `${path} (a key)`, k))
          walk(item, `${path}.${k}`)
        }
      } else if (v !== null && v !== undefined) found.push(...this.text(surface, path, String(v)))
    }
    walk(value, where)
    return found
  }

  /** Findings in processes' output (stdout and stderr), by process name. */
  logs(processes: Readonly<Record<string, string>>): Array<Finding> {
    return Object.entries(processes).flatMap(([name, output]) =>
      output.split("\n").flatMap((line, i) => this.text("logs", `${name} line ${i + 1}`, line))
    )
  }

  /**
   * Findings in recorded HTTP exchanges: every response's status line, headers and body (waiting,
   * a bounded while, for bodies still arriving; a stream still open is scanned as far as it came).
   */
  async http(recorder: FetchRecorder): Promise<Array<Finding>> {
    await recorder.settled()
    return recorder.exchanges.flatMap((x) => {
      const at = `${x.method} ${x.url} → ${x.status}`
      const surface: Surface = x.sse ? "sse" : "http"
      return [
        ...x.headers.flatMap(([name, value]) => this.text("http", `${at} header ${name}`, value)),
        ...this.text(surface, `${at} body`, x.body)
      ]
    })
  }

  /**
   * Findings in every table of a Postgres database (schemas other than the system ones), read
   * through information_schema, every column cast to text; `except` lists `table.column`s that hold
   * ciphertext by design.
   */
  async postgres(databaseUrl: string, except: ReadonlySet<string> = ENCRYPTED_COLUMNS): Promise<PostgresScan> {
    return Effect.runPromise(
      Effect.scoped(
        Effect.gen(this, function* () {
          const sql = yield* PgClient.make({ url: Redacted.make(databaseUrl), connectTimeout: Duration.seconds(5) })
          const columns = yield* sql.unsafe<{ table_schema: string; table_name: string; column_name: string }>(
            `SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c
               JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
              WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
              ORDER BY c.table_schema, c.table_name, c.ordinal_position`
          )
          const tables = new Map<string, Array<string>>()
          const skipped: Array<string> = []
          for (const c of columns) {
            const table = c.table_schema === "public" ? c.table_name : `${c.table_schema}.${c.table_name}`
            if (except.has(`${table}.${c.column_name}`)) {
              skipped.push(`${table}.${c.column_name}`)
              continue
            }
            const list = tables.get(`${quote(c.table_schema)}.${quote(c.table_name)}\u0000${table}`) ?? []
            list.push(c.column_name)
            tables.set(`${quote(c.table_schema)}.${quote(c.table_name)}\u0000${table}`, list)
          }
          const findings: Array<Finding> = []
          const rowsByTable: Record<string, number> = {}
          for (const [key, cols] of tables) {
            const [qualified, table] = key.split("\u0000") as [string, string]
            const select = cols.map((c, i) => `${quote(c)}::text AS c${i}`).join(", ")
            const rows = yield* sql.unsafe<Record<string, string | null>>(`SELECT ctid::text AS row, ${select} FROM ${qualified}`)
            rowsByTable[table] = rows.length
            for (const row of rows) {
              cols.forEach((c, i) => {
                const value = row[`c${i}`]
                if (value !== null && value !== undefined) findings.push(...this.text("postgres", `${table}.${c} (row ${row.row})`, value))
              })
            }
          }
          return { findings, rowsByTable, skipped }
        })
      ).pipe(Effect.provide(Reactivity.layer))
    )
  }

  /** Findings in every table of a SQLite file (text as is, blobs as text and as hex). */
  sqlite(file: string, except: ReadonlySet<string> = ENCRYPTED_COLUMNS): { readonly findings: Array<Finding>; readonly rowsByTable: Record<string, number> } {
    const db = openSqlite(file, { readonly: true, fileMustExist: true })
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>
      const findings: Array<Finding> = []
      const rowsByTable: Record<string, number> = {}
      for (const { name } of tables) {
        const rows = db.prepare(`SELECT rowid AS __rowid, * FROM ${quote(name)}`).all() as Array<Record<string, unknown>>
        rowsByTable[name] = rows.length
        for (const row of rows) {
          for (const [column, value] of Object.entries(row)) {
            if (column === "__rowid" || value === null || except.has(`${name}.${column}`)) continue
            const where = `${name}.${column} (rowid ${String(row.__rowid)})`
            if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
              const bytes = Buffer.from(value)
              findings.push(...this.text("sqlite", where, bytes.toString("latin1")), ...this.text("sqlite", where, bytes.toString("hex")))
            } else findings.push(...this.text("sqlite", where, String(value)))
          }
        }
      }
      return { findings, rowsByTable }
    } finally {
      db.close()
    }
  }

  /**
   * Findings in Redis under each of `patterns` (SCAN MATCH patterns): a hash field by field (a
   * BullMQ job's `data` and `opts` among them), lists, sets, sorted sets, strings and stream
   * entries; key names too.
   */
  async redis(redisUrl: string, patterns: ReadonlyArray<string>): Promise<RedisScan> {
    const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
    const findings: Array<Finding> = []
    let keys = 0
    let jobs = 0
    try {
      for (const pattern of patterns) {
        let cursor = "0"
        do {
          const [next, batch] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000)
          cursor = next
          for (const key of batch) {
            keys++
            findings.push(...this.text("redis", `key name ${key}`, key))
            const at = (part: string, text: string) => findings.push(...this.text("redis", `${key} ${part}`, text))
            switch (await client.type(key)) {
              case "hash": {
                const fields = await client.hgetall(key)
                if ("data" in fields && "opts" in fields) jobs++
                for (const [field, value] of Object.entries(fields)) at(`field ${field}`, `${field}\n${value}`)
                break
              }
              case "list":
                (await client.lrange(key, 0, -1)).forEach((v, i) => at(`item ${i}`, v))
                break
              case "set":
                for (const v of await client.smembers(key)) at("member", v)
                break
              case "zset":
                for (const v of await client.zrange(key, 0, -1)) at("member", v)
                break
              case "string":
                at("value", (await client.get(key)) ?? "")
                break
              case "stream":
                for (const [id, fields] of await client.xrange(key, "-", "+")) at(`entry ${id}`, fields.join("\n"))
                break
            }
          }
        } while (cursor !== "0")
      }
    } finally {
      client.disconnect()
    }
    return { findings, keys, jobs }
  }
}

export interface PostgresScan {
  readonly findings: Array<Finding>
  /** How many rows each table had: what the scan read. */
  readonly rowsByTable: Record<string, number>
  /** The encrypted columns it did not read. */
  readonly skipped: Array<string>
}

export interface RedisScan {
  readonly findings: Array<Finding>
  readonly keys: number
  /** Hashes with `data` and `opts`: BullMQ jobs. */
  readonly jobs: number
}

/** Columns that hold ciphertext by design (AES-256-GCM provider keys and wrapped data keys), not scanned. */
export const ENCRYPTED_COLUMNS: ReadonlySet<string> = new Set([
  "provider_keys.ciphertext",
  "provider_keys.nonce",
  "org_data_keys.wrapped",
  "org_data_keys.nonce"
])

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`

/** Findings as lines for an assertion message: surface, where, secret name, encoding — never a secret. */
export const describeFindings = (findings: ReadonlyArray<Finding>): string =>
  findings.length === 0
    ? "no leaks"
    : `${findings.length} leak(s):\n` + findings.map((f) => `  [${f.surface}] ${f.where}: ${f.secret} (${f.encoding})`).join("\n")

// ---------------------------------------------------------------------------
// Recording HTTP responses
// ---------------------------------------------------------------------------

export interface Exchange {
  readonly method: string
  readonly url: string
  readonly status: number
  readonly headers: ReadonlyArray<readonly [string, string]>
  /** The body as the caller read it (an SSE stream up to where its reader stopped). */
  body: string
  readonly sse: boolean
  /** Whether the body was read to its end, or the caller stopped reading it. */
  done: boolean
}

export interface FetchRecorder {
  /** `fetch` recording every response; the caller reads the body as usual. */
  readonly fetch: typeof fetch
  readonly exchanges: Array<Exchange>
  /**
   * Waits until the caller has read or left every recorded body, for at most `maxWaitMs`; the
   * exchanges still open then.
   */
  readonly settled: (maxWaitMs?: number) => Promise<ReadonlyArray<Exchange>>
}

/**
 * Wraps `base` (default: the global fetch) so every response's headers and body are recorded. The
 * body is recorded as the caller reads it (the caller gets a pass-through stream), so a reader
 * that stops early — an SSE client at the terminal event — closes the connection as it would
 * without the recorder, and the recording holds exactly what the caller received.
 */
export const recordFetch = (base: typeof fetch = globalThis.fetch): FetchRecorder => {
  const exchanges: Array<Exchange> = []
  const ends: Array<Promise<void>> = []
  const recorded: typeof fetch = async (input, init) => {
    const response = await base(input, init)
    const request = input instanceof Request ? input : undefined
    const exchange: Exchange = {
      method: (init?.method ?? request?.method ?? "GET").toUpperCase(),
      url: typeof input === "string" ? input : input instanceof URL ? input.href : input.url,
      status: response.status,
      headers: [...response.headers.entries()],
      body: "",
      sse: (response.headers.get("content-type") ?? "").includes("text/event-stream"),
      done: response.body === null
    }
    exchanges.push(exchange)
    if (response.body === null) return response
    const reader = response.body.getReader()
    const decoder = new TextDecoder()
    let ended!: () => void
    ends.push(new Promise<void>((resolve) => (ended = resolve)))
    const end = () => {
      exchange.done = true
      ended()
    }
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const { done, value } = await reader.read()
          if (done) {
            end()
            controller.close()
            return
          }
          exchange.body += decoder.decode(value, { stream: true })
          controller.enqueue(value)
        } catch (error) {
          // The caller aborted the request: keep what arrived.
          end()
          controller.error(error)
        }
      },
      cancel: (reason) => {
        end()
        return reader.cancel(reason)
      }
    })
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
  }
  const settled = async (maxWaitMs = 15_000) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([Promise.all(ends), new Promise((resolve) => (timer = setTimeout(resolve, maxWaitMs)))])
    clearTimeout(timer)
    return exchanges.filter((x) => !x.done)
  }
  return { fetch: recorded, exchanges, settled }
}

/**
 * The leak scanner finds what it is for: each kind of secret planted in each
 * surface (a Postgres row, a SQLite row, a Redis job and stream, an HTTP
 * response and its headers, an SSE stream, an event, a log line), raw and
 * encoded, is found and located — and a clean surface, or the encrypted
 * columns, give nothing. A scan that finds nothing proves something only
 * because of this test.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { randomBytes } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createDatabase, deleteRedisKeys, dropDatabase, redisUrl, withRedis } from "../support/cloud.js"
import { queryDatabase } from "../support/distributed.js"
import { describeFindings, LeakScanner, masterKeySecret, openSqlite, recordFetch, textSecret } from "../support/leaks.js"

const providerKey = `sk-ant-api03-${randomBytes(18).toString("hex")}`
// Its first bytes encode as "+/+/" in base64 ("-_-_" in base64url), so the two encodings differ.
const masterBytes = Buffer.concat([Buffer.from([0xfb, 0xff, 0xbf]), randomBytes(29)])
const masterBase64 = masterBytes.toString("base64")
// With characters URL-encoding changes.
const token = `rlv/org+${randomBytes(12).toString("hex")}=`
const scanner = new LeakScanner([
  textSecret("anthropic key", providerKey),
  masterKeySecret("master key", masterBase64),
  textSecret("org token", token)
])
const values = [providerKey, masterBase64, token]

/** `text` base64-encoded inside a longer value, at byte offset `offset`. */
const embeddedBase64 = (text: string | Buffer, offset: number) =>
  Buffer.concat([randomBytes(offset), Buffer.from(`{"k":"`), Buffer.from(text), Buffer.from(`"}`)]).toString("base64")

const noSecretIn = (message: string) => {
  for (const value of values) expect(message.includes(value)).toBe(false)
}

describe("the leak scanner finds planted secrets", () => {
  it("in text, raw and in every encoding (base64 at each alignment, base64url, hex in either case, URL-encoded)", () => {
    const found = (text: string) => scanner.text("logs", "line", text).map((f) => `${f.secret}/${f.encoding}`)
    expect(found(`key=${providerKey}`)).toEqual(["anthropic key/raw"])
    expect(found(`Authorization: Bearer ${token}`)).toEqual(["org token/raw"])
    for (const offset of [0, 1, 2, 3]) expect(found(embeddedBase64(providerKey, offset))).toContain("anthropic key/base64")
    expect(found(Buffer.from(`xx${token}`).toString("base64url"))).toEqual([expect.stringMatching(/^org token\/base64(url)?$/)])
    expect(found(Buffer.from(providerKey).toString("hex").toUpperCase())).toEqual(["anthropic key/hex"])
    expect(found(`https://x.test/?k=${encodeURIComponent(masterBase64)}`)).toEqual(["master key/url-encoded"])
    expect(found(`a=${encodeURIComponent(token)}`)).toEqual(["org token/url-encoded"])
    // The master key's bytes in the encodings it was not given in.
    expect(found(masterBytes.toString("hex"))).toEqual(["master key/hex"])
    expect(found(`k=${masterBytes.toString("base64url")}`)).toEqual(["master key/base64url"])
    expect(found(embeddedBase64(masterBytes, 2))).toContain("master key/base64")
    // Near misses are not findings.
    expect(found(providerKey.slice(0, -1) + "!")).toEqual([])
    expect(found("sk-ant-api03-[redacted secret] and nothing else")).toEqual([])
  })

  it("in events and JSON, located by path; in log lines, by process and line", () => {
    const events = [
      { type: "run:started", sequenceNumber: 0, inputs: { prompt: "hello" } },
      { type: "agent:tool_result", sequenceNumber: 1, outputSummary: `export KEY=${providerKey}` },
      { type: "node:completed", sequenceNumber: 2, output: { [token]: [1, { deep: Buffer.from(providerKey).toString("base64") }] } }
    ]
    const findings = scanner.value("events", "run r1", events)
    expect(findings.map((f) => `${f.where} ${f.secret}/${f.encoding}`)).toEqual([
      "run r1[1].outputSummary anthropic key/raw",
      "run r1[2].output (a key) org token/raw",
      "run r1[2].output.<org token>[1].deep anthropic key/base64"
    ])
    const logs = scanner.logs({ api: "started\nlistening\n", worker: `taking jobs\nusing ${masterBase64}\n` })
    expect(logs.map((f) => `${f.where} ${f.secret}/${f.encoding}`)).toEqual(["worker line 2 master key/raw"])
    const message = describeFindings([...findings, ...logs])
    expect(message).toContain("[events] run r1[1].outputSummary: anthropic key (raw)")
    expect(message).toContain("[logs] worker line 2: master key (raw)")
    // A secret in a JSON key is named in the path, not shown.
    noSecretIn(message)
    expect(scanner.value("events", "clean", [{ type: "run:completed", outputs: { out: 5 } }])).toEqual([])
  })

  it("in HTTP responses (headers, bodies) and SSE streams, through the recording fetch", async () => {
    const server = http.createServer((req, res) => {
      if (req.url === "/header") res.writeHead(200, { "x-debug": `key ${encodeURIComponent(token)}` }).end("{}")
      else if (req.url === "/body") res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token }))
      else if (req.url === "/events") {
        res.writeHead(200, { "content-type": "text/event-stream" })
        res.write(`id: 0\nevent: run:started\ndata: {"ok":true}\n\n`)
        res.end(`id: 1\nevent: agent:token\ndata: {"token":"${Buffer.from(masterBytes).toString("hex")}"}\n\n`)
      } else res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}')
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const recorder = recordFetch()
      for (const path of ["/header", "/body", "/events", "/clean"]) {
        const response = await recorder.fetch(`${base}${path}`)
        await response.text() // the caller still reads its body
      }
      const findings = await scanner.http(recorder)
      expect(recorder.exchanges).toHaveLength(4)
      expect(await recorder.settled(), "every body read to its end").toEqual([])
      expect(recorder.exchanges.find((x) => x.url.endsWith("/events"))!.body).toContain("event: agent:token")
      expect(findings.map((f) => `${f.surface} ${f.where.replace(base, "")} ${f.secret}/${f.encoding}`)).toEqual([
        "http GET /header → 200 header x-debug org token/url-encoded",
        "http GET /body → 200 body org token/raw",
        "sse GET /events → 200 body master key/hex"
      ])
    } finally {
      server.close()
    }
  })

  describe("at rest", () => {
    let database: { readonly name: string; readonly url: string }
    const dir = mkdtempSync(join(tmpdir(), "relavium-leak-scanner-"))
    beforeAll(async () => {
      database = await createDatabase("leakscan")
    })
    afterAll(async () => {
      await dropDatabase(database.name)
      rmSync(dir, { recursive: true, force: true })
    })

    it("in every column of every Postgres table (jsonb, text, bytea, another schema), but not the encrypted columns", async () => {
      const q = (s: string) => queryDatabase(database.url, s)
      await q(`CREATE TABLE run_events (run_id text, seq int, payload jsonb)`)
      await q(`CREATE TABLE provider_keys (org_id text, provider text, nonce text, ciphertext text)`)
      await q(`CREATE TABLE blobs (id int, body bytea)`)
      await q(`CREATE SCHEMA audit`)
      await q(`CREATE TABLE audit.log (id int, detail text)`)
      await q(`INSERT INTO run_events VALUES ('r1', 0, '{"type":"run:started"}'), ('r1', 1, '{"type":"x","out":"${providerKey}"}')`)
      // Ciphertext columns are skipped by design: a secret there (it is not) would not be reported.
      await q(`INSERT INTO provider_keys VALUES ('default', 'anthropic', '${token}', '${providerKey}')`)
      await q(`INSERT INTO blobs VALUES (1, decode('${masterBytes.toString("hex")}', 'hex'))`)
      await q(`INSERT INTO audit.log VALUES (1, 'a=${encodeURIComponent(token)}'), (2, 'clean')`)

      const scan = await scanner.postgres(database.url)
      expect(scan.rowsByTable).toEqual({ "audit.log": 2, blobs: 1, provider_keys: 1, run_events: 2 })
      expect(scan.skipped.sort()).toEqual(["provider_keys.ciphertext", "provider_keys.nonce"])
      expect(scan.findings.map((f) => `${f.where.replace(/ \(row .*\)/, "")} ${f.secret}/${f.encoding}`).sort()).toEqual([
        "audit.log.detail org token/url-encoded",
        "blobs.body master key/hex",
        "run_events.payload anthropic key/raw"
      ])
      expect(scan.findings.every((f) => f.surface === "postgres" && /\(row \(\d+,\d+\)\)$/.test(f.where))).toBe(true)
      noSecretIn(describeFindings(scan.findings))
    })

    it("in every table of a SQLite file, text and blobs", () => {
      const file = join(dir, "relavium.db")
      const db = openSqlite(file)
      db.exec("CREATE TABLE runs (id TEXT, inputs TEXT); CREATE TABLE chat_events (chat_id TEXT, payload BLOB); CREATE TABLE provider_keys (ciphertext TEXT)")
      db.prepare("INSERT INTO runs VALUES (?, ?)").run("r1", JSON.stringify({ prompt: "hi" }))
      db.prepare("INSERT INTO runs VALUES (?, ?)").run("r2", JSON.stringify({ header: `Bearer ${token}` }))
      db.prepare("INSERT INTO chat_events VALUES (?, ?)").run("c1", Buffer.from(embeddedBase64(providerKey, 1)))
      db.prepare("INSERT INTO chat_events VALUES (?, ?)").run("c2", masterBytes)
      db.prepare("INSERT INTO provider_keys VALUES (?)").run(providerKey)
      db.close()
      const scan = scanner.sqlite(file)
      expect(scan.rowsByTable).toEqual({ runs: 2, chat_events: 2, provider_keys: 1 })
      expect(scan.findings.map((f) => `${f.where} ${f.secret}/${f.encoding}`)).toEqual([
        "runs.inputs (rowid 2) org token/raw",
        "chat_events.payload (rowid 1) anthropic key/base64",
        "chat_events.payload (rowid 2) master key/hex"
      ])
    })

    it("in Redis: BullMQ job hashes (data and opts), streams, lists and strings under the patterns", async () => {
      const prefix = `relavium-test-leakscan-${randomBytes(8).toString("hex")}`
      try {
        await withRedis(async (client) => {
          await client.hset(`${prefix}:node:1`, { name: "ExecuteNode", data: JSON.stringify({ _tag: "ExecuteNode", runId: "r1" }), opts: "{}" })
          await client.hset(`${prefix}:node:2`, { name: "ExecuteNode", data: JSON.stringify({ _tag: "ExecuteNode", apiKey: providerKey }), opts: "{}" })
          await client.hset(`${prefix}:node:3`, { name: "Advance", data: "{}", opts: JSON.stringify({ auth: masterBytes.toString("base64url") }) })
          await client.xadd(`${prefix}:run:r1`, "*", "e", JSON.stringify({ master: masterBytes.toString("hex") }))
          await client.rpush(`${prefix}:node:wait`, "1", "2", "3")
          await client.set(`${prefix}:meta`, "nothing secret here")
        })
        const scan = await scanner.redis(redisUrl, [`${prefix}:*`])
        expect(scan.keys).toBe(6)
        expect(scan.jobs).toBe(3)
        expect(scan.findings.map((f) => `${f.where.replace(prefix, "P").replace(/entry \S+/, "entry")} ${f.secret}/${f.encoding}`).sort()).toEqual([
          "P:node:2 field data anthropic key/raw",
          "P:node:3 field opts master key/base64url",
          "P:run:r1 entry master key/hex"
        ])
      } finally {
        await deleteRedisKeys(prefix)
      }
    })
  })

  it("refuses to scan for nothing, or for secrets too short to search for", () => {
    expect(() => new LeakScanner([])).toThrow(/needs the secrets/)
    expect(() => new LeakScanner([textSecret("pin", "1234")])).toThrow(/too short/)
  })
})

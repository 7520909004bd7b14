/**
 * Issue 14, finding 7: the HTTP API against abusive requests, over real HTTPS
 * on loopback. The token is checked before a body is read; bodies over 1 MiB
 * get 413, JSON nested deeper than 64 levels 400, clients that trickle their
 * headers or body 408 and a closed connection; `/openapi.json` and `/docs`
 * need the token; `POST /projects` refuses `/`, system directories, files,
 * directories of other users and directories outside the projects root. And
 * honest requests still work, `GET /models` included (issue 13: it lists the
 * user's prices.json).
 */
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ProjectDirs } from "@relavium/server"
import { connect, request, startServer, type TestServer } from "./support/server.js"

const REQUEST_TIMEOUT_MS = 1_500
const HEADERS_TIMEOUT_MS = 1_000

const workflow = `schema_version: "1.0"
workflow:
  id: hello
  nodes:
    - { id: start, type: input }
    - { id: greet, type: transform, transform: '"hello"' }
    - { id: result, type: output }
  edges:
    - { from: start, to: greet }
    - { from: greet, to: result }
`

const dirs: Array<string> = []
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(dir)
  return dir
}

let server: TestServer
let projectsRoot: string

beforeAll(async () => {
  const dataDir = join(tempDir("relavium-sec-http-"), "data")
  projectsRoot = tempDir("relavium-sec-projects-")
  const pricesFile = join(dataDir, "..", "prices.json")
  writeFileSync(
    pricesFile,
    JSON.stringify({
      prices: [
        { provider: "ollama", model: "llama3.1:8b", input_per_mtok_usd: 0.1, output_per_mtok_usd: 0.2 },
        // A shipped model: its shipped price wins, as in the engine.
        { provider: "anthropic", model: "claude-sonnet-4-5", input_per_mtok_usd: 0.01, output_per_mtok_usd: 0.01 }
      ]
    })
  )
  server = await startServer({
    dataDir,
    projectsRoot,
    pricesFile,
    timeouts: { requestTimeoutMs: REQUEST_TIMEOUT_MS, headersTimeoutMs: HEADERS_TIMEOUT_MS }
  })
}, 60_000)

afterAll(async () => {
  await server?.close()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe("HTTP security", () => {
  it("serves honest requests: health without a token, the API with it", async () => {
    expect((await request(server, "GET", "/health", { token: null })).status).toBe(200)
    expect((await request(server, "GET", "/runs")).status).toBe(200)
    const validated = await request(server, "POST", "/workflows/validate", { body: { yaml: workflow } })
    expect(validated.status, validated.text).toBe(200)
    expect(validated.json).toMatchObject({ valid: true, workflow: "hello", nodes: 3 })
    const uploaded = await request(server, "POST", "/workflows", { body: { yaml: workflow } })
    expect(uploaded.status, uploaded.text).toBe(201)
    // A body just under the limit is read and decoded.
    const large = await request(server, "POST", "/workflows/validate", { body: { yaml: `${workflow}#${"x".repeat(1_000_000)}\n` } })
    expect(large.status, large.text.slice(0, 200)).toBe(200)
    // Honest nesting (a few levels) is fine.
    const nested = await request(server, "POST", "/workflows/validate", { body: { yaml: workflow, file: "a.yaml" } })
    expect(nested.status).toBe(200)
  })

  it("answers an unauthenticated request with 401 before reading its body", async () => {
    const connection = await connect(server)
    // Announces 512 KiB (under the size limit) and sends only the start: a server that read the
    // body before checking the token would wait for the rest.
    connection.socket.write(
      `POST /workflows HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${512 * 1024}\r\n\r\n{"yaml":"`
    )
    const started = Date.now()
    const received = await connection.waitFor("\r\n\r\n", REQUEST_TIMEOUT_MS - 300)
    expect(received).toMatch(/^HTTP\/1\.1 401 /)
    expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS - 300)
    connection.socket.destroy()

    const wrong = await request(server, "POST", "/workflows", { body: { yaml: workflow }, token: `${server.token}x` })
    expect(wrong.status).toBe(401)
    expect(wrong.json).toEqual({ _tag: "Unauthorized", message: "missing or wrong bearer token (Authorization: Bearer <token>)" })
  })

  it("keeps /openapi.json and /docs behind the token", async () => {
    expect((await request(server, "GET", "/openapi.json", { token: null })).status).toBe(401)
    expect((await request(server, "GET", "/docs", { token: null })).status).toBe(401)
    expect((await request(server, "GET", "/openapi.json", { token: "wrong-token-wrong-token" })).status).toBe(401)
    const openapi = await request(server, "GET", "/openapi.json")
    expect(openapi.status).toBe(200)
    expect(Object.keys(openapi.json.paths)).toContain("/projects")
    expect((await request(server, "GET", "/docs")).status).toBe(200)
  })

  it("refuses a 2 MiB body with 413 and a message naming the limit", async () => {
    const before = (await request(server, "GET", "/workflows")).json
    const huge = await request(server, "POST", "/workflows", { body: { yaml: "x".repeat(2 * 1024 * 1024) } })
    expect(huge.status).toBe(413)
    expect(huge.json._tag).toBe("PayloadTooLarge")
    expect(huge.json.message).toContain("the limit is 1048576 bytes (1.0 MiB)")
    expect((await request(server, "GET", "/workflows")).json).toEqual(before)
  })

  it("refuses a body sent without a length (chunked) with 411, before reading it", async () => {
    const connection = await connect(server)
    connection.socket.write(
      `POST /workflows HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${server.token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`
    )
    const chunk = "x".repeat(64 * 1024)
    connection.socket.write(`1\r\n{\r\n`)
    for (let i = 0; i < 32 && connection.socket.writable; i++) {
      connection.socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)
    }
    const received = await connection.waitFor("\r\n\r\n", 5_000)
    expect(received).toMatch(/^HTTP\/1\.1 411 /)
    expect(received).toContain("send the request body with a Content-Length header (at most 1048576 bytes)")
    connection.socket.destroy()
  })

  it("refuses deeply nested JSON with 400 and a clear message, and keeps serving", async () => {
    for (const depth of [65, 3_000, 100_000]) {
      const deep = `{"yaml":"x","file":${"[".repeat(depth)}${"]".repeat(depth)}}`
      const reply = await request(server, "POST", "/workflows", { raw: deep })
      expect(reply.status, `${depth} levels`).toBe(400)
      expect(reply.json).toEqual({ _tag: "BadRequest", message: "the request body nests objects and arrays deeper than 64 levels" })
    }
    // Brackets inside strings are text, not nesting.
    const inString = await request(server, "POST", "/workflows/validate", { body: { yaml: workflow, file: "[".repeat(500) } })
    expect(inString.status, inString.text).toBe(200)
    expect((await request(server, "GET", "/health", { token: null })).status).toBe(200)
  })

  it("drops a client that trickles its body with 408", async () => {
    const connection = await connect(server)
    connection.socket.write(
      `POST /workflows HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${server.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`
    )
    const trickle = setInterval(() => connection.socket.writable && connection.socket.write(" "), 100)
    try {
      const elapsed = await Promise.race([
        connection.closed,
        new Promise<number>((_, fail) => setTimeout(() => fail(new Error("the connection is still open")), REQUEST_TIMEOUT_MS * 3))
      ])
      expect(connection.received()).toMatch(/^HTTP\/1\.1 408 /)
      expect(elapsed).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100)
      expect(elapsed).toBeLessThan(REQUEST_TIMEOUT_MS * 2)
    } finally {
      clearInterval(trickle)
    }
  })

  it("drops a client that trickles its headers with 408", async () => {
    const connection = await connect(server)
    const header = `GET /runs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${server.token}\r\n`
    let i = 0
    const trickle = setInterval(() => connection.socket.writable && connection.socket.write(header[i++ % header.length]!), 50)
    try {
      const elapsed = await Promise.race([
        connection.closed,
        new Promise<number>((_, fail) => setTimeout(() => fail(new Error("the connection is still open")), HEADERS_TIMEOUT_MS * 4))
      ])
      expect(connection.received()).toMatch(/^HTTP\/1\.1 408 /)
      expect(elapsed).toBeLessThan(HEADERS_TIMEOUT_MS * 2)
    } finally {
      clearInterval(trickle)
    }
  })

  it("refuses /, system directories, files, other users' directories and directories outside the projects root", async () => {
    const outside = tempDir("relavium-sec-outside-")
    const file = join(projectsRoot, "notes.txt")
    writeFileSync(file, "x")
    for (const [dir, reason] of [
      ["/", "system or top-level directory"],
      ["/etc", "system or top-level directory"],
      ["/etc/ssl", "inside the system directory /etc"],
      ["/proc/self", "inside the system directory /proc"],
      ["/usr/bin", "inside the system directory /usr"],
      [file, "is not a directory"],
      [outside, "outside the server's projects root"]
    ] as const) {
      const reply = await request(server, "POST", "/projects", { body: { dir } })
      expect(reply.status, `${dir}: ${reply.text}`).toBe(400)
      expect(reply.json.message, dir).toContain(reason)
      expect(reply.json.issues[0]).toMatchObject({ path: "dir" })
    }
    const foreign = join(projectsRoot, "foreign")
    mkdirSync(foreign)
    if (process.getuid?.() === 0) {
      chownSync(foreign, 65534, 65534)
      const reply = await request(server, "POST", "/projects", { body: { dir: foreign } })
      expect(reply.status, reply.text).toBe(400)
      expect(reply.json.message).toContain("belongs to another user (uid 65534)")
    } else {
      const checked = ProjectDirs.checkProjectDirectory(foreign, { uid: (process.getuid?.() ?? 0) + 1 })
      expect(checked).toMatchObject({ _tag: "Refused", message: expect.stringContaining("belongs to another user") })
    }
    expect((await request(server, "GET", "/projects")).json).toEqual([])

    const mine = join(projectsRoot, "mine")
    mkdirSync(mine)
    const created = await request(server, "POST", "/projects", { body: { dir: mine } })
    expect(created.status, created.text).toBe(201)
    expect(created.json.rootPath).toBe(mine)
  })

  it("lists the user's prices.json in GET /models, marking where each price comes from", async () => {
    const models = await request(server, "GET", "/models")
    expect(models.status, models.text).toBe(200)
    const rows = models.json as Array<{ provider: string; model: string; source: string; inputPerMTokUsd: number; contextWindowTokens: number | null }>
    expect(rows.find((r) => r.provider === "ollama" && r.model === "llama3.1:8b")).toMatchObject({
      source: "user",
      inputPerMTokUsd: 0.1,
      outputPerMTokUsd: 0.2,
      contextWindowTokens: null
    })
    const sonnet = rows.filter((r) => r.provider === "anthropic" && r.model === "claude-sonnet-4-5")
    expect(sonnet).toHaveLength(1)
    expect(sonnet[0]!.source).toBe("shipped")
    expect(sonnet[0]!.inputPerMTokUsd).not.toBe(0.01)
    expect(rows.filter((r) => r.source === "shipped").length).toBeGreaterThan(5)
  })
})

/**
 * Issue 14, finding 8 (and issue 13's file modes): what a monolith writes in
 * its data directory is private to its user — the directory 0700, the
 * database and its WAL and shared-memory files, the token, the TLS key and
 * certificate 0600, also when an older version left them readable — and the
 * self-signed certificate is a leaf (CA:FALSE, serverAuth), valid at most a
 * year, for the host's names, and renewed within 30 days of expiry.
 */
import { Effect } from "effect"
import { createPrivateKey, X509Certificate } from "node:crypto"
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { Monolith } from "@relavium/server"
import { request, startServer } from "./support/server.js"

const dirs: Array<string> = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "relavium-sec-files-"))
  dirs.push(dir)
  return dir
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

const modeOf = (file: string) => (statSync(file).mode & 0o777).toString(8)

const DAY_MS = 24 * 60 * 60 * 1000
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1"

describe("data directory file modes", () => {
  it("creates the data directory 0700 and the database, its WAL, the token, key and certificate 0600", async () => {
    const dataDir = join(tempDir(), "nested", "data")
    const server = await startServer({ dataDir })
    try {
      // A write makes sure the WAL and shared-memory files exist.
      const uploaded = await request(server, "PUT", "/keys/openai", { body: { key: "sk-test-not-real" } })
      expect(uploaded.status, uploaded.text).toBe(204)
      expect((await request(server, "GET", "/runs")).status).toBe(200)
      expect(modeOf(dataDir)).toBe("700")
      for (const name of ["relavium.db", "relavium.db-wal", "relavium.db-shm", "monolith.token", "monolith-key.pem", "monolith-cert.pem", "monolith.lock"]) {
        expect(existsSync(join(dataDir, name)), name).toBe(true)
        expect(modeOf(join(dataDir, name)), name).toBe("600")
      }
    } finally {
      await server.close()
    }
  })

  it("tightens a data directory and files an older version left readable", async () => {
    const dataDir = join(tempDir(), "data")
    const first = await startServer({ dataDir })
    await first.close()
    chmodSync(dataDir, 0o755)
    for (const name of ["relavium.db", "monolith.token", "monolith-key.pem", "monolith-cert.pem"]) chmodSync(join(dataDir, name), 0o644)
    const second = await startServer({ dataDir })
    try {
      expect((await request(second, "GET", "/runs")).status).toBe(200)
      expect(modeOf(dataDir)).toBe("700")
      for (const name of ["relavium.db", "relavium.db-wal", "relavium.db-shm", "monolith.token", "monolith-key.pem", "monolith-cert.pem"]) {
        expect(modeOf(join(dataDir, name)), name).toBe("600")
      }
      // Same token and certificate as before: clients keep working.
      expect(second.token).toBe(first.token)
      expect(second.cert).toBe(first.cert)
    } finally {
      await second.close()
    }
  })
})

describe("the self-signed certificate", () => {
  it("is a leaf certificate for serverAuth, valid at most a year, for localhost, the host name, 127.0.0.1 and ::1", async () => {
    const dataDir = tempDir()
    const tls = await Effect.runPromise(Monolith.ensureCertificate(dataDir, "127.0.0.1"))
    const cert = new X509Certificate(tls.cert)
    expect(cert.ca).toBe(false)
    expect(cert.keyUsage).toEqual([SERVER_AUTH])
    const validFor = new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime()
    expect(validFor).toBeLessThanOrEqual(366 * DAY_MS)
    expect(validFor).toBeGreaterThan(300 * DAY_MS)
    expect(cert.checkHost("localhost")).toBe("localhost")
    expect(cert.checkHost(hostname())).toBe(hostname())
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1")
    expect(cert.checkIP("::1")).toBe("::1")
    // Signed by its own key, and the key on disk is the certificate's.
    expect(cert.verify(cert.publicKey)).toBe(true)
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(Monolith.keyFile(dataDir), "utf8")))).toBe(true)
    expect(modeOf(Monolith.keyFile(dataDir))).toBe("600")
  })

  it("is reused while it is good and renewed within 30 days of expiry", async () => {
    const dataDir = tempDir()
    const now = new Date()
    const original = await Effect.runPromise(Monolith.ensureCertificate(dataDir, "127.0.0.1", now))
    const later = (days: number) => new Date(now.getTime() + days * DAY_MS)
    const reused = await Effect.runPromise(Monolith.ensureCertificate(dataDir, "127.0.0.1", later(300)))
    expect(reused.cert).toBe(original.cert)
    const renewed = await Effect.runPromise(Monolith.ensureCertificate(dataDir, "127.0.0.1", later(340)))
    expect(renewed.cert).not.toBe(original.cert)
    const cert = new X509Certificate(renewed.cert)
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(later(340 + 364).getTime())
    expect(readFileSync(Monolith.certFile(dataDir), "utf8")).toBe(renewed.cert)
    expect(modeOf(Monolith.keyFile(dataDir))).toBe("600")
    // A new listening address that the certificate does not name gets a new certificate too.
    const otherHost = await Effect.runPromise(Monolith.ensureCertificate(dataDir, "relavium.test", later(340)))
    expect(otherHost.cert).not.toBe(renewed.cert)
    expect(new X509Certificate(otherHost.cert).checkHost("relavium.test")).toBe("relavium.test")
  })
})

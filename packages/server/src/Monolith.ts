/**
 * What a monolith keeps in its data directory: an exclusive lock (one
 * monolith per directory), the bearer token (`monolith.token`, 0600) and the
 * self-signed TLS certificate (`monolith-cert.pem` and `monolith-key.pem`,
 * 0600), each created on first start and reused after (the certificate until it
 * nears expiry), all in a 0700 directory; and the HTTPS server over them.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Data, Effect, Redacted } from "effect"
import { randomBytes, X509Certificate } from "node:crypto"
import { chmodSync, closeSync, existsSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from "node:fs"
import type * as Http from "node:http"
import { createServer } from "node:https"
import { isIP } from "node:net"
import { hostname } from "node:os"
import { join } from "node:path"
import * as selfsigned from "selfsigned"
import { Database } from "@relavium/store"
import { generateToken } from "./Auth.js"
import { nodeServerOptions, type ServerTimeouts } from "./HttpGuard.js"

export class MonolithError extends Data.TaggedError("MonolithError")<{ readonly message: string }> {}

export const lockFile = (dataDir: string) => join(dataDir, "monolith.lock")
export const tokenFile = (dataDir: string) => join(dataDir, "monolith.token")
export const certFile = (dataDir: string) => join(dataDir, "monolith-cert.pem")
export const masterKeyFile = (dataDir: string) => join(dataDir, "monolith-master.key")
export const keyFile = (dataDir: string) => join(dataDir, "monolith-key.pem")

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const readPid = (file: string): number | undefined => {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8").trim(), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** The data directory, created 0700 (or tightened to 0700): it holds the token, the key, the database and run data. */
export const ensurePrivateDirectory = Database.ensurePrivateDirectory

/**
 * Holds `<dataDir>/monolith.lock` (created exclusively, holding our PID) for the scope. A lock whose
 * PID is no longer running is stale (the holder was killed) and is taken over.
 */
export const lock = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        ensurePrivateDirectory(dataDir)
        const file = lockFile(dataDir)
        for (let attempt = 0; attempt < 3; attempt++) {
          try {
            const fd = openSync(file, "wx", 0o600)
            writeSync(fd, `${process.pid}\n`)
            closeSync(fd)
            return file
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
            const holder = readPid(file)
            if (holder !== undefined && holder !== process.pid && alive(holder)) {
              throw new MonolithError({
                message: `another relavium monolith (pid ${holder}) is using the data directory ${dataDir}; stop it first, or pass another --data-dir`
              })
            }
            // Stale (its process is gone) or half-written: remove it and try again.
            try {
              unlinkSync(file)
            } catch {
              // Someone else removed it first; the next exclusive create decides.
            }
          }
        }
        throw new MonolithError({ message: `could not take the lock ${file}` })
      },
      catch: (e) => (e instanceof MonolithError ? e : new MonolithError({ message: `cannot lock ${dataDir}: ${String(e)}` }))
    }),
    (file) =>
      Effect.sync(() => {
        if (readPid(file) === process.pid) {
          try {
            unlinkSync(file)
          } catch {
            // Already gone.
          }
        }
      })
  )

/** The bearer token of `<dataDir>/monolith.token`, generated (mode 0600) when missing. */
export const ensureToken = (dataDir: string) =>
  Effect.try({
    try: () => {
      const file = tokenFile(dataDir)
      if (existsSync(file)) {
        const token = readFileSync(file, "utf8").trim()
        if (token.length >= 16) {
          chmodSync(file, 0o600)
          return Redacted.make(token)
        }
      }
      const token = generateToken()
      writeFileSync(file, `${Redacted.value(token)}\n`, { mode: 0o600 })
      chmodSync(file, 0o600)
      return token
    },
    catch: (e) => new MonolithError({ message: `cannot read or create the token file in ${dataDir}: ${String(e)}` })
  })

/**
 * The master key of `<dataDir>/monolith-master.key` (32 random bytes in base64, 0600), generated
 * when missing: it wraps the org's data key that seals webhook secrets (docs/triggers.md), as
 * `RELAVIUM_MASTER_KEY` does in the cloud.
 */
export const ensureMasterKey = (dataDir: string) =>
  Effect.try({
    try: () => {
      const file = masterKeyFile(dataDir)
      if (existsSync(file)) {
        const key = readFileSync(file, "utf8").trim()
        if (key.length >= 43) {
          chmodSync(file, 0o600)
          return Redacted.make(key)
        }
      }
      const key = randomBytes(32).toString("base64")
      writeFileSync(file, `${key}\n`, { mode: 0o600 })
      chmodSync(file, 0o600)
      return Redacted.make(key)
    },
    catch: (e) => new MonolithError({ message: `cannot read or create the master key file in ${dataDir}: ${String(e)}` })
  })

export interface TlsMaterial {
  readonly cert: string
  readonly key: Redacted.Redacted<string>
}

/** A certificate is renewed when it expires within this many days. */
export const CERTIFICATE_RENEW_DAYS = 30
/** How long a new certificate is valid. */
export const CERTIFICATE_VALID_DAYS = 365

const DAY_MS = 24 * 60 * 60 * 1000

/** Why the stored certificate must be replaced, or undefined when it is still good for `names`. */
const replacementReason = (pem: string, names: ReadonlyArray<string>, now: Date): string | undefined => {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(pem)
  } catch {
    return "unreadable"
  }
  if (cert.ca) return "a CA certificate"
  if (new Date(cert.validTo).getTime() - now.getTime() < CERTIFICATE_RENEW_DAYS * DAY_MS) return "expiring"
  const sans = (cert.subjectAltName ?? "").split(",").map((s) => s.trim())
  const missing = names.find((n) => !sans.includes(isIP(n) !== 0 ? `IP Address:${canonicalIp(n)}` : `DNS:${n}`))
  return missing === undefined ? undefined : `not valid for ${missing}`
}

/** How node:crypto prints an IP in subjectAltName (IPv6 in full, upper case). */
const canonicalIp = (ip: string): string => {
  if (isIP(ip) !== 6) return ip
  const [head = "", tail = ""] = ip.split("::")
  const left = head === "" ? [] : head.split(":")
  const right = tail === "" ? [] : tail.split(":")
  const groups = ip.includes("::") ? [...left, ...Array(8 - left.length - right.length).fill("0"), ...right] : left
  return groups.map((g) => Number.parseInt(g, 16).toString(16).toUpperCase()).join(":")
}

/** Written whole to a temporary file (0600) and renamed, so a crash never leaves half a key. */
const writePrivate = (file: string, text: string) => {
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, text, { mode: 0o600 })
  chmodSync(tmp, 0o600)
  renameSync(tmp, file)
}

/**
 * The self-signed certificate of `<dataDir>`: a leaf certificate (`CA:FALSE`, serverAuth) for
 * `localhost`, the host name, 127.0.0.1, ::1 and `host`, valid a year. It is reused while it is
 * good (clients pin it) and replaced when it expires within 30 days, is a CA certificate (made by
 * an older version), or does not name `host`. Key and certificate are 0600.
 */
export const ensureCertificate = (dataDir: string, host: string, now: Date = new Date()) =>
  Effect.tryPromise({
    try: async (): Promise<TlsMaterial> => {
      const certPath = certFile(dataDir)
      const keyPath = keyFile(dataDir)
      const names = [...new Set(["localhost", hostname(), "127.0.0.1", "::1", host])].filter(
        (n) => n !== "0.0.0.0" && n !== "::" && n !== "" && !/\s/.test(n)
      )
      if (existsSync(certPath) && existsSync(keyPath)) {
        const cert = readFileSync(certPath, "utf8")
        if (replacementReason(cert, names, now) === undefined) {
          chmodSync(keyPath, 0o600)
          chmodSync(certPath, 0o600)
          return { cert, key: Redacted.make(readFileSync(keyPath, "utf8")) }
        }
      }
      const altNames = names.map((n) => (isIP(n) !== 0 ? { type: 7 as const, ip: n } : { type: 2 as const, value: n }))
      const notBefore = new Date(now.getTime() - 60_000)
      const notAfter = new Date(now.getTime() + CERTIFICATE_VALID_DAYS * DAY_MS)
      const generated = await selfsigned.generate([{ name: "commonName", value: "localhost" }, { name: "organizationName", value: "relavium monolith" }], {
        keyType: "ec",
        curve: "P-256",
        algorithm: "sha256",
        notBeforeDate: notBefore,
        notAfterDate: notAfter,
        extensions: [
          { name: "basicConstraints", cA: false, critical: true },
          { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
          { name: "extKeyUsage", serverAuth: true },
          { name: "subjectAltName", altNames }
        ]
      })
      writePrivate(keyPath, generated.private)
      writePrivate(certPath, generated.cert)
      return { cert: generated.cert, key: Redacted.make(generated.private) }
    },
    catch: (e) => new MonolithError({ message: `cannot create the TLS certificate in ${dataDir}: ${String(e)}` })
  })

/** An HTTPS `HttpServer` on `host:port` (port 0: any free port), dropping slow clients (see `nodeServerOptions`). */
export const layerHttps = (options: {
  readonly host: string
  readonly port: number
  readonly tls: TlsMaterial
  readonly timeouts?: ServerTimeouts | undefined
}) =>
  NodeHttpServer.layer(
    () =>
      createServer({
        cert: options.tls.cert,
        key: Redacted.value(options.tls.key),
        ...nodeServerOptions(options.timeouts)
      }) as unknown as Http.Server<typeof Http.IncomingMessage, typeof Http.ServerResponse>,
    { host: options.host, port: options.port }
  )

/** `https://host:port` of the server in context. */
export const serverUrl = Effect.map(HttpServer.HttpServer, (server) => {
  const address = server.address
  if (address._tag === "UnixAddress") return `unix:${address.path}`
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
  return `https://${host}:${address.port}`
})

/**
 * What a monolith keeps in its data directory: an exclusive lock (one
 * monolith per directory), the bearer token (`monolith.token`, 0600) and the
 * self-signed TLS certificate (`monolith-cert.pem`, key 0600), each created on
 * first start and reused after; and the HTTPS server over them.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Data, Effect, Redacted } from "effect"
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from "node:fs"
import type * as Http from "node:http"
import { createServer } from "node:https"
import { isIP } from "node:net"
import { join } from "node:path"
import * as selfsigned from "selfsigned"
import { generateToken } from "./Auth.js"

export class MonolithError extends Data.TaggedError("MonolithError")<{ readonly message: string }> {}

export const lockFile = (dataDir: string) => join(dataDir, "monolith.lock")
export const tokenFile = (dataDir: string) => join(dataDir, "monolith.token")
export const certFile = (dataDir: string) => join(dataDir, "monolith-cert.pem")
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

/**
 * Holds `<dataDir>/monolith.lock` (created exclusively, holding our PID) for the scope. A lock whose
 * PID is no longer running is stale (the holder was killed) and is taken over.
 */
export const lock = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        mkdirSync(dataDir, { recursive: true })
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

export interface TlsMaterial {
  readonly cert: string
  readonly key: Redacted.Redacted<string>
}

/**
 * The self-signed certificate of `<dataDir>`, generated on first start for `localhost`, 127.0.0.1,
 * ::1 and `host`, valid ten years, and reused after (clients pin it).
 */
export const ensureCertificate = (dataDir: string, host: string) =>
  Effect.tryPromise({
    try: async (): Promise<TlsMaterial> => {
      const certPath = certFile(dataDir)
      const keyPath = keyFile(dataDir)
      if (existsSync(certPath) && existsSync(keyPath)) {
        return { cert: readFileSync(certPath, "utf8"), key: Redacted.make(readFileSync(keyPath, "utf8")) }
      }
      const names = new Set(["localhost", "127.0.0.1", "::1", host])
      const altNames = [...names]
        .filter((n) => n !== "0.0.0.0" && n !== "::" && n !== "")
        .map((n) => (isIP(n) !== 0 ? { type: 7 as const, ip: n } : { type: 2 as const, value: n }))
      const notAfter = new Date()
      notAfter.setFullYear(notAfter.getFullYear() + 10)
      const generated = await selfsigned.generate([{ name: "commonName", value: "relavium monolith" }], {
        keyType: "ec",
        curve: "P-256",
        algorithm: "sha256",
        notAfterDate: notAfter,
        extensions: [
          { name: "basicConstraints", cA: true },
          { name: "keyUsage", digitalSignature: true, keyCertSign: true },
          { name: "extKeyUsage", serverAuth: true },
          { name: "subjectAltName", altNames }
        ]
      })
      writeFileSync(keyPath, generated.private, { mode: 0o600 })
      chmodSync(keyPath, 0o600)
      writeFileSync(certPath, generated.cert, { mode: 0o644 })
      return { cert: generated.cert, key: Redacted.make(generated.private) }
    },
    catch: (e) => new MonolithError({ message: `cannot create the TLS certificate in ${dataDir}: ${String(e)}` })
  })

/** An HTTPS `HttpServer` on `host:port` (port 0: any free port). */
export const layerHttps = (options: { readonly host: string; readonly port: number; readonly tls: TlsMaterial }) =>
  NodeHttpServer.layer(
    () =>
      createServer({ cert: options.tls.cert, key: Redacted.value(options.tls.key) }) as unknown as Http.Server<
        typeof Http.IncomingMessage,
        typeof Http.ServerResponse
      >,
    { host: options.host, port: options.port }
  )

/** `https://host:port` of the server in context. */
export const serverUrl = Effect.map(HttpServer.HttpServer, (server) => {
  const address = server.address
  if (address._tag === "UnixAddress") return `unix:${address.path}`
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
  return `https://${host}:${address.port}`
})

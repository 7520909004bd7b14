/**
 * `http_request`'s egress guard: HTTPS only, the host exactly one of
 * `allowedDomains`, and every address the name resolves to public. The request
 * then goes to the address that was checked (no second lookup an attacker's
 * DNS could answer differently), with the name kept for TLS verification.
 */
import * as Dns from "node:dns/promises"
import * as Https from "node:https"
import * as Net from "node:net"
import { Effect } from "effect"
import { ToolError } from "@relavium/ports"

export interface ResolvedAddress {
  readonly address: string
  readonly family: 4 | 6
}

/** Name resolution, injectable so tests can answer without a network. */
export type HostResolver = (hostname: string) => Effect.Effect<ReadonlyArray<ResolvedAddress>, ToolError>

export interface EgressRequest {
  readonly url: URL
  readonly method: string
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string | undefined
  /** The checked address to connect to. */
  readonly address: ResolvedAddress
  readonly timeoutMs: number
  readonly maxBodyBytes: number
}

export interface EgressResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly truncated: boolean
}

/** The HTTPS transport, injectable for the same reason. */
export type HttpRequester = (request: EgressRequest) => Effect.Effect<EgressResponse, ToolError>

export const systemResolver: HostResolver = (hostname) =>
  Effect.tryPromise({
    try: () => Dns.lookup(hostname, { all: true, verbatim: true }),
    catch: (error) => new ToolError({ code: "tool_failed", message: `cannot resolve ${hostname}: ${String(error)}` })
  }).pipe(Effect.map((all) => all.map((a) => ({ address: a.address, family: a.family === 6 ? (6 as const) : (4 as const) }))))

const ipv4Blocks: ReadonlyArray<readonly [string, number, string]> = [
  ["0.0.0.0", 8, "unspecified"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "carrier-grade NAT"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "IETF protocol assignments"],
  ["192.0.2.0", 24, "documentation"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved"]
]
const ipv6Blocks: ReadonlyArray<readonly [string, number, string]> = [
  ["::", 128, "unspecified"],
  ["::1", 128, "loopback"],
  ["64:ff9b::", 96, "NAT64"],
  ["100::", 64, "discard"],
  ["2001:db8::", 32, "documentation"],
  ["fc00::", 7, "unique local (private)"],
  ["fe80::", 10, "link-local"],
  ["fec0::", 10, "site-local"],
  ["ff00::", 8, "multicast"]
]

const blockList = (() => {
  const list = new Net.BlockList()
  for (const [address, prefix] of ipv4Blocks) list.addSubnet(address, prefix, "ipv4")
  for (const [address, prefix] of ipv6Blocks) list.addSubnet(address, prefix, "ipv6")
  return list
})()

/** Why an address must not be reached, or undefined when it is public. */
export const forbiddenAddress = (address: string): string | undefined => {
  const family = Net.isIPv6(address) ? "ipv6" : Net.isIPv4(address) ? "ipv4" : undefined
  if (family === undefined) return "not an IP address"
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible addresses are judged as the IPv4 address they carry.
  const mapped = family === "ipv6" ? /^::(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] : undefined
  if (mapped !== undefined) return forbiddenAddress(mapped)
  if (family === "ipv6") {
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address)
    if (hex !== null) {
      const high = parseInt(hex[1]!, 16)
      const low = parseInt(hex[2]!, 16)
      return forbiddenAddress(`${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`)
    }
  }
  if (!blockList.check(address, family)) return undefined
  const blocks = family === "ipv4" ? ipv4Blocks : ipv6Blocks
  for (const [base, prefix, name] of blocks) {
    const single = new Net.BlockList()
    single.addSubnet(base, prefix, family)
    if (single.check(address, family)) return name
  }
  return "reserved"
}

export const nodeRequester: HttpRequester = (request) =>
  Effect.async<EgressResponse, ToolError>((resume, signal) => {
    const host = request.url.hostname.replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "")
    let settled = false
    const settle = (effect: Effect.Effect<EgressResponse, ToolError>) => {
      if (settled) return
      settled = true
      resume(effect)
    }
    const req = Https.request(
      request.url,
      {
        method: request.method,
        headers: request.headers,
        ...(Net.isIP(host) === 0 ? { servername: host } : {}),
        signal,
        timeout: request.timeoutMs,
        lookup: (_hostname, _options, callback) => {
          const cb = callback as unknown as (
            error: NodeJS.ErrnoException | null,
            address: string | Array<{ address: string; family: number }>,
            family?: number
          ) => void
          if ((_options as { all?: boolean }).all) cb(null, [{ address: request.address.address, family: request.address.family }])
          else cb(null, request.address.address, request.address.family)
        }
      },
      (res) => {
        const chunks: Array<Buffer> = []
        let size = 0
        let truncated = false
        res.on("data", (chunk: Buffer) => {
          if (size >= request.maxBodyBytes) {
            truncated = true
            res.destroy()
            return
          }
          chunks.push(chunk)
          size += chunk.length
        })
        const done = () => {
          const headers: Record<string, string> = {}
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value
          }
          settle(
            Effect.succeed({
              status: res.statusCode ?? 0,
              headers,
              body: Buffer.concat(chunks).subarray(0, request.maxBodyBytes).toString("utf8"),
              truncated
            })
          )
        }
        res.on("end", done)
        res.on("close", () => {
          if (truncated) done()
        })
      }
    )
    req.on("timeout", () => req.destroy(new Error(`no response within ${request.timeoutMs} ms`)))
    req.on("error", (error) => {
      if (!signal.aborted) settle(Effect.fail(new ToolError({ code: "tool_failed", message: `${request.method} ${request.url.href}: ${error.message}` })))
    })
    if (request.body !== undefined) req.write(request.body)
    req.end()
  })

/**
 * One-click gate links: `<link id>.<signature>`, the link id 128 random bits and the signature the
 * first 128 bits of HMAC-SHA256 of it under the server's link key (short enough for a URL path
 * segment). What the link decides (org, run, gate, decision, expiry) is its `gate_links` row,
 * found by the id once the signature holds; the row also records that it was used, once. The
 * token itself is never stored.
 */
import { Either, Redacted } from "effect"
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"

export type LinkRefusal = "malformed" | "altered"

const sign = (key: Redacted.Redacted<string>, linkId: string): Buffer =>
  createHmac("sha256", Redacted.value(key)).update(`relavium gate link\u0000${linkId}`).digest().subarray(0, 16)

/** `l` and 128 random bits in base64url. */
export const newLinkId = (): string => `l${randomBytes(16).toString("base64url")}`

export const makeLinkToken = (key: Redacted.Redacted<string>, linkId: string): string => `${linkId}.${sign(key, linkId).toString("base64url")}`

/** The link id when the token is well formed and its signature holds. */
export const verifyLinkToken = (key: Redacted.Redacted<string>, token: string): Either.Either<string, LinkRefusal> => {
  const match = /^(l[A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})$/.exec(token)
  if (match === null) return Either.left("malformed")
  const given = Buffer.from(match[2]!, "base64url")
  const expected = sign(key, match[1]!)
  return given.length === expected.length && timingSafeEqual(given, expected) ? Either.right(match[1]!) : Either.left("altered")
}

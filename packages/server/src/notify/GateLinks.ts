/**
 * One-click gate links: `v1.<payload>.<signature>`, the payload (base64url JSON: org, run, gate,
 * decision, expiry, link id) signed with HMAC-SHA256 under the server's link key. A link is
 * checked here (signature, then expiry); that it is used once is the `gate_links` row's
 * (`NotificationStore.links.use`). The token is never stored: only its link id is.
 */
import { Either, Redacted, Schema } from "effect"
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"

export const LinkPayload = Schema.Struct({
  o: Schema.String,
  r: Schema.String,
  g: Schema.String,
  d: Schema.Literal("approved", "rejected"),
  /** Expiry, epoch milliseconds. */
  e: Schema.Number,
  l: Schema.String
})
export type LinkPayload = typeof LinkPayload.Type

export type LinkRefusal = "malformed" | "altered" | "expired"

const sign = (key: Redacted.Redacted<string>, body: string): Buffer =>
  createHmac("sha256", Redacted.value(key)).update(`relavium gate link\u0000${body}`).digest()

export const newLinkId = (): string => `lnk_${randomBytes(16).toString("hex")}`

export const makeLinkToken = (key: Redacted.Redacted<string>, payload: LinkPayload): string => {
  const body = Buffer.from(JSON.stringify(payload), "utf8").toString("base64url")
  return `v1.${body}.${sign(key, body).toString("base64url")}`
}

const decodePayload = Schema.decodeUnknownEither(Schema.parseJson(LinkPayload))

/** The link's payload when its signature holds and it has not expired at `nowMs`. */
export const verifyLinkToken = (key: Redacted.Redacted<string>, token: string, nowMs: number): Either.Either<LinkPayload, LinkRefusal> => {
  const parts = token.split(".")
  if (parts.length !== 3 || parts[0] !== "v1" || token.length > 4096) return Either.left("malformed")
  const [, body, signature] = parts as [string, string, string]
  const given = Buffer.from(signature, "base64url")
  const expected = sign(key, body)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return Either.left("altered")
  const payload = decodePayload(Buffer.from(body, "base64url").toString("utf8"))
  if (Either.isLeft(payload)) return Either.left("malformed")
  return payload.right.e <= nowMs ? Either.left("expired") : Either.right(payload.right)
}

/**
 * Webhook signatures as Standard Webhooks define them (https://www.standardwebhooks.com):
 *
 * - headers `webhook-id` (the delivery's id, the same on every retry), `webhook-timestamp`
 *   (seconds since the epoch) and `webhook-signature` (a space-separated list of `v1,<base64>`);
 * - the signature is HMAC-SHA256 over the bytes `id.timestamp.body` — the body exactly as
 *   received, never re-serialised — keyed with the base64 after the secret's `whsec_`;
 * - a delivery is accepted when any listed `v1` signature equals (constant time) the signature
 *   under any secret the trigger accepts now (two during a rotation), and its timestamp is within
 *   the tolerance of the clock, in either direction.
 *
 * Nothing here logs or returns a secret; a refusal says only which check failed.
 */
import { Redacted } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"

/** How far a delivery's timestamp may be from the clock, either way. */
export const TOLERANCE_SECONDS = 5 * 60

export type SignatureRefusal =
  | "missing_headers"
  | "bad_timestamp"
  | "stale_timestamp"
  | "bad_signature"

export const refusalMessage: Record<SignatureRefusal, string> = {
  missing_headers: "the delivery needs the headers webhook-id, webhook-timestamp and webhook-signature (Standard Webhooks)",
  bad_timestamp: "webhook-timestamp must be whole seconds since the epoch",
  stale_timestamp: `webhook-timestamp is more than ${TOLERANCE_SECONDS} seconds away from the server's clock: refused as a possible replay`,
  bad_signature: "no webhook-signature matches the body under the trigger's secret"
}

const keyOf = (secret: Redacted.Redacted<string>): Buffer => {
  const text = Redacted.value(secret)
  return Buffer.from(text.startsWith("whsec_") ? text.slice("whsec_".length) : text, "base64")
}

const mac = (key: Buffer, id: string, timestamp: string, body: Uint8Array): Buffer =>
  createHmac("sha256", key).update(`${id}.${timestamp}.`, "utf8").update(body).digest()

/** The `webhook-signature` header value a sender puts on `body` (senders and tests). */
export const sign = (secret: Redacted.Redacted<string>, id: string, timestamp: number | string, body: Uint8Array | string): string =>
  `v1,${mac(keyOf(secret), id, String(timestamp), typeof body === "string" ? Buffer.from(body, "utf8") : body).toString("base64")}`

export interface SignedDelivery {
  readonly id: string | undefined
  readonly timestamp: string | undefined
  readonly signature: string | undefined
  readonly body: Uint8Array
}

/** Undefined when the delivery is signed by one of `secrets` within the tolerance of `nowMs`; else why not. */
export const verify = (
  delivery: SignedDelivery,
  secrets: ReadonlyArray<Redacted.Redacted<string>>,
  nowMs: number
): SignatureRefusal | undefined => {
  const { body, id, signature, timestamp } = delivery
  if (id === undefined || id === "" || timestamp === undefined || signature === undefined) return "missing_headers"
  if (!/^\d{1,12}$/.test(timestamp)) return "bad_timestamp"
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) return "stale_timestamp"
  const given = signature
    .split(" ")
    .map((part) => part.trim())
    .filter((part) => part.startsWith("v1,"))
    .map((part) => Buffer.from(part.slice(3), "base64"))
    .filter((bytes) => bytes.length === 32)
  let matched = false
  for (const secret of secrets) {
    const expected = mac(keyOf(secret), id, timestamp, body)
    // Every pair is compared (no early exit), each in constant time.
    for (const candidate of given) matched = timingSafeEqual(expected, candidate) || matched
  }
  return matched ? undefined : "bad_signature"
}

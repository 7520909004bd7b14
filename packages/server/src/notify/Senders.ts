/**
 * Sending one message through one channel: email over SMTP (nodemailer), a Slack incoming
 * webhook (a JSON POST to its secret URL) and a generic webhook signed as Standard Webhooks do
 * (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
 * id.timestamp.body>`). A failure is described without the secret: never the Slack URL, the
 * SMTP password or the signing secret.
 */
import { Effect, Redacted } from "effect"
import { createHmac } from "node:crypto"
import nodemailer from "nodemailer"
import type { Channel } from "@relavium/ports"

/** What a notification says, in each channel's form. */
export interface Message {
  readonly subject: string
  readonly text: string
  readonly html: string
  /** The JSON body of a webhook (`type`, `data`). */
  readonly event: { readonly type: string; readonly data: Record<string, unknown> }
  /** Extra recipients (an assignee that is an email address). */
  readonly to: ReadonlyArray<string>
}

export class SendFailed extends Error {
  readonly _tag = "SendFailed"
}

const SEND_TIMEOUT_MS = 15_000

const describe = (e: unknown): string => {
  const error = e as { code?: unknown; responseCode?: unknown; name?: unknown }
  if (typeof error.responseCode === "number") return `the SMTP server answered ${error.responseCode}`
  if (typeof error.code === "string") return `could not connect or send (${error.code})`
  if (error.name === "TimeoutError" || error.name === "AbortError") return `no answer within ${SEND_TIMEOUT_MS / 1000} s`
  return "could not connect or send"
}

const post = (url: string, body: string, headers: Record<string, string>) =>
  Effect.tryPromise({
    try: () =>
      fetch(url, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", ...headers },
        redirect: "manual",
        signal: AbortSignal.timeout(SEND_TIMEOUT_MS)
      }),
    catch: (e) => new SendFailed(describe(e))
  }).pipe(
    Effect.flatMap((response) =>
      Effect.promise(() => response.arrayBuffer().catch(() => undefined)).pipe(
        Effect.zipRight(response.ok ? Effect.void : Effect.fail(new SendFailed(`the receiver answered HTTP ${response.status}`)))
      )
    )
  )

/** The signing key of a Standard Webhooks secret: `whsec_<base64>` decoded, any other secret as its bytes. */
export const webhookKey = (secret: string): Buffer =>
  secret.startsWith("whsec_") ? Buffer.from(secret.slice("whsec_".length), "base64") : Buffer.from(secret, "utf8")

/** `v1,<base64 signature>` of `id.timestamp.body`. */
export const webhookSignature = (secret: string, id: string, timestamp: number, body: string): string =>
  `v1,${createHmac("sha256", webhookKey(secret)).update(`${id}.${timestamp}.${body}`).digest("base64")}`

export const send = (
  channel: Channel,
  secret: Redacted.Redacted<string> | undefined,
  message: Message,
  delivery: { readonly id: string; readonly nowMs: number }
): Effect.Effect<void, SendFailed> => {
  const settings = channel.settings
  switch (settings.kind) {
    case "email": {
      const to = [...new Set([...settings.to, ...message.to])]
      if (to.length === 0) return Effect.fail(new SendFailed("the email channel has no recipient and the gate no email assignee"))
      return Effect.tryPromise({
        try: async () => {
          const transport = nodemailer.createTransport({
            host: settings.host,
            port: settings.port,
            secure: settings.secure,
            ...(settings.username === undefined ? {} : { auth: { user: settings.username, pass: secret === undefined ? "" : Redacted.value(secret) } }),
            connectionTimeout: SEND_TIMEOUT_MS,
            greetingTimeout: SEND_TIMEOUT_MS,
            socketTimeout: SEND_TIMEOUT_MS
          })
          try {
            await transport.sendMail({ from: settings.from, to, subject: message.subject, text: message.text, html: message.html })
          } finally {
            transport.close()
          }
        },
        catch: (e) => new SendFailed(describe(e))
      })
    }
    case "slack": {
      if (secret === undefined) return Effect.fail(new SendFailed("the Slack channel has no webhook URL"))
      return post(Redacted.value(secret), JSON.stringify({ text: `*${message.subject}*\n${message.text}` }), {})
    }
    case "webhook": {
      if (secret === undefined) return Effect.fail(new SendFailed("the webhook channel has no signing secret"))
      const body = JSON.stringify({ ...message.event, timestamp: new Date(delivery.nowMs).toISOString() })
      const timestamp = Math.floor(delivery.nowMs / 1000)
      return post(settings.url, body, {
        "webhook-id": delivery.id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": webhookSignature(Redacted.value(secret), delivery.id, timestamp, body)
      })
    }
  }
}

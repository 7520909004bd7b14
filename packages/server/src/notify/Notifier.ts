/**
 * The notifier: one pass (`sweep`) finds what to tell and tells it, for every org with a channel.
 * It keeps its work in the store (`notification_deliveries`), so a pass may run in any process,
 * be interrupted, and the next pass (in this process or another) continues; `run` repeats it.
 *
 * A pass, for each org:
 * 1. cancels the pending deliveries of gates that were decided elsewhere (or whose run ended);
 * 2. adds a delivery per enabled channel for each pending gate not notified yet;
 * 3. adds a delivery per channel for each budget threshold reached this month, once per threshold
 *    and month (`budget_alerts`);
 * 4. claims the deliveries that are due and sends them; a failed one is retried with exponential
 *    backoff (from the Effect `Clock`) until `maxAttempts`, then recorded `failed`, each attempt
 *    with its error (never a secret).
 *
 * A gate's message carries two signed, single-use links (approve, reject), made when it is sent.
 */
import { Clock, Context, Effect, Layer, Option, Redacted, Schedule } from "effect"
import {
  type Channel,
  type Delivery,
  forOrg,
  NotificationError,
  NotificationStore,
  type NewDelivery,
  UsageStore
} from "@relavium/ports"
import { makeLinkToken, newLinkId } from "./GateLinks.js"
import { type Message, send } from "./Senders.js"

export interface NotifySettingsShape {
  /** The HMAC key gate links are signed with (`RELAVIUM_LINK_KEY`): the same in every API replica. */
  readonly linkKey: Redacted.Redacted<string>
  /** The server's address as people reach it, for the links (`https://relavium.example.com`). */
  readonly publicUrl: string
  /** How long a link works (default 7 days; never past the gate's own expiry). */
  readonly linkTtlMs?: number | undefined
  /** Attempts before a delivery is failed for good (default 6). */
  readonly maxAttempts?: number | undefined
  /** The first retry's delay; each next one doubles (default 30 s). */
  readonly retryBaseMs?: number | undefined
  /** Time between passes of `run` (default 5 s). */
  readonly intervalMs?: number | undefined
}

export class NotifySettings extends Context.Tag("@relavium/server/NotifySettings")<NotifySettings, NotifySettingsShape>() {}

export interface SweepReport {
  readonly enqueued: number
  readonly sent: number
  readonly failed: number
  readonly cancelled: number
}

export class Notifier extends Context.Tag("@relavium/server/Notifier")<
  Notifier,
  {
    /** One pass over every org with a channel. */
    readonly sweep: Effect.Effect<SweepReport, NotificationError>
    /** One pass for one org. */
    readonly sweepOrg: (orgId: string) => Effect.Effect<SweepReport, NotificationError>
    /** Passes forever, `intervalMs` apart; a failed pass is logged and the next one goes on. */
    readonly run: Effect.Effect<never>
  }
>() {}

const DAY_MS = 24 * 60 * 60 * 1000
const LEASE_MS = 60_000

const escapeHtml = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&#39;")

const isEmail = (s: string | null | undefined): s is string => s != null && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s.trim())

/** `2026-12` and the month's bounds. */
export const monthOf = (nowMs: number) => {
  const d = new Date(nowMs)
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
  const end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
  return { period: new Date(start).toISOString().slice(0, 7), from: new Date(start).toISOString(), to: new Date(end).toISOString() }
}

const str = (v: unknown): string => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v))

export const make = Effect.gen(function* () {
  const store = yield* NotificationStore
  const usage = yield* UsageStore
  const settings = yield* NotifySettings
  const maxAttempts = settings.maxAttempts ?? 6
  const retryBase = settings.retryBaseMs ?? 30_000
  const linkTtl = settings.linkTtlMs ?? 7 * DAY_MS
  const base = settings.publicUrl.replace(/\/+$/, "")

  const gateMessage = (orgId: string, delivery: Delivery, nowMs: number, nowIso: string) =>
    Effect.gen(function* () {
      const d = delivery.detail
      const gateExpiry = Date.parse(str(d.expiresAt))
      const expires = Math.min(nowMs + linkTtl, Number.isNaN(gateExpiry) ? Number.POSITIVE_INFINITY : gateExpiry)
      const link = (decision: "approved" | "rejected") =>
        Effect.gen(function* () {
          const linkId = newLinkId()
          const runId = delivery.runId ?? ""
          const gateId = delivery.gateId ?? ""
          yield* store.links.create({ linkId, runId, gateId, decision, expiresAt: new Date(expires).toISOString() }, nowIso)
          return `${base}/gate-links/${makeLinkToken(settings.linkKey, linkId)}`
        })
      const approveUrl = yield* link("approved")
      const rejectUrl = yield* link("rejected")
      const workflow = str(d.workflow)
      const text = [
        str(d.message),
        "",
        `Workflow: ${workflow}`,
        `Run: ${delivery.runId}  Gate: ${delivery.gateId} (${str(d.gateType)})`,
        ...(str(d.assignee) === "" ? [] : [`Assignee: ${str(d.assignee)}`]),
        "",
        `Approve: ${approveUrl}`,
        `Reject: ${rejectUrl}`,
        "",
        `The links work once, until ${new Date(expires).toISOString()}.`
      ].join("\n")
      const html = `<p>${escapeHtml(str(d.message))}</p>
<p>Workflow: ${escapeHtml(workflow)}<br>Run: ${escapeHtml(delivery.runId ?? "")}, gate ${escapeHtml(delivery.gateId ?? "")}</p>
<p><a href="${escapeHtml(approveUrl)}">Approve</a> · <a href="${escapeHtml(rejectUrl)}">Reject</a></p>
<p>The links work once, until ${new Date(expires).toISOString()}.</p>`
      const message: Message = {
        subject: `Relavium: a decision is needed (${workflow})`,
        text,
        html,
        event: {
          type: "gate.opened",
          data: {
            orgId,
            runId: delivery.runId,
            gateId: delivery.gateId,
            workflow,
            gateType: d.gateType,
            message: d.message,
            assignee: d.assignee ?? null,
            approveUrl,
            rejectUrl,
            linksExpireAt: new Date(expires).toISOString()
          }
        },
        to: isEmail(str(d.assignee)) ? [str(d.assignee).trim().toLowerCase()] : []
      }
      return message
    })

  const budgetMessage = (orgId: string, delivery: Delivery): Message => {
    const d = delivery.detail
    const text = `The organisation has spent ${str(d.spentCents)} cents of its monthly budget of ${str(d.limitCents)} cents in ${str(d.period)}: ${str(d.threshold)}% reached.`
    return {
      subject: `Relavium: ${str(d.threshold)}% of the monthly budget used`,
      text,
      html: `<p>${escapeHtml(text)}</p>`,
      event: { type: "budget.threshold", data: { orgId, ...d } },
      to: []
    }
  }

  const deliver = (orgId: string, channels: ReadonlyArray<Channel>, delivery: Delivery) =>
    Effect.gen(function* () {
      const nowMs = yield* Clock.currentTimeMillis
      const nowIso = new Date(nowMs).toISOString()
      const attempts = delivery.attempts + 1
      const channel = channels.find((c) => c.id === delivery.channelId)
      if (channel === undefined || !channel.enabled) {
        yield* store.deliveries.markFailed(delivery.id, attempts, "the channel was removed or disabled", undefined, nowIso)
        return "failed" as const
      }
      // A channel whose secret does not open (or a link that cannot be recorded) fails this
      // delivery, with the reason, and never the others.
      const outcome = yield* Effect.either(
        Effect.gen(function* () {
          const secret = yield* store.channels.secret(channel.id)
          const message = delivery.subjectKind === "gate" ? yield* gateMessage(orgId, delivery, nowMs, nowIso) : budgetMessage(orgId, delivery)
          return yield* send(channel, Option.getOrUndefined(secret), message, { id: delivery.id, nowMs })
        })
      )
      if (outcome._tag === "Right") {
        yield* store.deliveries.markSent(delivery.id, attempts, nowIso)
        return "sent" as const
      }
      const retryAt = attempts >= maxAttempts ? undefined : new Date(nowMs + retryBase * 2 ** (attempts - 1)).toISOString()
      yield* store.deliveries.markFailed(delivery.id, attempts, outcome.left.message, retryAt, nowIso)
      yield* Effect.logWarning(`notification ${delivery.id} through ${channel.kind} channel ${channel.name} failed (attempt ${attempts}): ${outcome.left.message}`)
      return retryAt === undefined ? ("failed" as const) : ("retrying" as const)
    })

  const budgetDeliveries = (channels: ReadonlyArray<Channel>, nowMs: number, nowIso: string) =>
    Effect.gen(function* () {
      const budget = yield* store.budget.get
      if (Option.isNone(budget)) return [] as ReadonlyArray<NewDelivery>
      const month = monthOf(nowMs)
      const events = yield* usage.costEvents(month.from, month.to)
      const spent = events.reduce((sum, e) => sum + e.costMicrocents, 0)
      const limit = budget.value.monthlyLimitMicrocents
      const out: Array<NewDelivery> = []
      for (const threshold of [...budget.value.thresholds].sort((a, b) => a - b)) {
        if (spent * 100 < limit * threshold) continue
        if (!(yield* store.budget.recordAlert(month.period, threshold, spent, nowIso))) continue
        const detail = { period: month.period, threshold, spentCents: spent / 1_000_000, limitCents: limit / 1_000_000 }
        for (const channel of channels) out.push({ channelId: channel.id, subject: `budget:${month.period}:${threshold}`, subjectKind: "budget", detail })
      }
      return out
    })

  const sweepOrg = (orgId: string) =>
    forOrg(orgId)(
      Effect.gen(function* () {
        const nowMs = yield* Clock.currentTimeMillis
        const nowIso = new Date(nowMs).toISOString()
        const cancelled = yield* store.deliveries.cancelDecided(nowIso)
        const channels = (yield* store.channels.list).filter((c) => c.enabled)
        const gates = yield* store.deliveries.gatesToNotify
        const fresh: Array<NewDelivery> = []
        for (const gate of channels.length === 0 ? [] : gates) {
          const detail = {
            workflow: gate.workflowName,
            message: gate.message,
            gateType: gate.gateType,
            nodeId: gate.nodeId,
            assignee: gate.assignee,
            expiresAt: gate.expiresAt
          }
          for (const channel of channels) {
            fresh.push({ channelId: channel.id, subject: `gate:${gate.runId}:${gate.gateId}`, subjectKind: "gate", runId: gate.runId, gateId: gate.gateId, detail })
          }
        }
        if (channels.length > 0) fresh.push(...(yield* budgetDeliveries(channels, nowMs, nowIso)))
        const enqueued = yield* store.deliveries.enqueue(fresh, nowIso)
        const all = yield* store.channels.list
        const due = yield* store.deliveries.claimDue(nowIso, LEASE_MS, 50)
        let sent = 0
        let failed = 0
        for (const delivery of due) {
          const outcome = yield* deliver(orgId, all, delivery)
          if (outcome === "sent") sent++
          else failed++
        }
        return { enqueued, sent, failed, cancelled } satisfies SweepReport
      })
    )

  const sweep = Effect.gen(function* () {
    const total = { enqueued: 0, sent: 0, failed: 0, cancelled: 0 }
    for (const orgId of yield* store.orgsToNotify) {
      // One org's failure (its store, a bad row) is logged; the other orgs are still served.
      const report = yield* sweepOrg(orgId).pipe(
        Effect.catchAll((e) =>
          Effect.as(Effect.logError(`the notification pass of org ${orgId} failed: ${e.message}`), { enqueued: 0, sent: 0, failed: 0, cancelled: 0 })
        )
      )
      total.enqueued += report.enqueued
      total.sent += report.sent
      total.failed += report.failed
      total.cancelled += report.cancelled
    }
    return total satisfies SweepReport
  })

  const run = sweep.pipe(
    Effect.catchAllCause((cause) => Effect.logError("a notification pass failed; the next one continues", cause)),
    Effect.repeat(Schedule.spaced(settings.intervalMs ?? 5_000)),
    Effect.zipRight(Effect.never)
  )

  return Notifier.of({ sweep, sweepOrg, run })
})

/** The notifier; needs `NotificationStore`, `UsageStore` and `NotifySettings`. */
export const layer = Layer.effect(Notifier, make)

/** The notifier's passes as a background fiber for as long as the layer lives (the monolith, the workers). */
export const layerRunning = Layer.scopedDiscard(Effect.flatMap(Notifier, (notifier) => Effect.forkScoped(notifier.run)))

export { NotificationError }

/**
 * The handlers of NotifyApi.ts: channels, deliveries and the budget on `NotificationStore`, usage
 * on `UsageStore`, and the gate links, which decide a gate through `WorkflowEngine.resume`.
 *
 * A gate link is checked in this order: its signature (an altered link: 400), its expiry (410),
 * whether its gate is still pending (decided elsewhere or by another link: 409 "already decided"),
 * then it is marked used, once (a second use: 409), and the gate decided. `GET` only shows the
 * confirmation page, so a mail scanner that opens links decides nothing.
 */
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Either, Layer, Option } from "effect"
import { WorkflowEngine } from "@relavium/core"
import {
  aggregateUsage,
  AuditLog,
  centsOf,
  CurrentPrincipal,
  DEFAULT_THRESHOLDS,
  forOrg,
  NotificationError,
  NotificationStore,
  type UsageGroupBy,
  UsageStore,
  usageCsv
} from "@relavium/ports"
import { BadRequest, Forbidden, InternalError, NotFound, RelaviumApi } from "./Api.js"
import { makeAudit } from "./Audit.js"
import { verifyLinkToken } from "./notify/GateLinks.js"
import { monthOf, NotifySettings } from "./notify/Notifier.js"

const fromStore = (e: NotificationError) =>
  e.reason === "invalid" ? new BadRequest({ message: e.message }) : new InternalError({ message: e.message })

const acting = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const principal = yield* Effect.serviceOption(CurrentPrincipal)
    if (Option.isNone(principal)) return yield* new Forbidden({ message: "this route needs an authenticated caller" })
    return yield* forOrg(principal.value.orgId)(effect)
  })

const NotificationsLive = HttpApiBuilder.group(RelaviumApi, "notifications", (handlers) =>
  Effect.gen(function* () {
    const store = yield* NotificationStore
    const usage = yield* UsageStore
    const audit = yield* makeAudit
    const budgetView = Effect.gen(function* () {
      const month = monthOf(yield* Clock.currentTimeMillis)
      const budget = yield* store.budget.get
      const events = yield* usage.costEvents(month.from, month.to)
      return { budget: Option.getOrNull(budget), period: month.period, spentMicrocents: events.reduce((sum, e) => sum + e.costMicrocents, 0) }
    })
    return handlers
      .handle("channels", () => acting(store.channels.list).pipe(Effect.mapError((e) => (e instanceof NotificationError ? fromStore(e) : e))))
      .handle("setChannel", ({ path: { name }, payload }) =>
        acting(
          Effect.gen(function* () {
            const channel = yield* store.channels.put({ name, settings: payload.settings, secret: payload.secret, enabled: payload.enabled })
            yield* audit("notifications.channel.set", name, { kind: channel.kind, secretChanged: payload.secret !== undefined })
            return channel
          })
        ).pipe(Effect.mapError((e) => (e instanceof NotificationError ? fromStore(e) : e)))
      )
      .handle("removeChannel", ({ path: { name } }) =>
        acting(
          Effect.gen(function* () {
            if (!(yield* store.channels.remove(name))) return yield* new NotFound({ message: `no notification channel ${name} (see GET /notifications/channels)` })
            yield* audit("notifications.channel.remove", name)
          })
        ).pipe(Effect.mapError((e) => (e instanceof NotificationError ? fromStore(e) : e)))
      )
      .handle("deliveries", ({ urlParams }) =>
        acting(store.deliveries.list({ runId: urlParams.runId })).pipe(Effect.mapError((e) => (e instanceof NotificationError ? fromStore(e) : e)))
      )
      .handle("budget", () => acting(budgetView).pipe(Effect.mapError((e) => (e instanceof NotificationError ? fromStore(e) : e))))
      .handle("setBudget", ({ payload }) =>
        acting(
          Effect.gen(function* () {
            const budget = {
              monthlyLimitMicrocents: Math.round(payload.monthlyLimitCents * 1_000_000),
              thresholds: [...new Set(payload.thresholds ?? DEFAULT_THRESHOLDS)].sort((a, b) => a - b)
            }
            yield* store.budget.set(budget, new Date(yield* Clock.currentTimeMillis).toISOString())
            yield* audit("budget.set", "budget", { monthlyLimitCents: payload.monthlyLimitCents, thresholds: budget.thresholds.join(",") })
            return yield* budgetView
          })
        ).pipe(Effect.mapError((e) => (e instanceof NotificationError ? fromStore(e) : e)))
      )
  })
)

/** The range asked for, defaulting to this month so far. */
const rangeOf = (params: { readonly from?: string | undefined; readonly to?: string | undefined }) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const from = params.from ?? monthOf(now).from
    const to = params.to ?? new Date(now).toISOString()
    if (from >= to) return yield* new BadRequest({ message: `the range is empty: \`from\` (${from}) must be before \`to\` (${to})`, issues: [{ path: "to", message: "must be after from" }] })
    return { from, to }
  })

const usageRows = (store: UsageStore["Type"], params: { readonly from?: string | undefined; readonly to?: string | undefined; readonly groupBy: UsageGroupBy }) =>
  Effect.gen(function* () {
    const { from, to } = yield* rangeOf(params)
    const events = yield* store.costEvents(from, to)
    return { from, to, groupBy: params.groupBy, events, rows: aggregateUsage(events, params.groupBy) }
  })

const UsageLive = HttpApiBuilder.group(RelaviumApi, "usage", (handlers) =>
  Effect.gen(function* () {
    const store = yield* UsageStore
    return handlers
      .handle("get", ({ urlParams }) =>
        acting(
          Effect.map(usageRows(store, urlParams), ({ events, from, groupBy, rows, to }) => {
            const total = events.reduce(
              (t, e) => ({ inputTokens: t.inputTokens + e.inputTokens, outputTokens: t.outputTokens + e.outputTokens, costMicrocents: t.costMicrocents + e.costMicrocents }),
              { inputTokens: 0, outputTokens: 0, costMicrocents: 0 }
            )
            return {
              from,
              to,
              groupBy,
              rows: rows.map((r) => ({ ...r, costCents: centsOf(r.costMicrocents) })),
              total: { ...total, costCents: centsOf(total.costMicrocents) }
            }
          })
        ).pipe(Effect.mapError((e) => (e instanceof NotificationError ? fromStore(e) : e)))
      )
      .handle("csv", ({ urlParams }) =>
        acting(
          Effect.map(usageRows(store, urlParams), ({ groupBy, rows }) =>
            HttpServerResponse.text(usageCsv(groupBy, rows), {
              contentType: "text/csv; charset=utf-8",
              headers: { "content-disposition": `attachment; filename="usage-${groupBy}.csv"` }
            })
          )
        ).pipe(Effect.mapError((e) => (e instanceof NotificationError ? fromStore(e) : e)))
      )
  })
)

// ---------------------------------------------------------------------------
// Gate links
// ---------------------------------------------------------------------------

const escapeHtml = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&#39;")

const page = (status: number, title: string, body: string) =>
  HttpServerResponse.html(
    `<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>${escapeHtml(title)}</title></head>` +
      `<body style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>${escapeHtml(title)}</h1>${body}</body></html>`
  ).pipe(
    HttpServerResponse.setStatus(status),
    HttpServerResponse.setHeaders({ "cache-control": "no-store", "referrer-policy": "no-referrer", "x-frame-options": "DENY" })
  )

const refusedPage = (reason: "malformed" | "altered" | "expired") =>
  reason === "expired"
    ? page(410, "This link has expired", "<p>Decide the gate in Relavium instead (<code>relavium gate</code> or the API).</p>")
    : page(400, "This link is not valid", "<p>It was altered or cut short. Use the link exactly as it was sent.</p>")

const alreadyDecided = () => page(409, "Already decided", "<p>This gate was already decided; nothing was changed.</p>")

const verb = (d: "approved" | "rejected") => (d === "approved" ? "Approve" : "Reject")

const GateLinksLive = HttpApiBuilder.group(RelaviumApi, "gateLinks", (handlers) =>
  Effect.gen(function* () {
    const store = yield* NotificationStore
    const engine = yield* WorkflowEngine
    const auditLog = yield* AuditLog
    const settings = yield* NotifySettings
    /** The link's row when the token is signed, issued and not expired; else the page refusing it. */
    const check = (token: string) =>
      Effect.gen(function* () {
        const verified = verifyLinkToken(settings.linkKey, token)
        if (Either.isLeft(verified)) return Either.left(refusedPage(verified.left))
        const found = yield* store.links.find(verified.right)
        if (Option.isNone(found)) return Either.left(refusedPage("altered"))
        const now = yield* Clock.currentTimeMillis
        if (Date.parse(found.value.expiresAt) <= now) return Either.left(refusedPage("expired"))
        return Either.right({ linkId: verified.right, ...found.value })
      })
    const failed = (e: { readonly message: string }) =>
      Effect.as(Effect.logError(`a gate link could not be handled: ${e.message}`), page(500, "Something went wrong", "<p>Try again in a moment.</p>"))
    return handlers
      .handle("show", ({ path: { token } }) =>
        Effect.gen(function* () {
          const checked = yield* check(token)
          if (Either.isLeft(checked)) return checked.left
          const link = checked.right
          const pending = link.usedAt === null && (yield* forOrg(link.orgId)(store.links.gatePending(link.runId, link.gateId)))
          if (!pending) return alreadyDecided()
          return page(
            200,
            `${verb(link.decision)} gate ${link.gateId}?`,
            `<p>Run <code>${escapeHtml(link.runId)}</code> waits for a decision on gate <code>${escapeHtml(link.gateId)}</code>.</p>` +
              `<form method="post"><button type="submit">${verb(link.decision)}</button></form>` +
              `<p>The link works once, until ${escapeHtml(link.expiresAt)}.</p>`
          )
        }).pipe(Effect.catchAll(failed))
      )
      .handle("decide", ({ path: { token } }) =>
        Effect.gen(function* () {
          const checked = yield* check(token)
          if (Either.isLeft(checked)) return checked.left
          const link = checked.right
          return yield* forOrg(link.orgId)(
            Effect.gen(function* () {
              if (!(yield* store.links.gatePending(link.runId, link.gateId))) return alreadyDecided()
              const now = new Date(yield* Clock.currentTimeMillis).toISOString()
              const use = yield* store.links.use(link.linkId, now)
              if (use === "already_used") return alreadyDecided()
              if (use === "unknown") return refusedPage("altered")
              const actor = `link:${link.linkId.slice(0, 9)}`
              yield* engine.resume(link.runId, link.gateId, { decision: link.decision, decidedBy: actor })
              yield* auditLog
                .append({ actor, action: "gate.decide", target: link.gateId, detail: { runId: link.runId, decision: link.decision } })
                .pipe(Effect.catchAll((e) => Effect.logError(`the audit entry gate.decide ${link.gateId} could not be written: ${e.message}`)))
              return page(
                200,
                link.decision === "approved" ? "Approved" : "Rejected",
                `<p>Gate <code>${escapeHtml(link.gateId)}</code> of run <code>${escapeHtml(link.runId)}</code> is decided. You can close this page.</p>`
              )
            })
          )
        }).pipe(Effect.catchAll(failed))
      )
  })
)

/** The groups of NotifyApi.ts; need `NotificationStore`, `UsageStore`, `WorkflowEngine`, `AuditLog` and `NotifySettings`. */
export const layer = Layer.mergeAll(NotificationsLive, UsageLive, GateLinksLive)



/**
 * The trigger routes of TriggersApi.ts on the `Triggers` and `WorkflowStore` ports. The
 * `Authorization` middleware has checked the caller's role (`triggers.read` / `triggers.manage`);
 * every handler acts for the caller's org. A new trigger is checked before anything is stored:
 * its workflow exists in the org, a webhook's template names declared inputs and reads only the
 * body, a schedule's cron expression and time zone parse and its inputs satisfy the workflow.
 * Creations, deletions and rotations are audited (`trigger.create`, `trigger.delete`,
 * `trigger.rotate_secret`), never with a secret.
 */
import { HttpApiBuilder } from "@effect/platform"
import { Clock, Effect, Option } from "effect"
import { CurrentPrincipal, type Trigger, type TriggerError, Triggers, WorkflowStore, type WorkflowStoreError } from "@relavium/ports"
import { BadRequest, InternalError, NotFound, RelaviumApi } from "./Api.js"
import { makeAudit } from "./Audit.js"
import { checkInputs, declaredInputs, type Issue, scheduleIssues, templateIssues } from "./TriggerInputs.js"
import { HOOK_PATH } from "./Webhooks.js"

const internal = (e: TriggerError | WorkflowStoreError) => new InternalError({ message: `${e._tag}: ${e.message}` })

export const view = (trigger: Trigger) => ({
  ...trigger,
  ...(trigger.kind === "webhook" ? { hookPath: HOOK_PATH.replace(":triggerId", trigger.id) } : {})
})

const invalid = (issues: ReadonlyArray<Issue>) =>
  new BadRequest({ message: issues.map((i) => `${i.path}: ${i.message}`).join("; "), issues })

const DEFAULT_GRACE_SECONDS = 86_400

const TriggersLive = HttpApiBuilder.group(RelaviumApi, "triggers", (handlers) =>
  Effect.gen(function* () {
    const triggers = yield* Triggers
    const workflows = yield* WorkflowStore
    const audit = yield* makeAudit
    const notFound = (triggerId: string) => new NotFound({ message: `no trigger ${triggerId} in this organisation (see GET /triggers)` })
    return handlers
      .handle("list", () => Effect.map(triggers.list, (all) => all.map(view)).pipe(Effect.mapError(internal)))
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const workflow = yield* workflows.get(payload.workflowId).pipe(Effect.mapError(internal))
          if (Option.isNone(workflow)) return yield* new NotFound({ message: `no workflow with id ${payload.workflowId}` })
          const declared = declaredInputs(workflow.value)
          const issues: Array<Issue> = []
          const foreign = (fields: ReadonlyArray<keyof typeof payload>) =>
            fields.filter((f) => payload[f] !== undefined).map((f) => ({ path: f, message: `only a ${payload.kind === "webhook" ? "schedule" : "webhook"} trigger takes ${f}` }))
          if (payload.kind === "webhook") {
            issues.push(...foreign(["inputs", "cron", "timezone", "missed"]))
            if (payload.inputTemplate !== undefined) issues.push(...templateIssues(payload.inputTemplate, declared))
          } else {
            issues.push(...foreign(["inputTemplate"]))
            if (payload.cron === undefined) issues.push({ path: "cron", message: "a schedule trigger needs a cron expression" })
            else issues.push(...scheduleIssues(payload.cron, payload.timezone ?? "UTC"))
            issues.push(...checkInputs(declared, payload.inputs ?? {}))
          }
          if (issues.length > 0) return yield* invalid(issues)
          const principal = yield* Effect.serviceOption(CurrentPrincipal)
          const created = yield* triggers
            .create({
              ...payload,
              timezone: payload.kind === "schedule" ? payload.timezone ?? "UTC" : undefined,
              createdBy: Option.match(principal, { onNone: () => "local", onSome: (p) => p.actor })
            })
            .pipe(Effect.mapError((e) => (/master key/i.test(e.message) ? new BadRequest({ message: e.message }) : internal(e))))
          yield* audit("trigger.create", created.trigger.id, {
            kind: created.trigger.kind,
            name: created.trigger.name,
            workflowId: created.trigger.workflowId
          })
          return { trigger: view(created.trigger), ...(Option.isSome(created.secret) ? { secret: created.secret.value } : {}) }
        })
      )
      .handle("remove", ({ path: { triggerId } }) =>
        Effect.gen(function* () {
          const found = yield* triggers.get(triggerId).pipe(Effect.mapError(internal))
          if (Option.isNone(found) || !(yield* triggers.remove(triggerId).pipe(Effect.mapError(internal)))) return yield* notFound(triggerId)
          yield* audit("trigger.delete", triggerId, { kind: found.value.kind, name: found.value.name })
        })
      )
      .handle("rotateSecret", ({ path: { triggerId }, payload }) =>
        Effect.gen(function* () {
          const grace = payload?.graceSeconds ?? DEFAULT_GRACE_SECONDS
          const until = new Date((yield* Clock.currentTimeMillis) + grace * 1000).toISOString()
          const rotated = yield* triggers
            .rotateSecret(triggerId, until)
            .pipe(Effect.mapError((e) => (/master key/i.test(e.message) ? new BadRequest({ message: e.message }) : internal(e))))
          if (Option.isNone(rotated)) return yield* notFound(triggerId)
          yield* audit("trigger.rotate_secret", triggerId, { previousValidUntil: until })
          return { triggerId, secret: rotated.value, previousValidUntil: until }
        })
      )
  })
)

/** The trigger group of `RelaviumApi`; needs `Triggers`, `WorkflowStore` and `AuditLog`. */
export const layer = TriggersLive

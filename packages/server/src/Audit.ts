/**
 * The audit trail the handlers write: one entry (`AuditLog` of the caller's
 * org, actor = the caller's `actor`) after each change a caller made —
 * workflow uploads, run start/cancel/resume, gate decisions, key set/delete,
 * chat tool approvals. An entry names the action and its target (an id or a
 * provider) and only details that can never be secret: a gate decision records
 * its kind, never the comment or the value given; a key records its provider,
 * never the key. A refused or failed request writes nothing.
 *
 * The change has happened when its entry is written: an entry that cannot be
 * stored is logged as an error (its action and target) rather than turning a
 * done change into a failed request.
 */
import { Effect } from "effect"
import { AuditLog, CurrentPrincipal } from "@relavium/ports"

/** The `audit(action, target, detail)` of the handlers of a group (needs `AuditLog` when the group is built). */
export const makeAudit = Effect.map(
  AuditLog,
  (log) =>
    (action: string, target: string, detail?: Readonly<Record<string, string | number | boolean>>) =>
      Effect.flatMap(CurrentPrincipal, (caller) => log.append({ actor: caller.actor, action, target, detail })).pipe(
        Effect.catchAll((e) => Effect.logError(`the audit entry ${action} ${target} could not be written: ${e.message}`))
      )
)

/** Who the caller is, as gates and chat approvals record it (`decidedBy`): the same actor as the audit trail. */
export const callerActor: Effect.Effect<string, never, CurrentPrincipal> = Effect.map(CurrentPrincipal, (caller) => caller.actor)

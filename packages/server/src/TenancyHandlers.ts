/**
 * The tenancy routes of TenancyApi.ts on the `Tenancy` and `AuditLog` ports.
 *
 * The `Authorization` middleware (Auth.ts) has already checked the caller's
 * role against the route's action (`routeActions` in Routes.ts); every handler
 * acts for the caller's org (`forOrg(principal.orgId)`, whatever the
 * middleware already provides). Roles are granted only at or
 * below the caller's own (`mayGrant`): for a new member or token, for both
 * sides of a role change, and for the member or token removed or revoked.
 * Changes to members and tokens are appended to the audit trail with the
 * caller as actor; a token itself is never stored, logged or audited — only
 * its id and visible prefix.
 */
import { HttpApiBuilder } from "@effect/platform"
import { Clock, Effect, Layer, Option } from "effect"
import {
  AuditLog,
  CurrentPrincipal,
  forOrg,
  LastOwner,
  mayGrant,
  type Principal,
  type Role,
  Tenancy,
  TenancyError
} from "@relavium/ports"
import { Conflict, Forbidden, InternalError, NotFound, RelaviumApi } from "./Api.js"
import { DEFAULT_AUDIT_PAGE } from "./TenancyApi.js"

const internal = (e: TenancyError) => new InternalError({ message: `tenancy store: ${e.message}` })

const storeFailure = <E>(e: E): Exclude<E, TenancyError> | InternalError =>
  e instanceof TenancyError ? internal(e) : (e as Exclude<E, TenancyError>)

/** Runs `body` for the caller's org (the route's action is the middleware's check); store failures become 500s. */
const acting = <A, E, R>(body: (principal: Principal) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const principal = yield* Effect.serviceOption(CurrentPrincipal)
    if (Option.isNone(principal)) return yield* new Forbidden({ message: "this route needs an authenticated caller" })
    return yield* forOrg(principal.value.orgId)(body(principal.value))
  }).pipe(Effect.mapError(storeFailure))

const mayNotGrant = (principal: Principal, role: Role) =>
  new Forbidden({ message: `the ${principal.role} role may not grant or take away the ${role} role` })

/** The store refuses a change that would leave the org without an owner, atomically with the change. */
const refusedLastOwner = <A, R>(effect: Effect.Effect<A, TenancyError | LastOwner, R>): Effect.Effect<A, TenancyError | Conflict, R> =>
  Effect.catchTag(effect, "LastOwner", (e) => Effect.fail(new Conflict({ message: e.message })))

const findMember = (tenancy: Tenancy["Type"], email: string) =>
  Effect.flatMap(tenancy.members.list, (members) => {
    const member = members.find((m) => m.email === email)
    return member === undefined
      ? Effect.fail(new NotFound({ message: `${email} is not a member of this organisation` }))
      : Effect.succeed({ member })
  })

const OrgLive = HttpApiBuilder.group(RelaviumApi, "org", (handlers) =>
  Effect.gen(function* () {
    const tenancy = yield* Tenancy
    return handlers.handle("get", () =>
      acting(() =>
        Effect.flatMap(
          tenancy.org,
          Option.match({
            onNone: () => Effect.fail(new NotFound({ message: "this organisation no longer exists" })),
            onSome: (org) => Effect.succeed({ id: org.id, name: org.name, createdAt: org.createdAt })
          })
        )
      )
    )
  })
)

const MembersLive = HttpApiBuilder.group(RelaviumApi, "members", (handlers) =>
  Effect.gen(function* () {
    const tenancy = yield* Tenancy
    const audit = yield* AuditLog
    return handlers
      .handle("list", () => acting(() => tenancy.members.list))
      .handle("add", ({ payload: { email, role } }) =>
        acting((principal) =>
          Effect.gen(function* () {
            if (!mayGrant(principal.role, role)) return yield* mayNotGrant(principal, role)
            const members = yield* tenancy.members.list
            if (members.some((m) => m.email === email)) return yield* new Conflict({ message: `${email} is already a member` })
            const added = yield* tenancy.members.add(email, role)
            yield* audit.append({ actor: principal.actor, action: "member.add", target: email, detail: { role } })
            return added
          })
        )
      )
      .handle("setRole", ({ path: { email }, payload: { role } }) =>
        acting((principal) =>
          Effect.gen(function* () {
            const { member } = yield* findMember(tenancy, email)
            if (!mayGrant(principal.role, member.role)) return yield* mayNotGrant(principal, member.role)
            if (!mayGrant(principal.role, role)) return yield* mayNotGrant(principal, role)
            if (member.role === role) return member
            const changed = yield* refusedLastOwner(tenancy.members.setRole(email, role))
            if (Option.isNone(changed)) return yield* new NotFound({ message: `${email} is not a member of this organisation` })
            yield* audit.append({ actor: principal.actor, action: "member.role", target: email, detail: { from: member.role, to: role } })
            return changed.value
          })
        )
      )
      .handle("remove", ({ path: { email } }) =>
        acting((principal) =>
          Effect.gen(function* () {
            const { member } = yield* findMember(tenancy, email)
            if (!mayGrant(principal.role, member.role)) return yield* mayNotGrant(principal, member.role)
            const removed = yield* refusedLastOwner(tenancy.members.remove(email))
            if (!removed) return yield* new NotFound({ message: `${email} is not a member of this organisation` })
            yield* audit.append({ actor: principal.actor, action: "member.remove", target: email, detail: { role: member.role } })
          })
        )
      )
  })
)

const DAY_MS = 24 * 60 * 60 * 1000

const TokensLive = HttpApiBuilder.group(RelaviumApi, "tokens", (handlers) =>
  Effect.gen(function* () {
    const tenancy = yield* Tenancy
    const audit = yield* AuditLog
    return handlers
      .handle("list", () => acting(() => tenancy.tokens.list))
      .handle("create", ({ payload: { expiresInDays, name, role } }) =>
        acting((principal) =>
          Effect.gen(function* () {
            if (!mayGrant(principal.role, role)) return yield* mayNotGrant(principal, role)
            const now = yield* Clock.currentTimeMillis
            const expiresAt = expiresInDays === undefined ? undefined : new Date(now + expiresInDays * DAY_MS).toISOString()
            const created = yield* tenancy.tokens.create({ name, role, createdBy: principal.actor, expiresAt })
            yield* audit.append({
              actor: principal.actor,
              action: "token.create",
              target: created.info.id,
              detail: { name, role, prefix: created.info.prefix, expiresAt: expiresAt ?? null }
            })
            return { token: created.token, info: created.info }
          })
        )
      )
      .handle("revoke", ({ path: { tokenId } }) =>
        acting((principal) =>
          Effect.gen(function* () {
            const found = (yield* tenancy.tokens.list).find((t) => t.id === tokenId)
            const notFound = new NotFound({ message: `no token ${tokenId} in this organisation (see GET /tokens)` })
            if (found === undefined) return yield* notFound
            if (!mayGrant(principal.role, found.role)) return yield* mayNotGrant(principal, found.role)
            if (found.revokedAt !== null) return
            if (!(yield* tenancy.tokens.revoke(tokenId))) return yield* notFound
            yield* audit.append({ actor: principal.actor, action: "token.revoke", target: tokenId, detail: { name: found.name, role: found.role } })
          })
        )
      )
  })
)

const AuditLive = HttpApiBuilder.group(RelaviumApi, "audit", (handlers) =>
  Effect.gen(function* () {
    const audit = yield* AuditLog
    return handlers.handle("list", ({ urlParams }) =>
      acting(() =>
        Effect.gen(function* () {
          const limit = urlParams.limit ?? DEFAULT_AUDIT_PAGE
          // One more than asked: whether there is a next page.
          const entries = yield* audit.list({ ...urlParams, limit: limit + 1 })
          const page = entries.slice(0, limit)
          return entries.length > limit ? { entries: page, next: page[page.length - 1]!.seq } : { entries: page }
        })
      )
    )
  })
)

/** Every tenancy group of `RelaviumApi`; needs `Tenancy` and `AuditLog`. */
export const layer = Layer.mergeAll(OrgLive, MembersLive, TokensLive, AuditLive)

/**
 * The tenancy routes: the caller's org, its members, its API tokens and its
 * audit trail. The action each route requires is in `routeActions`
 * (Routes.ts), printed in docs/permissions.md.
 *
 * The groups are made by `tenancyGroups` from the errors and the
 * `Authorization` middleware of Api.ts, which calls it once (Api.ts imports
 * this module, so this module imports only types from it: no import cycle).
 */
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { ParseResult, Schema } from "effect"
import { AuditEntry, Member, Role, TokenInfo } from "@relavium/ports"
import type { Authorization, BadRequest, Conflict, Forbidden, InternalError, NotFound } from "./Api.js"

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/** An email address: trimmed, lower-cased, at most 254 characters, `local@domain.tld`. */
export const Email = Schema.Trim.pipe(
  Schema.compose(Schema.Lowercase),
  Schema.maxLength(254, { message: () => "an email address of at most 254 characters" }),
  Schema.pattern(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { message: () => "an email address (name@example.com)" })
)

const TokenName = Schema.Trim.pipe(
  Schema.minLength(1, { message: () => "a token name must not be empty" }),
  Schema.maxLength(100, { message: () => "a token name of at most 100 characters" })
)

/** An ISO-8601 timestamp, normalised to `toISOString()` form (what the audit trail stores). */
export const Timestamp = Schema.transformOrFail(Schema.String.pipe(Schema.maxLength(64)), Schema.String, {
  strict: true,
  decode: (s, _, ast) => {
    const ms = /^\d{4}-\d{2}-\d{2}/.test(s) ? Date.parse(s) : Number.NaN
    return Number.isNaN(ms)
      ? ParseResult.fail(new ParseResult.Type(ast, s, "an ISO-8601 timestamp, e.g. 2026-01-31 or 2026-01-31T12:00:00Z"))
      : ParseResult.succeed(new Date(ms).toISOString())
  },
  encode: (s) => ParseResult.succeed(s)
})

const IntFromString = (min: number, max: number) =>
  Schema.NumberFromString.pipe(Schema.int(), Schema.between(min, max, { message: () => `an integer from ${min} to ${max}` }))

export const MAX_AUDIT_PAGE = 500
export const DEFAULT_AUDIT_PAGE = 50

export const AuditQueryParams = Schema.Struct({
  /** Only entries of this action, e.g. `token.create`. */
  action: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100))),
  /** Only entries by this actor (`token:<prefix>` or an email). */
  actor: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(320))),
  /** Entries at or after this time. */
  from: Schema.optional(Timestamp),
  /** Entries before this time. */
  to: Schema.optional(Timestamp),
  /** The `next` of the previous page: entries older than it. */
  before: Schema.optional(IntFromString(1, Number.MAX_SAFE_INTEGER)),
  /** Entries per page (default 50, at most 500). */
  limit: Schema.optional(IntFromString(1, MAX_AUDIT_PAGE))
})

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

export const OrgInfo = Schema.Struct({ id: Schema.String, name: Schema.String, createdAt: Schema.String })
export const MemberInfo = Schema.Struct(Member.fields)
export const TokenView = Schema.Struct(TokenInfo.fields)
export const AuditView = Schema.Struct(AuditEntry.fields)

export const CreatedTokenView = Schema.Struct({
  /** The token itself: shown in this answer only, never again (only its hash is kept). */
  token: Schema.Redacted(Schema.String),
  info: TokenView
})

export const AuditPage = Schema.Struct({
  entries: Schema.Array(AuditView),
  /** Pass as `before` for the next (older) page; absent on the last page. */
  next: Schema.optional(Schema.Number)
})

const emailPath = Schema.Struct({ email: Email })

// ---------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------

/** What the groups need from Api.ts. */
export interface TenancyApiParts {
  readonly Authorization: typeof Authorization
  readonly BadRequest: typeof BadRequest
  readonly Forbidden: typeof Forbidden
  readonly NotFound: typeof NotFound
  readonly Conflict: typeof Conflict
  readonly InternalError: typeof InternalError
}

export const tenancyGroups = (parts: TenancyApiParts) => {
  const { Authorization, BadRequest, Conflict, Forbidden, InternalError, NotFound } = parts

  const org = HttpApiGroup.make("org")
    .add(HttpApiEndpoint.get("get", "/org").addSuccess(OrgInfo).addError(NotFound))
    .addError(Forbidden)
    .addError(InternalError)
    .annotate(OpenApi.Description, "The caller's organisation")
    .middleware(Authorization)

  const members = HttpApiGroup.make("members")
    .add(HttpApiEndpoint.get("list", "/members").addSuccess(Schema.Array(MemberInfo)))
    .add(
      HttpApiEndpoint.post("add", "/members")
        .setPayload(Schema.Struct({ email: Email, role: Role }))
        .addSuccess(MemberInfo, { status: 201 })
        .addError(Conflict)
        .annotate(OpenApi.Description, "Adds a member with a role at or below the caller's; 409 when already a member")
    )
    .add(
      HttpApiEndpoint.patch("setRole", "/members/:email")
        .setPath(emailPath)
        .setPayload(Schema.Struct({ role: Role }))
        .addSuccess(MemberInfo)
        .addError(NotFound)
        .addError(Conflict)
        .annotate(OpenApi.Description, "Changes a member's role (both roles at or below the caller's); the last owner cannot be demoted (409)")
    )
    .add(
      HttpApiEndpoint.del("remove", "/members/:email")
        .setPath(emailPath)
        .addSuccess(HttpApiSchema.NoContent)
        .addError(NotFound)
        .addError(Conflict)
        .annotate(OpenApi.Description, "Removes a member whose role is at or below the caller's; the last owner cannot be removed (409)")
    )
    .addError(BadRequest)
    .addError(Forbidden)
    .addError(InternalError)
    .annotate(OpenApi.Description, "The members of the caller's organisation")
    .middleware(Authorization)

  const tokens = HttpApiGroup.make("tokens")
    .add(HttpApiEndpoint.get("list", "/tokens").addSuccess(Schema.Array(TokenView)))
    .add(
      HttpApiEndpoint.post("create", "/tokens")
        .setPayload(
          Schema.Struct({
            name: TokenName,
            role: Role,
            /** Days until the token stops working (default: never). */
            expiresInDays: Schema.optional(Schema.Int.pipe(Schema.between(1, 3650, { message: () => "an integer from 1 to 3650" })))
          })
        )
        .addSuccess(CreatedTokenView, { status: 201 })
        .annotate(OpenApi.Description, "Mints an API token with a role at or below the caller's; the token is in this answer only")
    )
    .add(
      HttpApiEndpoint.del("revoke", "/tokens/:tokenId")
        .setPath(Schema.Struct({ tokenId: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)) }))
        .addSuccess(HttpApiSchema.NoContent)
        .addError(NotFound)
        .annotate(OpenApi.Description, "Revokes a token of the caller's organisation; it stops working at once")
    )
    .addError(BadRequest)
    .addError(Forbidden)
    .addError(InternalError)
    .annotate(OpenApi.Description, "API tokens of the caller's organisation (only their prefixes are ever listed)")
    .middleware(Authorization)

  const audit = HttpApiGroup.make("audit")
    .add(HttpApiEndpoint.get("list", "/audit").setUrlParams(AuditQueryParams).addSuccess(AuditPage))
    .addError(BadRequest)
    .addError(Forbidden)
    .addError(InternalError)
    .annotate(OpenApi.Description, "The organisation's audit trail, newest first, paged with `next` → `before`")
    .middleware(Authorization)

  return { org, members, tokens, audit }
}

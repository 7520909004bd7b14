/**
 * Tenancy: the org a piece of work acts for, who may do what in it, and the
 * stores of organisations, members, API tokens and the audit trail.
 *
 * - `CurrentOrg` is read by every store on every statement (on Postgres it is
 *   set transaction-locally with `set_config('app.org_id', …, true)` and row
 *   level security does the filtering). Nothing provides it on the single-user
 *   monolith and the local CLI, so they act for the one org `local`; the api
 *   provides the caller's org per request, a worker the org of the run it
 *   executes.
 * - `permissions` is the permission table (docs/permissions.md prints it):
 *   every route names one `Action`, and a token's role must allow it.
 * - `Tenancy` and `AuditLog` are ports: memory layers here, SQL in
 *   @relavium/store. Their methods act for `CurrentOrg`, except `createOrg`
 *   (which makes a new org) and `tokens.resolve` (which finds the org of a
 *   token before any org is known).
 */
import { Context, Data, Effect, Layer, Option, Redacted, Ref, Schema } from "effect"
import { createHash, randomBytes, randomUUID } from "node:crypto"

// ---------------------------------------------------------------------------
// The org a fiber acts for

/** The org every store statement of this fiber runs for; `local` when none is provided. */
export class CurrentOrg extends Context.Reference<CurrentOrg>()("@relavium/ports/CurrentOrg", {
  defaultValue: (): { readonly orgId: string } => ({ orgId: LOCAL_ORG })
}) {}

/** The org of the single-user deployments (local CLI, monolith). */
export const LOCAL_ORG = "local"

/** Runs `effect` for `orgId`: every store statement inside it is scoped to that org. */
export const forOrg = (orgId: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, CurrentOrg, { orgId })

export const currentOrgId: Effect.Effect<string> = Effect.map(CurrentOrg, (current) => current.orgId)

// ---------------------------------------------------------------------------
// Roles and the permission table

export const Role = Schema.Literal("owner", "admin", "member", "viewer")
export type Role = typeof Role.Type

/** Every action a route can require. */
export const Action = Schema.Literal(
  "runs.read",
  "runs.start",
  "runs.cancel",
  "gates.decide",
  "workflows.read",
  "workflows.write",
  "chats.read",
  "chats.write",
  "keys.list",
  "keys.write",
  "members.read",
  "members.manage",
  "tokens.read",
  "tokens.manage",
  "audit.read",
  "usage.read",
  "triggers.read",
  "triggers.manage",
  "notifications.read",
  "notifications.manage",
  "org.manage"
)
export type Action = typeof Action.Type

const viewer: ReadonlyArray<Action> = ["runs.read", "workflows.read", "chats.read", "members.read", "usage.read", "triggers.read"]
const member: ReadonlyArray<Action> = [
  ...viewer,
  "runs.start",
  "runs.cancel",
  "gates.decide",
  "workflows.write",
  "chats.write",
  "keys.list"
]
// A webhook secret starts runs without a token, as long as it lives: admins make them, as they make tokens.
const admin: ReadonlyArray<Action> = [
  ...member,
  "keys.write",
  "members.manage",
  "tokens.read",
  "tokens.manage",
  "audit.read",
  "triggers.manage",
  "notifications.read",
  "notifications.manage"
]
const owner: ReadonlyArray<Action> = [...admin, "org.manage"]

/** The permission table: what each role may do. */
export const permissions: Readonly<Record<Role, ReadonlySet<Action>>> = {
  viewer: new Set(viewer),
  member: new Set(member),
  admin: new Set(admin),
  owner: new Set(owner)
}

export const can = (role: Role, action: Action): boolean => permissions[role].has(action)

/** Roles from most to least powerful; a caller may grant only roles at or below its own. */
export const roleRank: Readonly<Record<Role, number>> = { owner: 3, admin: 2, member: 1, viewer: 0 }

export const mayGrant = (granter: Role, granted: Role): boolean => roleRank[granter] >= roleRank[granted]

/** Who is calling: the org, the role, and what the audit trail names them. */
export interface Principal {
  readonly orgId: string
  readonly role: Role
  /** The token used, when the call came with one. */
  readonly tokenId: string | undefined
  /** `token:<prefix>` or a member's email: what audit entries record as the actor. */
  readonly actor: string
}

/** The caller of the current request; absent in processes that serve no requests. */
export class CurrentPrincipal extends Context.Tag("@relavium/ports/CurrentPrincipal")<CurrentPrincipal, Principal>() {}

// ---------------------------------------------------------------------------
// Records

const Timestamp = Schema.String

export class Org extends Schema.Class<Org>("Org")({
  id: Schema.String,
  name: Schema.String,
  createdAt: Timestamp
}) {}

export class Member extends Schema.Class<Member>("Member")({
  userId: Schema.String,
  email: Schema.String,
  role: Role,
  createdAt: Timestamp
}) {}

export class TokenInfo extends Schema.Class<TokenInfo>("TokenInfo")({
  id: Schema.String,
  name: Schema.String,
  /** The first characters of the token, shown so a user can tell tokens apart; never the secret. */
  prefix: Schema.String,
  role: Role,
  createdAt: Timestamp,
  createdBy: Schema.String,
  expiresAt: Schema.NullOr(Timestamp),
  lastUsedAt: Schema.NullOr(Timestamp),
  revokedAt: Schema.NullOr(Timestamp)
}) {}

export class AuditEntry extends Schema.Class<AuditEntry>("AuditEntry")({
  /** Increasing per org: the paging cursor. */
  seq: Schema.Number,
  at: Timestamp,
  actor: Schema.String,
  /** e.g. `token.create`, `member.role`, `key.set`, `run.start`, `gate.decide`. */
  action: Schema.String,
  /** What it acted on: a token id, an email, a provider, a run id … */
  target: Schema.String,
  /** Anything else worth keeping; never a secret. */
  detail: Schema.Record({ key: Schema.String, value: Schema.Unknown })
}) {}

export interface AuditInput {
  readonly actor: string
  readonly action: string
  readonly target: string
  readonly detail?: Readonly<Record<string, unknown>> | undefined
}

export interface AuditQuery {
  readonly action?: string | undefined
  readonly actor?: string | undefined
  /** ISO timestamps, inclusive lower and exclusive upper bound. */
  readonly from?: string | undefined
  readonly to?: string | undefined
  /** Entries with `seq` below this one (newest first paging). */
  readonly before?: number | undefined
  readonly limit?: number | undefined
}

export class TenancyError extends Data.TaggedError("TenancyError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * A change that would leave an organisation without an owner: removing or demoting its last one.
 * The store checks it in the same transaction as the change, so two concurrent changes can never
 * both pass.
 */
export class LastOwner extends Data.TaggedError("LastOwner")<{
  readonly email: string
  readonly change: "removed" | "demoted"
}> {
  override get message(): string {
    return `${this.email} is the last owner and cannot be ${this.change}; make another member an owner first`
  }
}

// ---------------------------------------------------------------------------
// Tokens

/** Tokens are `rlv_` and 256 random bits in base64url. */
export const TOKEN_PREFIX = "rlv_"
/** How many characters of a token are kept visible (`rlv_` and 8 more). */
export const VISIBLE_PREFIX_LENGTH = 12

export const mintToken = (): Redacted.Redacted<string> =>
  Redacted.make(`${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`)

/** What is stored in place of a token: its SHA-256 (the secret has 256 bits, so no salt or stretching is needed). */
export const hashToken = (token: Redacted.Redacted<string>): string =>
  createHash("sha256").update(Redacted.value(token), "utf8").digest("hex")

export const visiblePrefix = (token: Redacted.Redacted<string>): string =>
  Redacted.value(token).slice(0, VISIBLE_PREFIX_LENGTH)

/** A token's shape, checked before any lookup. */
export const looksLikeToken = (token: Redacted.Redacted<string>): boolean =>
  /^rlv_[A-Za-z0-9_-]{43}$/.test(Redacted.value(token))

/** Org ids are random, so one org cannot guess another's. */
export const newOrgId = (): string => `org_${randomUUID().replaceAll("-", "")}`

export const newUserId = (): string => `usr_${randomUUID().replaceAll("-", "")}`

export const newTokenId = (): string => `tok_${randomUUID().replaceAll("-", "")}`

/**
 * An email as members are keyed by: trimmed and lower case; a `TenancyError` for anything that
 * is not `local@domain` (one `@`, no spaces, at most 254 characters).
 */
export const normaliseEmail = (email: string): Effect.Effect<string, TenancyError> => {
  const normal = email.trim().toLowerCase()
  return normal.length <= 254 && /^[^\s@]+@[^\s@]+$/.test(normal)
    ? Effect.succeed(normal)
    : Effect.fail(new TenancyError({ message: `${JSON.stringify(email.slice(0, 80))} is not an email address` }))
}

/** An org's name: trimmed, not empty, at most 200 characters. */
export const checkOrgName = (name: string): Effect.Effect<string, TenancyError> => {
  const trimmed = name.trim()
  return trimmed.length > 0 && trimmed.length <= 200
    ? Effect.succeed(trimmed)
    : Effect.fail(new TenancyError({ message: "an organisation's name must be 1 to 200 characters" }))
}

/** A token's expiry as stored (ISO-8601 UTC, so it compares in time order as text); none when absent. */
export const normaliseExpiry = (expiresAt: string | undefined): Effect.Effect<string | null, TenancyError> => {
  if (expiresAt === undefined) return Effect.succeed(null)
  const ms = Date.parse(expiresAt)
  return Number.isNaN(ms)
    ? Effect.fail(new TenancyError({ message: `a token's expiry must be an ISO-8601 timestamp, not ${JSON.stringify(expiresAt.slice(0, 80))}` }))
    : Effect.succeed(new Date(ms).toISOString())
}

/** How many audit entries a list returns: 100 unless asked, never more than 1000. */
export const auditLimit = (limit: number | undefined): number =>
  limit === undefined || !Number.isFinite(limit) ? 100 : Math.min(1000, Math.max(0, Math.trunc(limit)))

export interface CreateTokenInput {
  readonly name: string
  readonly role: Role
  readonly createdBy: string
  readonly expiresAt?: string | undefined
}

export interface CreatedToken {
  /** Shown once; only its hash is stored. */
  readonly token: Redacted.Redacted<string>
  readonly info: TokenInfo
}

// ---------------------------------------------------------------------------
// The ports

export class Tenancy extends Context.Tag("@relavium/ports/Tenancy")<
  Tenancy,
  {
    /** A new org with a random id and its first owner token (for `createdBy`). */
    readonly createOrg: (name: string, owner: { readonly email: string }) => Effect.Effect<{ readonly org: Org; readonly token: CreatedToken }, TenancyError>
    /** The current org, if it exists. */
    readonly org: Effect.Effect<Option.Option<Org>, TenancyError>
    readonly members: {
      readonly add: (email: string, role: Role) => Effect.Effect<Member, TenancyError>
      readonly list: Effect.Effect<ReadonlyArray<Member>, TenancyError>
      /** Refuses (`LastOwner`) to remove the org's last owner. */
      readonly remove: (email: string) => Effect.Effect<boolean, TenancyError | LastOwner>
      /** Refuses (`LastOwner`) to demote the org's last owner. */
      readonly setRole: (email: string, role: Role) => Effect.Effect<Option.Option<Member>, TenancyError | LastOwner>
    }
    readonly tokens: {
      readonly create: (input: CreateTokenInput) => Effect.Effect<CreatedToken, TenancyError>
      readonly list: Effect.Effect<ReadonlyArray<TokenInfo>, TenancyError>
      /** Marks the token revoked; false when the current org has no such token. */
      readonly revoke: (tokenId: string) => Effect.Effect<boolean, TenancyError>
      /**
       * The principal of a live token (not expired, not revoked) in any org, recording its use;
       * none for anything else, with no hint of why.
       */
      readonly resolve: (token: Redacted.Redacted<string>) => Effect.Effect<Option.Option<Principal>, TenancyError>
    }
  }
>() {}

export class AuditLog extends Context.Tag("@relavium/ports/AuditLog")<
  AuditLog,
  {
    /** Appends one entry to the current org's trail; entries are never changed or removed. */
    readonly append: (entry: AuditInput) => Effect.Effect<void, TenancyError>
    /** The current org's entries, newest first. */
    readonly list: (query: AuditQuery) => Effect.Effect<ReadonlyArray<AuditEntry>, TenancyError>
  }
>() {}

// ---------------------------------------------------------------------------
// Memory layers (tests and the reference semantics)

interface MemoryOrg {
  readonly org: Org
  /** By normalised email. */
  readonly members: Map<string, Member>
  readonly tokens: Map<string, { readonly hash: string; info: TokenInfo }>
  readonly audit: Array<AuditEntry>
}

/** The Clock's time as the ISO text records carry. */
export const isoNow: Effect.Effect<string> = Effect.map(Effect.clockWith((clock) => clock.currentTimeMillis), (ms) => new Date(ms).toISOString())
const now = isoNow

/** A new token for `input`: the secret (shown once), its record, and the hash stored in its place. */
export const issueToken = (input: CreateTokenInput) =>
  Effect.gen(function* () {
    const expiresAt = yield* normaliseExpiry(input.expiresAt)
    const token = mintToken()
    const info = new TokenInfo({
      id: newTokenId(),
      name: input.name,
      prefix: visiblePrefix(token),
      role: input.role,
      createdAt: yield* isoNow,
      createdBy: input.createdBy,
      expiresAt,
      lastUsedAt: null,
      revokedAt: null
    })
    return { token, info, hash: hashToken(token) }
  })

/** Members in the order they joined (then by email); tokens in the order they were made (then by id). */
const byJoined = (a: Member, b: Member) => (a.createdAt === b.createdAt ? (a.email < b.email ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1)
const byCreated = (a: TokenInfo, b: TokenInfo) => (a.createdAt === b.createdAt ? (a.id < b.id ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1)

/** Whether `member` is the only owner among `members`. */
const isLastOwner = (members: Iterable<Member>, member: Member): boolean =>
  member.role === "owner" && [...members].filter((m) => m.role === "owner").length <= 1

/**
 * A token's last use is recorded to the minute: resolving it again within a minute writes nothing,
 * so a busy token (a gateway serving many requests with it) never turns every request into a write.
 */
export const lastUseResolutionMs = 60_000

/** Whether a use at `at` moves a token's `lastUsedAt` (never set, or set a minute or more before). */
export const lastUseIsStale = (lastUsedAt: string | null, at: string): boolean =>
  lastUsedAt === null || Date.parse(at) - Date.parse(lastUsedAt) >= lastUseResolutionMs

/** Both ports in memory, sharing one state; the org `local` (of the single-user deployments) exists from the start. */
export const layerTenancyMemory: Layer.Layer<Tenancy | AuditLog> = Layer.effectContext(
  Effect.gen(function* () {
    // The org `local` exists from the start, as on SQL: the single-user deployments act for it.
    const local: MemoryOrg = { org: new Org({ id: LOCAL_ORG, name: LOCAL_ORG, createdAt: yield* now }), members: new Map(), tokens: new Map(), audit: [] }
    const state = yield* Ref.make(new Map<string, MemoryOrg>([[LOCAL_ORG, local]]))
    // People are global: one user id per email, whichever orgs it belongs to.
    const users = new Map<string, string>()
    const userIdOf = (email: string) => {
      const known = users.get(email)
      if (known !== undefined) return known
      const id = newUserId()
      users.set(email, id)
      return id
    }
    const current = Effect.gen(function* () {
      const orgId = yield* currentOrgId
      const orgs = yield* Ref.get(state)
      const found = orgs.get(orgId)
      if (found === undefined) return yield* new TenancyError({ message: `no organisation ${orgId}` })
      return found
    })
    const createToken = (entry: MemoryOrg, input: CreateTokenInput) =>
      Effect.map(issueToken(input), ({ hash, info, token }): CreatedToken => {
        entry.tokens.set(info.id, { hash, info })
        return { token, info }
      })
    const tenancy = Tenancy.of({
      createOrg: (name, ownerOf) =>
        Effect.gen(function* () {
          const orgName = yield* checkOrgName(name)
          const email = yield* normaliseEmail(ownerOf.email)
          const at = yield* now
          const org = new Org({ id: newOrgId(), name: orgName, createdAt: at })
          const entry: MemoryOrg = { org, members: new Map(), tokens: new Map(), audit: [] }
          entry.members.set(email, new Member({ userId: userIdOf(email), email, role: "owner", createdAt: at }))
          const token = yield* createToken(entry, { name: "first owner token", role: "owner", createdBy: email })
          yield* Ref.update(state, (orgs) => new Map(orgs).set(org.id, entry))
          return { org, token }
        }),
      org: Effect.map(Effect.option(current), Option.map((entry) => entry.org)),
      members: {
        add: (email, role) =>
          Effect.gen(function* () {
            const normal = yield* normaliseEmail(email)
            const entry = yield* current
            if (entry.members.has(normal)) return yield* new TenancyError({ message: `${normal} is already a member` })
            const added = new Member({ userId: userIdOf(normal), email: normal, role, createdAt: yield* now })
            entry.members.set(normal, added)
            return added
          }),
        list: Effect.map(current, (entry) => [...entry.members.values()].sort(byJoined)),
        remove: (email) =>
          Effect.flatMap(normaliseEmail(email), (normal) =>
            Effect.flatMap(current, (entry) => {
              const found = entry.members.get(normal)
              if (found !== undefined && isLastOwner(entry.members.values(), found)) {
                return Effect.fail(new LastOwner({ email: normal, change: "removed" }))
              }
              return Effect.succeed(entry.members.delete(normal))
            })
          ),
        setRole: (email, role) =>
          Effect.flatMap(normaliseEmail(email), (normal) =>
            Effect.flatMap(current, (entry) => {
              const found = entry.members.get(normal)
              if (found === undefined) return Effect.succeed(Option.none())
              if (role !== "owner" && isLastOwner(entry.members.values(), found)) {
                return Effect.fail(new LastOwner({ email: normal, change: "demoted" }))
              }
              const changed = new Member({ ...found, role })
              entry.members.set(normal, changed)
              return Effect.succeed(Option.some(changed))
            })
          )
      },
      tokens: {
        create: (input) => Effect.flatMap(current, (entry) => createToken(entry, input)),
        list: Effect.map(current, (entry) => [...entry.tokens.values()].map((t) => t.info).sort(byCreated)),
        revoke: (tokenId) =>
          Effect.flatMap(current, (entry) =>
            Effect.map(now, (at) => {
              const found = entry.tokens.get(tokenId)
              if (found === undefined) return false
              // Revoking a revoked token keeps the time it was first revoked.
              if (found.info.revokedAt === null) found.info = new TokenInfo({ ...found.info, revokedAt: at })
              return true
            })
          ),
        resolve: (token) =>
          Effect.gen(function* () {
            if (!looksLikeToken(token)) return Option.none()
            const hash = hashToken(token)
            const at = yield* now
            for (const entry of (yield* Ref.get(state)).values()) {
              for (const stored of entry.tokens.values()) {
                if (stored.hash !== hash) continue
                const info = stored.info
                if (info.revokedAt !== null || (info.expiresAt !== null && info.expiresAt <= at)) return Option.none()
                if (lastUseIsStale(info.lastUsedAt, at)) stored.info = new TokenInfo({ ...info, lastUsedAt: at })
                return Option.some<Principal>({ orgId: entry.org.id, role: info.role, tokenId: info.id, actor: `token:${info.prefix}` })
              }
            }
            return Option.none()
          })
      }
    })
    const audit = AuditLog.of({
      append: (input) =>
        Effect.flatMap(current, (entry) =>
          Effect.map(now, (at) => {
            entry.audit.push(
              new AuditEntry({ seq: entry.audit.length + 1, at, actor: input.actor, action: input.action, target: input.target, detail: { ...input.detail } })
            )
          })
        ),
      list: (query) =>
        Effect.map(current, (entry) =>
          entry.audit
            .filter(
              (e) =>
                (query.action === undefined || e.action === query.action) &&
                (query.actor === undefined || e.actor === query.actor) &&
                (query.from === undefined || e.at >= query.from) &&
                (query.to === undefined || e.at < query.to) &&
                (query.before === undefined || e.seq < query.before)
            )
            .reverse()
            .slice(0, auditLimit(query.limit))
        )
    })
    return Context.make(Tenancy, tenancy).pipe(Context.add(AuditLog, audit))
  })
)

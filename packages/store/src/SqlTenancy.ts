/**
 * `Tenancy` and `AuditLog` on SQL (SQLite and Postgres; tables of migration `5_tenancy`), with
 * the semantics of the memory layer in @relavium/ports.
 *
 * Every statement names the org it acts for (`org_id = currentOrgId`) even though, on Postgres,
 * row level security filters by the org the transaction set: the explicit filter is the only one
 * on SQLite and a second one on Postgres. Two lookups happen before the org's rows are visible,
 * and name what they look for in a transaction-local setting the policies read:
 * `tokens.resolve` names the token's hash (`app.token_hash`), `members.add` and `createOrg` the
 * email of the person they add (`app.user_email`, as users are shared by orgs).
 *
 * Tokens are stored as their SHA-256 and a visible prefix; the token itself is returned once by
 * `create` and never stored, logged or put in an error. Timestamps are ISO-8601 text from the
 * Effect `Clock`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer, Option } from "effect"
import {
  AuditEntry,
  AuditLog,
  auditLimit,
  checkOrgName,
  type CreatedToken,
  type CreateTokenInput,
  currentOrgId,
  forOrg,
  hashToken,
  isoNow,
  issueToken,
  LastOwner,
  lastUseIsStale,
  lastUseResolutionMs,
  looksLikeToken,
  Member,
  newOrgId,
  newUserId,
  normaliseEmail,
  Org,
  type Principal,
  type Role,
  Tenancy,
  TenancyError,
  TokenInfo
} from "@relavium/ports"
import * as Database from "./Database.js"

interface OrgRow {
  readonly org_id: string
  readonly name: string
  readonly created_at: string
}

interface MemberRow {
  readonly user_id: string
  readonly email: string
  readonly role: Role
  readonly created_at: string
}

interface TokenRow {
  readonly token_id: string
  readonly name: string
  readonly prefix: string
  readonly role: Role
  readonly created_by: string
  readonly created_at: string
  readonly expires_at: string | null
  readonly last_used_at: string | null
  readonly revoked_at: string | null
}

interface AuditRow {
  readonly seq: number | string | bigint
  readonly at: string
  readonly actor: string
  readonly action: string
  readonly target: string
  readonly detail: unknown
}

const now = isoNow

const toMember = (row: MemberRow) =>
  new Member({ userId: row.user_id, email: row.email, role: row.role, createdAt: row.created_at })

const toToken = (row: TokenRow) =>
  new TokenInfo({
    id: row.token_id,
    name: row.name,
    prefix: row.prefix,
    role: row.role,
    createdAt: row.created_at,
    createdBy: row.created_by,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at
  })

const toEntry = (row: AuditRow) =>
  new AuditEntry({
    seq: Number(row.seq),
    at: row.at,
    actor: row.actor,
    action: row.action,
    target: row.target,
    detail: (typeof row.detail === "string" ? JSON.parse(row.detail) : row.detail) as Record<string, unknown>
  })

const memberColumns = "u.user_id, u.email, m.role, m.created_at"
const tokenColumns = "token_id, name, prefix, role, created_by, created_at, expires_at, last_used_at, revoked_at"

/** Both ports on the `SqlClient` provided (migrated: see `Database`). */
export const make: Effect.Effect<{ readonly tenancy: Tenancy["Type"]; readonly audit: AuditLog["Type"] }, never, SqlClient.SqlClient> =
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const database = Database.describeDatabase(sql)
    const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })

    /** A SqlError as a TenancyError naming what failed; the cause never holds a token (only hashes are sent). */
    const failed =
      (what: string) =>
      <A, R>(effect: Effect.Effect<A, SqlError | TenancyError, R>): Effect.Effect<A, TenancyError, R> =>
        Effect.catchTag(effect, "SqlError", (cause) =>
          Effect.fail(new TenancyError({ message: `${database}: ${what} failed: ${Database.describeCause(cause)}`, cause }))
        )

    const failedOrLastOwner =
      (what: string) =>
      <A, R>(effect: Effect.Effect<A, SqlError | TenancyError | LastOwner, R>): Effect.Effect<A, TenancyError | LastOwner, R> =>
        Effect.catchTag(effect, "SqlError", (cause) =>
          Effect.fail(new TenancyError({ message: `${database}: ${what} failed: ${Database.describeCause(cause)}`, cause }))
        )

    /** Sets a transaction-local setting the Postgres policies read (SQLite has none). */
    const setLocal = (name: "app.user_email" | "app.token_hash", value: string) =>
      isPg ? Effect.asVoid(sql`SELECT set_config(${name}, ${value}, true)`) : Effect.void

    const requireOrg = (orgId: string) =>
      Effect.flatMap(sql<{ org_id: string }>`SELECT org_id FROM orgs WHERE org_id = ${orgId}`, (rows) =>
        rows.length === 0 ? Effect.fail(new TenancyError({ message: `no organisation ${orgId}` })) : Effect.void
      )

    /**
     * Takes the org's row for the rest of the transaction (a no-op update, on both dialects), so
     * membership changes of one org happen one after the other: the owner count each one checks
     * cannot change under it.
     */
    const lockOrg = (orgId: string) =>
      Effect.flatMap(sql<{ org_id: string }>`UPDATE orgs SET audit_seq = audit_seq WHERE org_id = ${orgId} RETURNING org_id`, (rows) =>
        rows.length === 0 ? Effect.fail(new TenancyError({ message: `no organisation ${orgId}` })) : Effect.void
      )

    /** Fails (rolling the transaction back) when the change just made left the org without an owner. */
    const keepsAnOwner = (orgId: string, email: string, change: "removed" | "demoted") =>
      Effect.flatMap(
        sql<{ owners: number | string | bigint }>`SELECT count(*) AS owners FROM memberships WHERE org_id = ${orgId} AND role = 'owner'`,
        (rows) => (Number(rows[0]?.owners ?? 0) === 0 ? Effect.fail(new LastOwner({ email, change })) : Effect.void)
      )

    /** The user id of `email`, inserting the person when no org has them yet (inside a transaction). */
    const userIdOf = (email: string, at: string) =>
      Effect.gen(function* () {
        yield* setLocal("app.user_email", email)
        const find = sql<{ user_id: string }>`SELECT user_id FROM users WHERE email = ${email}`
        const known = yield* find
        if (known[0] !== undefined) return known[0].user_id
        yield* sql`INSERT INTO users ${sql.insert({ user_id: newUserId(), email, created_at: at })} ON CONFLICT (email) DO NOTHING`
        // Another transaction may have inserted them first: read whichever row won.
        const inserted = yield* find
        return inserted[0]!.user_id
      })

    const insertToken = (orgId: string, input: CreateTokenInput) =>
      Effect.gen(function* () {
        const { hash, info, token } = yield* issueToken(input)
        yield* sql`INSERT INTO api_tokens ${sql.insert({
          org_id: orgId,
          token_id: info.id,
          name: info.name,
          prefix: info.prefix,
          token_hash: hash,
          role: info.role,
          created_by: info.createdBy,
          created_at: info.createdAt,
          expires_at: info.expiresAt
        })}`
        return { token, info } satisfies CreatedToken
      })

    /** Reads `orgId` and the member row of `email` in it. */
    const memberOf = (orgId: string, email: string) =>
      sql<MemberRow>`SELECT ${sql.unsafe(memberColumns)} FROM memberships m JOIN users u ON u.user_id = m.user_id
        WHERE m.org_id = ${orgId} AND u.email = ${email}`

    const tenancy = Tenancy.of({
      createOrg: (name, owner) =>
        Effect.gen(function* () {
          const orgName = yield* checkOrgName(name)
          const email = yield* normaliseEmail(owner.email)
          const orgId = newOrgId()
          const at = yield* now
          return yield* forOrg(orgId)(
            sql.withTransaction(
              Effect.gen(function* () {
                yield* sql`INSERT INTO orgs ${sql.insert({ org_id: orgId, name: orgName, created_at: at, audit_seq: 0 })}`
                const userId = yield* userIdOf(email, at)
                yield* sql`INSERT INTO memberships ${sql.insert({ org_id: orgId, user_id: userId, role: "owner", created_at: at })}`
                const token = yield* insertToken(orgId, { name: "first owner token", role: "owner", createdBy: email })
                return { org: new Org({ id: orgId, name: orgName, createdAt: at }), token }
              })
            )
          )
        }).pipe(failed("creating an organisation")),

      org: Effect.gen(function* () {
        const orgId = yield* currentOrgId
        const rows = yield* sql<OrgRow>`SELECT org_id, name, created_at FROM orgs WHERE org_id = ${orgId}`
        return Option.map(Option.fromNullable(rows[0]), (row) => new Org({ id: row.org_id, name: row.name, createdAt: row.created_at }))
      }).pipe(failed("reading the organisation")),

      members: {
        add: (email, role) =>
          Effect.gen(function* () {
            const normal = yield* normaliseEmail(email)
            const orgId = yield* currentOrgId
            const at = yield* now
            return yield* sql.withTransaction(
              Effect.gen(function* () {
                yield* requireOrg(orgId)
                if ((yield* memberOf(orgId, normal)).length > 0) {
                  return yield* new TenancyError({ message: `${normal} is already a member` })
                }
                const userId = yield* userIdOf(normal, at)
                yield* sql`INSERT INTO memberships ${sql.insert({ org_id: orgId, user_id: userId, role, created_at: at })}`
                return new Member({ userId, email: normal, role, createdAt: at })
              })
            )
          }).pipe(failed("adding a member")),

        list: Effect.gen(function* () {
          const orgId = yield* currentOrgId
          yield* requireOrg(orgId)
          const rows = yield* sql<MemberRow>`SELECT ${sql.unsafe(memberColumns)} FROM memberships m JOIN users u ON u.user_id = m.user_id
            WHERE m.org_id = ${orgId} ORDER BY m.created_at, u.email`
          return rows.map(toMember)
        }).pipe(failed("listing members")),

        remove: (email) =>
          Effect.gen(function* () {
            const normal = yield* normaliseEmail(email)
            const orgId = yield* currentOrgId
            return yield* sql.withTransaction(
              Effect.gen(function* () {
                yield* lockOrg(orgId)
                const removed = yield* sql<{ user_id: string }>`DELETE FROM memberships WHERE org_id = ${orgId}
                  AND user_id IN (SELECT user_id FROM users WHERE email = ${normal}) RETURNING user_id`
                yield* keepsAnOwner(orgId, normal, "removed")
                return removed.length > 0
              })
            )
          }).pipe(failedOrLastOwner("removing a member")),

        setRole: (email, role) =>
          Effect.gen(function* () {
            const normal = yield* normaliseEmail(email)
            const orgId = yield* currentOrgId
            return yield* sql.withTransaction(
              Effect.gen(function* () {
                yield* lockOrg(orgId)
                const changed = yield* sql<{ user_id: string; created_at: string }>`UPDATE memberships SET role = ${role}
                  WHERE org_id = ${orgId} AND user_id IN (SELECT user_id FROM users WHERE email = ${normal})
                  RETURNING user_id, created_at`
                yield* keepsAnOwner(orgId, normal, "demoted")
                return Option.map(Option.fromNullable(changed[0]), (row) =>
                  new Member({ userId: row.user_id, email: normal, role, createdAt: row.created_at })
                )
              })
            )
          }).pipe(failedOrLastOwner("changing a member's role"))
      },

      tokens: {
        create: (input) =>
          Effect.gen(function* () {
            const orgId = yield* currentOrgId
            return yield* sql.withTransaction(Effect.zipRight(requireOrg(orgId), insertToken(orgId, input)))
          }).pipe(failed("creating a token")),

        list: Effect.gen(function* () {
          const orgId = yield* currentOrgId
          yield* requireOrg(orgId)
          const rows = yield* sql<TokenRow>`SELECT ${sql.unsafe(tokenColumns)} FROM api_tokens WHERE org_id = ${orgId}
            ORDER BY created_at, token_id`
          return rows.map(toToken)
        }).pipe(failed("listing tokens")),

        revoke: (tokenId) =>
          Effect.gen(function* () {
            const orgId = yield* currentOrgId
            const at = yield* now
            return yield* sql.withTransaction(
              Effect.gen(function* () {
                yield* requireOrg(orgId)
                // Revoking a revoked token keeps the time it was first revoked.
                const rows = yield* sql<{ token_id: string }>`UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ${at})
                  WHERE org_id = ${orgId} AND token_id = ${tokenId} RETURNING token_id`
                return rows.length > 0
              })
            )
          }).pipe(failed("revoking a token")),

        resolve: (token) =>
          Effect.gen(function* () {
            if (!looksLikeToken(token)) return Option.none<Principal>()
            const hash = hashToken(token)
            const at = yield* now
            // A live token is found, and its use recorded at most once a minute (`lastUseIsStale`):
            // a busy token must not make every request a write on one row.
            const rows = yield* sql.withTransaction(
              Effect.gen(function* () {
                yield* setLocal("app.token_hash", hash)
                const found = yield* sql<{ org_id: string; token_id: string; prefix: string; role: Role; last_used_at: string | null }>`SELECT org_id, token_id, prefix, role, last_used_at FROM api_tokens
                  WHERE token_hash = ${hash} AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ${at})`
                const row = found[0]
                if (row !== undefined && lastUseIsStale(row.last_used_at, at)) {
                  yield* sql`UPDATE api_tokens SET last_used_at = ${at}
                    WHERE token_hash = ${hash} AND (last_used_at IS NULL OR last_used_at <= ${new Date(Date.parse(at) - lastUseResolutionMs).toISOString()})`
                }
                return found
              })
            )
            return Option.map(
              Option.fromNullable(rows[0]),
              (row): Principal => ({ orgId: row.org_id, role: row.role, tokenId: row.token_id, actor: `token:${row.prefix}` })
            )
          }).pipe(failed("resolving a token"))
      }
    })

    const audit = AuditLog.of({
      append: (input) =>
        Effect.gen(function* () {
          const orgId = yield* currentOrgId
          const at = yield* now
          const detail = JSON.stringify({ ...input.detail })
          yield* sql.withTransaction(
            Effect.gen(function* () {
              // The org's row is the counter: concurrent appends wait on it and never share a number.
              const counted = yield* sql<{ audit_seq: number | string | bigint }>`UPDATE orgs SET audit_seq = audit_seq + 1
                WHERE org_id = ${orgId} RETURNING audit_seq`
              if (counted[0] === undefined) return yield* new TenancyError({ message: `no organisation ${orgId}` })
              yield* sql`INSERT INTO audit_log ${sql.insert({
                org_id: orgId,
                seq: Number(counted[0].audit_seq),
                at,
                actor: input.actor,
                action: input.action,
                target: input.target,
                detail
              })}`
            })
          )
        }).pipe(failed("appending to the audit log")),

      list: (query) =>
        Effect.gen(function* () {
          const orgId = yield* currentOrgId
          yield* requireOrg(orgId)
          const where = [sql`org_id = ${orgId}`]
          if (query.action !== undefined) where.push(sql`action = ${query.action}`)
          if (query.actor !== undefined) where.push(sql`actor = ${query.actor}`)
          if (query.from !== undefined) where.push(sql`at >= ${query.from}`)
          if (query.to !== undefined) where.push(sql`at < ${query.to}`)
          if (query.before !== undefined) where.push(sql`seq < ${query.before}`)
          const rows = yield* sql<AuditRow>`SELECT seq, at, actor, action, target, detail FROM audit_log
            WHERE ${sql.and(where)} ORDER BY seq DESC LIMIT ${auditLimit(query.limit)}`
          return rows.map(toEntry)
        }).pipe(failed("reading the audit log"))
    })

    return { tenancy, audit }
  })

/** `Tenancy` and `AuditLog` on the `SqlClient` provided. */
export const layer: Layer.Layer<Tenancy | AuditLog, never, SqlClient.SqlClient> = Layer.effectContext(
  Effect.map(make, ({ audit, tenancy }) => Context.make(Tenancy, tenancy).pipe(Context.add(AuditLog, audit)))
)

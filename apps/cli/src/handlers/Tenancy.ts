/**
 * `relavium org|token|member|audit`: an organisation's tokens, members and
 * audit trail, through a server's API (`--server`, as the token's role: the
 * server checks what it may do) or directly on the database as its operator
 * (`--database-url … --org ID`: every right, the same rules — roles are
 * checked by the server only, but the last owner stays and each change is
 * audited). Both print the same: aligned tables, or JSON with `--json`.
 * Input is checked with the API's own schemas before anything is sent, so bad
 * input is exit 2 with the same messages either way.
 */
import { Console, Effect, Option, ParseResult, Redacted, Schema } from "effect"
import { AuditLog, forOrg, type LastOwner, type Role, Tenancy, type TenancyError } from "@relavium/ports"
import { TenancyApi } from "@relavium/server"
import type { TenancyArgs } from "../commands/Tenancy.js"
import { withRemote } from "../LazyRemote.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"
import type * as Remote from "../Remote.js"
import * as TenancyDb from "../runtime/TenancyDb.js"

const problem = (...args: ConstructorParameters<typeof UsageProblem>) => Effect.fail(new UsageProblem(...args))

type TokenRow = typeof TenancyApi.TokenView.Type
type MemberRow = typeof TenancyApi.MemberInfo.Type
type AuditPage = typeof TenancyApi.AuditPage.Type
interface AuditFilter {
  readonly action?: string | undefined
  readonly actor?: string | undefined
  readonly from?: string | undefined
  readonly limit: number
}

/** What every command needs, whichever way the data is reached. */
interface Access {
  readonly createToken: (input: { name: string; role: Role; expiresInDays?: number | undefined }) => Effect.Effect<{ readonly token: Redacted.Redacted<string>; readonly info: TokenRow }, UsageProblem>
  readonly listTokens: Effect.Effect<ReadonlyArray<TokenRow>, UsageProblem>
  readonly revokeToken: (tokenId: string) => Effect.Effect<void, UsageProblem>
  readonly addMember: (email: string, role: Role) => Effect.Effect<MemberRow, UsageProblem>
  readonly listMembers: Effect.Effect<ReadonlyArray<MemberRow>, UsageProblem>
  readonly removeMember: (email: string) => Effect.Effect<void, UsageProblem>
  readonly setRole: (email: string, role: Role) => Effect.Effect<MemberRow, UsageProblem>
  readonly audit: (filter: AuditFilter) => Effect.Effect<AuditPage, UsageProblem>
}

// ---------------------------------------------------------------------------
// Input, checked with the API's schemas

const check = <A, I>(schema: Schema.Schema<A, I>, value: I, what: string) =>
  Schema.decodeUnknown(schema)(value).pipe(
    Effect.mapError((error) => {
      const first = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
      return new UsageProblem(`${what} ${JSON.stringify(value)}: ${first?.message ?? error.message}`)
    })
  )

const TokenName = Schema.Trim.pipe(Schema.minLength(1, { message: () => "must not be empty" }), Schema.maxLength(100))
const Days = Schema.Int.pipe(Schema.between(1, 3650, { message: () => "an integer from 1 to 3650" }))
const Limit = Schema.Int.pipe(Schema.between(1, TenancyApi.MAX_AUDIT_PAGE, { message: () => `an integer from 1 to ${TenancyApi.MAX_AUDIT_PAGE}` }))

// ---------------------------------------------------------------------------
// Through the API

const remoteAccess = (remote: Remote.Remote): Access => ({
  createToken: (payload) => remote.call(remote.api.tokens.create({ payload })),
  listTokens: remote.call(remote.api.tokens.list()),
  revokeToken: (tokenId) => remote.call(remote.api.tokens.revoke({ path: { tokenId } })),
  addMember: (email, role) => remote.call(remote.api.members.add({ payload: { email, role } })),
  listMembers: remote.call(remote.api.members.list()),
  removeMember: (email) => remote.call(remote.api.members.remove({ path: { email } })),
  setRole: (email, role) => remote.call(remote.api.members.setRole({ path: { email }, payload: { role } })),
  audit: (filter) => remote.call(remote.api.audit.list({ urlParams: filter }))
})

// ---------------------------------------------------------------------------
// On the database, as its operator

const OPERATOR = "operator"
const DAY_MS = 24 * 60 * 60 * 1000

const store = <A>(effect: Effect.Effect<A, TenancyError>) => Effect.mapError(effect, (e) => new UsageProblem(e.message, "store"))

const databaseAccess = (tenancy: Tenancy["Type"], log: AuditLog["Type"]): Access => {
  const audit = (action: string, target: string, detail: Record<string, unknown>) => store(log.append({ actor: OPERATOR, action, target, detail }))
  const findMember = (email: string) =>
    Effect.flatMap(store(tenancy.members.list), (members) => {
      const member = members.find((m) => m.email === email)
      return member === undefined
        ? Effect.fail(new UsageProblem(`${email} is not a member of this organisation (see \`relavium member list\`)`, "not_found"))
        : Effect.succeed({ member })
    })
  /** The store refuses, in the same transaction as the change, to leave the org without an owner. */
  const changeMembership = <A>(effect: Effect.Effect<A, TenancyError | LastOwner>) =>
    Effect.mapError(effect, (e) => new UsageProblem(e.message, e._tag === "LastOwner" ? "conflict" : "store"))
  return {
    createToken: ({ expiresInDays, name, role }) =>
      Effect.gen(function* () {
        const expiresAt = expiresInDays === undefined ? undefined : new Date(Date.now() + expiresInDays * DAY_MS).toISOString()
        const created = yield* store(tenancy.tokens.create({ name, role, createdBy: OPERATOR, expiresAt }))
        yield* audit("token.create", created.info.id, { name, role, prefix: created.info.prefix, expiresAt: expiresAt ?? null })
        return created
      }),
    listTokens: store(tenancy.tokens.list),
    revokeToken: (tokenId) =>
      Effect.gen(function* () {
        const found = (yield* store(tenancy.tokens.list)).find((t) => t.id === tokenId)
        if (found === undefined || !(yield* store(tenancy.tokens.revoke(tokenId)))) {
          return yield* problem(`no token ${tokenId} in this organisation (see \`relavium token list\`)`, "not_found")
        }
        if (found.revokedAt === null) yield* audit("token.revoke", tokenId, { name: found.name, role: found.role })
      }),
    addMember: (email, role) =>
      Effect.gen(function* () {
        if ((yield* store(tenancy.members.list)).some((m) => m.email === email)) {
          return yield* problem(`${email} is already a member`, "conflict")
        }
        const added = yield* store(tenancy.members.add(email, role))
        yield* audit("member.add", email, { role })
        return added
      }),
    listMembers: store(tenancy.members.list),
    removeMember: (email) =>
      Effect.gen(function* () {
        const { member } = yield* findMember(email)
        yield* changeMembership(tenancy.members.remove(email))
        yield* audit("member.remove", email, { role: member.role })
      }),
    setRole: (email, role) =>
      Effect.gen(function* () {
        const { member } = yield* findMember(email)
        if (member.role === role) return member
        const changed = yield* changeMembership(tenancy.members.setRole(email, role))
        if (Option.isNone(changed)) return yield* problem(`${email} is not a member of this organisation`, "not_found")
        yield* audit("member.role", email, { from: member.role, to: role })
        return changed.value
      }),
    audit: (filter) =>
      Effect.map(store(log.list({ ...filter, limit: filter.limit + 1 })), (entries) => {
        const page = entries.slice(0, filter.limit)
        return entries.length > filter.limit ? { entries: page, next: page[page.length - 1]!.seq } : { entries: page }
      })
  }
}

const openDatabase = (url: Redacted.Redacted<string>) => <A>(effect: Effect.Effect<A, UsageProblem, Tenancy | AuditLog>) =>
  effect.pipe(
    Effect.provide(TenancyDb.layer(url)),
    Effect.mapError((e) => (isUsageProblem(e) ? e : new UsageProblem(e.message, "store")))
  )

// ---------------------------------------------------------------------------
// Choosing the way

type AccessArgs = Exclude<TenancyArgs, { readonly command: "org.create" }>

const withAccess = <A>(args: AccessArgs, use: (access: Access) => Effect.Effect<A, UsageProblem>): Effect.Effect<A, UsageProblem> => {
  if (Option.isSome(args.server)) {
    const options = { server: args.server.value, token: args.token, ca: args.ca, dataDir: args.dataDir }
    return withRemote(options, (remote) => use(remoteAccess(remote))).pipe(
      Effect.mapError((e) => (isUsageProblem(e) ? e : new UsageProblem(String(e), "server")))
    )
  }
  if (Option.isNone(args.databaseUrl)) {
    return Effect.fail(new UsageProblem("where is the organisation? pass --server URL --token TOKEN, or --database-url URL --org ORG_ID"))
  }
  if (Option.isNone(args.org)) {
    return Effect.fail(new UsageProblem("with --database-url, pass --org ORG_ID (as printed by `relavium org create`)"))
  }
  const orgId = args.org.value
  return Effect.gen(function* () {
    const tenancy = yield* Tenancy
    if (Option.isNone(yield* store(tenancy.org))) return yield* problem(`no organisation ${orgId} in this database`, "not_found")
    return yield* use(databaseAccess(tenancy, yield* AuditLog))
  }).pipe(forOrg(orgId), openDatabase(args.databaseUrl.value))
}

// ---------------------------------------------------------------------------
// Output

/** Rows as columns padded to their widest cell. */
const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  return [line(headers), ...rows.map(line)].join("\n")
}

const json = (value: unknown) => Console.log(JSON.stringify(value))

const warnOnce = (what: string) =>
  Effect.sync(() =>
    process.stderr.write(`relavium: store ${what} now (e.g. in a password manager): it is shown only this once and cannot be shown again\n`)
  )

const tokenStatus = (t: TokenRow, now: string) =>
  t.revokedAt !== null ? `revoked ${t.revokedAt}` : t.expiresAt !== null && t.expiresAt <= now ? "expired" : "active"

const printCreatedToken = (created: { readonly token: Redacted.Redacted<string>; readonly info: TokenRow }, asJson: boolean) =>
  asJson
    ? json({ token: Redacted.value(created.token), info: created.info })
    : Effect.zipRight(
        Console.log(
          table(
            ["token", Redacted.value(created.token)],
            [
              ["id", created.info.id],
              ["name", created.info.name],
              ["role", created.info.role],
              ["expires", created.info.expiresAt ?? "never"]
            ]
          )
        ),
        warnOnce("this token")
      )

const detailText = (detail: Readonly<Record<string, unknown>>) =>
  Object.entries(detail)
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ")

// ---------------------------------------------------------------------------
// The commands

const orgCreate = (args: Extract<TenancyArgs, { readonly command: "org.create" }>) =>
  Effect.gen(function* () {
    if (Option.isNone(args.databaseUrl)) {
      return yield* problem("relavium org create needs the database: pass --database-url URL (or set RELAVIUM_DATABASE_URL)")
    }
    const name = yield* check(Schema.Trim.pipe(Schema.minLength(1), Schema.maxLength(200)), args.name, "NAME")
    const owner = yield* check(TenancyApi.Email, args.owner, "--owner")
    const created = yield* Effect.gen(function* () {
      const made = yield* Effect.flatMap(Tenancy, (tenancy) => store(tenancy.createOrg(name, { email: owner })))
      // The new org's trail starts with its creation (who made it and its first owner; never the token).
      yield* Effect.flatMap(AuditLog, (log) =>
        store(log.append({ actor: OPERATOR, action: "org.create", target: made.org.id, detail: { name, owner, tokenId: made.token.info.id } }))
      ).pipe(forOrg(made.org.id))
      return made
    }).pipe(openDatabase(args.databaseUrl.value))
    const { org, token } = created
    if (args.json) {
      return yield* json({ org: { id: org.id, name: org.name, createdAt: org.createdAt }, owner, token: Redacted.value(token.token), tokenInfo: token.info })
    }
    yield* Console.log(
      table(
        ["org", org.id],
        [
          ["name", org.name],
          ["owner", owner],
          ["owner token", Redacted.value(token.token)]
        ]
      )
    )
    yield* warnOnce("the owner token")
  })

const dispatch = (args: TenancyArgs): Effect.Effect<void, UsageProblem> => {
  switch (args.command) {
    case "org.create":
      return orgCreate(args)
    case "token.create":
      return Effect.gen(function* () {
        const name = yield* check(TokenName, args.name, "--name")
        const expiresInDays = Option.isSome(args.expiresInDays) ? yield* check(Days, args.expiresInDays.value, "--expires-in-days") : undefined
        const created = yield* withAccess(args, (access) => access.createToken({ name, role: args.role, expiresInDays }))
        yield* printCreatedToken(created, args.json)
      })
    case "token.list":
      return Effect.gen(function* () {
        const tokens = yield* withAccess(args, (access) => access.listTokens)
        if (args.json) return yield* json(tokens)
        if (tokens.length === 0) return yield* Console.log("no tokens — mint one with `relavium token create --name N --role R`")
        const now = new Date().toISOString()
        yield* Console.log(
          table(
            ["ID", "NAME", "PREFIX", "ROLE", "CREATED", "EXPIRES", "LAST USED", "STATUS"],
            tokens.map((t) => [t.id, t.name, `${t.prefix}…`, t.role, t.createdAt, t.expiresAt ?? "never", t.lastUsedAt ?? "never", tokenStatus(t, now)])
          )
        )
      })
    case "token.revoke":
      return Effect.gen(function* () {
        yield* withAccess(args, (access) => access.revokeToken(args.tokenId))
        yield* args.json ? json({ revoked: args.tokenId }) : Console.log(`revoked token ${args.tokenId}`)
      })
    case "member.add":
      return Effect.gen(function* () {
        const email = yield* check(TenancyApi.Email, args.email, "EMAIL")
        const added = yield* withAccess(args, (access) => access.addMember(email, args.role))
        yield* args.json ? json(added) : Console.log(`added ${added.email} as ${added.role}`)
      })
    case "member.list":
      return Effect.gen(function* () {
        const members = yield* withAccess(args, (access) => access.listMembers)
        if (args.json) return yield* json(members)
        yield* Console.log(table(["EMAIL", "ROLE", "ADDED"], members.map((m) => [m.email, m.role, m.createdAt])))
      })
    case "member.remove":
      return Effect.gen(function* () {
        const email = yield* check(TenancyApi.Email, args.email, "EMAIL")
        yield* withAccess(args, (access) => access.removeMember(email))
        yield* args.json ? json({ removed: email }) : Console.log(`removed ${email}`)
      })
    case "member.role":
      return Effect.gen(function* () {
        const email = yield* check(TenancyApi.Email, args.email, "EMAIL")
        const changed = yield* withAccess(args, (access) => access.setRole(email, args.role))
        yield* args.json ? json(changed) : Console.log(`${changed.email} is now ${changed.role}`)
      })
    case "audit":
      return Effect.gen(function* () {
        const limit = yield* check(Limit, args.limit, "--limit")
        const from = Option.isSome(args.since) ? yield* check(TenancyApi.Timestamp, args.since.value, "--since") : undefined
        const filter = { action: Option.getOrUndefined(args.action), actor: Option.getOrUndefined(args.actor), from, limit }
        const page = yield* withAccess(args, (access) => access.audit(filter))
        if (args.json) return yield* json(page)
        if (page.entries.length === 0) return yield* Console.log("no audit entries")
        yield* Console.log(
          table(
            ["SEQ", "AT", "ACTOR", "ACTION", "TARGET", "DETAIL"],
            page.entries.map((e) => [String(e.seq), e.at, e.actor, e.action, e.target, detailText(e.detail)])
          )
        )
        if (page.next !== undefined) yield* Console.log(`(older entries not shown: raise --limit, or narrow with --action, --actor, --since)`)
      })
  }
}

export const run = (args: TenancyArgs) => dispatch(args).pipe(Effect.catchIf(isUsageProblem, report(args.json)))

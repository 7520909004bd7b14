/**
 * `relavium org create`, `relavium token create|list|revoke`, `relavium member
 * add|list|remove|role` and `relavium audit` (what they do is in
 * handlers/Tenancy.ts): an organisation's tokens, members and audit trail,
 * either through a server's API (`--server URL --token TOKEN`, acting as that
 * token's role) or directly on the database as its operator (`--database-url
 * URL --org ORG_ID`), with the same output.
 */
import { Args, Command, Options } from "@effect/cli"
import { lazy } from "../Lazy.js"
import * as Settings from "../runtime/Settings.js"
import { dataDirOption, secretFlag } from "./Flags.js"
import { jsonOption, remoteOptions } from "./Runs.js"

const roles = ["owner", "admin", "member", "viewer"] as const

const databaseUrlOption = secretFlag(
  "database-url",
  Settings.databaseUrl,
  "work directly on this database as its operator instead of through --server: postgres://user[:password]@host:port/database, or sqlite:FILE"
)

const orgOption = Options.text("org").pipe(
  Options.optional,
  Options.withDescription("with --database-url: the organisation's id (as printed by `relavium org create`)")
)

/** Where the data is: `--server URL --token T` (the API), or `--database-url URL --org ID` (the database). */
const accessOptions = { ...remoteOptions, databaseUrl: databaseUrlOption, org: orgOption, dataDir: dataDirOption, json: jsonOption }

const tenancy = lazy(() => import("../handlers/Tenancy.js"), (m) => m.run)

// ---------------------------------------------------------------------------
// org

const orgCreateConfig = {
  name: Args.text({ name: "name" }).pipe(Args.withDescription("the organisation's name")),
  owner: Options.text("owner").pipe(Options.withDescription("the email of its first owner")),
  databaseUrl: databaseUrlOption,
  json: jsonOption
}

const orgCreate = Command.make("create", orgCreateConfig, (args) => tenancy({ command: "org.create", ...args })).pipe(
  Command.withDescription("Create an organisation and its first owner; prints the owner's token once (needs --database-url)")
)

export const org = Command.make("org").pipe(Command.withDescription("Organisations"), Command.withSubcommands([orgCreate]))

// ---------------------------------------------------------------------------
// token

const tokenCreateConfig = {
  name: Options.text("name").pipe(Options.withDescription("what the token is for (shown in `token list`)")),
  role: Options.choice("role", roles).pipe(Options.withDescription("what the token may do; at most the caller's own role")),
  expiresInDays: Options.integer("expires-in-days").pipe(Options.optional, Options.withDescription("the token stops working after this many days (default: never)")),
  ...accessOptions
}

const tokenCreate = Command.make("create", tokenCreateConfig, (args) => tenancy({ command: "token.create", ...args })).pipe(
  Command.withDescription("Mint an API token; it is printed once and never again")
)

const tokenList = Command.make("list", accessOptions, (args) => tenancy({ command: "token.list", ...args })).pipe(
  Command.withDescription("List the organisation's API tokens (their prefixes, never the tokens)")
)

const tokenRevokeConfig = { tokenId: Args.text({ name: "token-id" }).pipe(Args.withDescription("the token's id (see `token list`)")), ...accessOptions }

const tokenRevoke = Command.make("revoke", tokenRevokeConfig, (args) => tenancy({ command: "token.revoke", ...args })).pipe(
  Command.withDescription("Revoke an API token: it stops working at once")
)

export const token = Command.make("token").pipe(
  Command.withDescription("An organisation's API tokens"),
  Command.withSubcommands([tokenCreate, tokenList, tokenRevoke])
)

// ---------------------------------------------------------------------------
// member

const emailArg = Args.text({ name: "email" }).pipe(Args.withDescription("the member's email"))
const roleArg = Args.choice(
  roles.map((r) => [r, r] as const),
  { name: "role" }
).pipe(Args.withDescription("owner, admin, member or viewer"))

const memberAddConfig = {
  email: emailArg,
  role: Options.choice("role", roles).pipe(Options.withDescription("the member's role; at most the caller's own")),
  ...accessOptions
}
const memberAdd = Command.make("add", memberAddConfig, (args) => tenancy({ command: "member.add", ...args })).pipe(
  Command.withDescription("Add a member to the organisation")
)

const memberList = Command.make("list", accessOptions, (args) => tenancy({ command: "member.list", ...args })).pipe(
  Command.withDescription("List the organisation's members")
)

const memberRemoveConfig = { email: emailArg, ...accessOptions }
const memberRemove = Command.make("remove", memberRemoveConfig, (args) => tenancy({ command: "member.remove", ...args })).pipe(
  Command.withDescription("Remove a member (never the last owner)")
)

const memberRoleConfig = { email: emailArg, role: roleArg, ...accessOptions }
const memberRole = Command.make("role", memberRoleConfig, (args) => tenancy({ command: "member.role", ...args })).pipe(
  Command.withDescription("Change a member's role (the last owner stays an owner)")
)

export const member = Command.make("member").pipe(
  Command.withDescription("An organisation's members"),
  Command.withSubcommands([memberAdd, memberList, memberRemove, memberRole])
)

// ---------------------------------------------------------------------------
// audit

const auditConfig = {
  action: Options.text("action").pipe(Options.optional, Options.withDescription("only entries of this action, e.g. token.create")),
  actor: Options.text("actor").pipe(Options.optional, Options.withDescription("only entries by this actor (token:<prefix> or an email)")),
  since: Options.text("since").pipe(Options.optional, Options.withDescription("only entries at or after this ISO-8601 time, e.g. 2026-01-31")),
  limit: Options.integer("limit").pipe(Options.withDefault(50), Options.withDescription("at most this many entries, newest first (1 to 500)")),
  ...accessOptions
}

export const audit = Command.make("audit", auditConfig, (args) => tenancy({ command: "audit", ...args })).pipe(
  Command.withDescription("The organisation's audit trail, newest first")
)

/** What the handler gets, one case per command (handlers/Tenancy.ts). */
export type TenancyArgs =
  | ({ readonly command: "org.create" } & Command.Command.ParseConfig<typeof orgCreateConfig>)
  | ({ readonly command: "token.create" } & Command.Command.ParseConfig<typeof tokenCreateConfig>)
  | ({ readonly command: "token.list" | "member.list" } & Command.Command.ParseConfig<typeof accessOptions>)
  | ({ readonly command: "token.revoke" } & Command.Command.ParseConfig<typeof tokenRevokeConfig>)
  | ({ readonly command: "member.add" } & Command.Command.ParseConfig<typeof memberAddConfig>)
  | ({ readonly command: "member.remove" } & Command.Command.ParseConfig<typeof memberRemoveConfig>)
  | ({ readonly command: "member.role" } & Command.Command.ParseConfig<typeof memberRoleConfig>)
  | ({ readonly command: "audit" } & Command.Command.ParseConfig<typeof auditConfig>)

/**
 * `relavium org|token|member|audit --database-url URL`: the operator's bootstrap with no
 * server, on a fresh Postgres database, with the real binary. What it writes survives the
 * process (the SQL tenancy store), the first owner token it prints opens the org, and the org's
 * audit trail starts with its creation.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { Tenancy } from "@relavium/ports"
import { Database, SqlTenancy } from "@relavium/store"
import { createDatabase, dropDatabase } from "../../../test/support/cloud.js"
import { relaviumAsync } from "./relavium.js"

let database: { readonly name: string; readonly url: string }

beforeAll(async () => {
  database = await createDatabase("cli_tenancy")
})

afterAll(() => dropDatabase(database.name))

const operator = (args: ReadonlyArray<string>) => relaviumAsync([...args, "--database-url", database.url])

describe("relavium org|token|member|audit --database-url", { timeout: 600_000 }, () => {
  it("org create prints the first owner token once; members, tokens and the audit trail persist across commands", async () => {
    const created = await operator(["org", "create", "Acme", "--owner", "Olivia@Acme.test", "--json"])
    expect(created.status, created.stderr).toBe(0)
    const body = JSON.parse(created.stdout) as { org: { id: string; name: string }; owner: string; token: string }
    expect(body.org.id).toMatch(/^org_[0-9a-f]{32}$/)
    expect(body.owner).toBe("olivia@acme.test")
    expect(body.token).toMatch(/^rlv_[A-Za-z0-9_-]{43}$/)
    const org = body.org.id

    // The token is stored only as its hash, and resolves to the org's owner.
    const principal = await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(Tenancy, (tenancy) => tenancy.tokens.resolve(Redacted.make(body.token))).pipe(
          Effect.provide(Layer.provideMerge(SqlTenancy.layer, Database.layerPg({ url: Redacted.make(database.url) })))
        )
      )
    )
    expect(Option.map(principal, (p) => [p.orgId, p.role])).toEqual(Option.some([org, "owner"]))

    const added = await operator(["member", "add", "bob@acme.test", "--role", "viewer", "--org", org])
    expect(added.status, added.stderr).toBe(0)
    const members = await operator(["member", "list", "--org", org, "--json"])
    expect(members.status, members.stderr).toBe(0)
    expect((JSON.parse(members.stdout) as ReadonlyArray<{ email: string; role: string }>).map((m) => [m.email, m.role])).toEqual([
      ["olivia@acme.test", "owner"],
      ["bob@acme.test", "viewer"]
    ])

    const tokens = await operator(["token", "list", "--org", org])
    expect(tokens.status, tokens.stderr).toBe(0)
    expect(tokens.stdout).toContain(`${body.token.slice(0, 12)}…`)
    expect(tokens.stdout).not.toContain(body.token)

    const audit = await operator(["audit", "--org", org, "--json"])
    expect(audit.status, audit.stderr).toBe(0)
    expect(audit.stdout).not.toContain(body.token)
    const entries = JSON.parse(audit.stdout) as { entries: ReadonlyArray<{ actor: string; action: string; target: string }> }
    expect(entries.entries.map((e) => [e.actor, e.action, e.target])).toEqual([
      ["operator", "member.add", "bob@acme.test"],
      ["operator", "org.create", org]
    ])

    // An org id that is not in the database is refused by name, showing nothing of this org.
    const other = await operator(["member", "list", "--org", "org_00000000000000000000000000000000", "--json"])
    expect(other.status).toBe(2)
    expect(other.stderr).toContain("no organisation org_00000000000000000000000000000000")
    expect(other.stdout + other.stderr).not.toContain("olivia@acme.test")
  })
})

/**
 * `relavium token|member|audit --server URL --token T` end to end: the real
 * binary against a real HTTP server with the tenancy routes (on the memory
 * tenancy stores), as an org's owner would use it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTenancyServer, type TenancyServer } from "../../../packages/server/test/support/tenancyServer.js"
import { relaviumAsync } from "./relavium.js"

let server: TenancyServer
let owner: string

const cli = (args: ReadonlyArray<string>, token = owner) => relaviumAsync([...args, "--server", server.url, "--token", token])

beforeAll(async () => {
  server = await startTenancyServer()
  owner = (await server.createOrg("Acme", "olivia@acme.test")).ownerToken
})

afterAll(() => server.close())

describe("relavium token|member|audit --server", { timeout: 600_000 }, () => {
  it("token create prints the token once with a warning; token list shows only its prefix; revoke ends it", async () => {
    const created = await cli(["token", "create", "--name", "ci deploys", "--role", "admin", "--expires-in-days", "30"])
    expect(created.stderr).toMatch(/shown only this once/)
    expect(created.status).toBe(0)
    const tokens = created.stdout.match(/rlv_[A-Za-z0-9_-]{43}/g) ?? []
    expect(tokens).toHaveLength(1)
    const token = tokens[0]!
    const id = /^id\s+(tok_\w+)$/m.exec(created.stdout)![1]!
    expect(created.stdout).toMatch(/^role\s+admin$/m)

    const listed = await cli(["token", "list"])
    expect(listed.status).toBe(0)
    expect(listed.stdout).toMatch(/^ID\s+NAME\s+PREFIX\s+ROLE/)
    expect(listed.stdout).toContain(`${token.slice(0, 12)}…`)
    expect(listed.stdout).not.toContain(token)
    expect(listed.stdout).not.toContain(owner)
    const row = listed.stdout.split("\n").find((line) => line.startsWith(id))!
    expect(row).toMatch(/ci deploys\s+rlv_\S+\s+admin\s.*active$/)

    // The new admin token works, until it is revoked.
    expect((await cli(["member", "list"], token)).status).toBe(0)
    const revoked = await cli(["token", "revoke", id])
    expect(revoked).toMatchObject({ status: 0, stdout: `revoked token ${id}\n` })
    const refused = await cli(["member", "list"], token)
    expect(refused.status).toBe(2)
    expect(refused.stderr).toMatch(/refused the bearer token \(401\)/)
    expect((await cli(["token", "list"])).stdout.split("\n").find((line) => line.startsWith(id))).toMatch(/revoked \S+$/)

    const unknown = await cli(["token", "revoke", "tok_nope"])
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toMatch(/no token tok_nope/)
  })

  it("token create --json gives the token and its info for machines", async () => {
    const created = await cli(["token", "create", "--name", "bot", "--role", "viewer", "--json"])
    expect(created.status).toBe(0)
    const body = JSON.parse(created.stdout) as { token: string; info: { prefix: string; role: string; expiresAt: string | null } }
    expect(body.token).toMatch(/^rlv_/)
    expect(body.info).toMatchObject({ prefix: body.token.slice(0, 12), role: "viewer", expiresAt: null })
    // A viewer may not list tokens: the server's 403 is a clear exit 2.
    const forbidden = await cli(["token", "list"], body.token)
    expect(forbidden.status).toBe(2)
    expect(forbidden.stderr).toMatch(/refused \(403\).*viewer/)
  })

  it("member add, list, role and remove; the last owner stays", async () => {
    const added = await cli(["member", "add", "Max@Acme.test", "--role", "member"])
    expect(added).toMatchObject({ status: 0, stdout: "added max@acme.test as member\n" })
    const again = await cli(["member", "add", "max@acme.test", "--role", "viewer"])
    expect(again.status).toBe(2)
    expect(again.stderr).toMatch(/already a member/)

    const listed = await cli(["member", "list"])
    expect(listed.stdout).toMatch(/^EMAIL\s+ROLE\s+ADDED\n/)
    expect(listed.stdout).toMatch(/^olivia@acme\.test\s+owner\s+\S+$/m)
    expect(listed.stdout).toMatch(/^max@acme\.test\s+member\s+\S+$/m)

    expect(await cli(["member", "role", "max@acme.test", "viewer"])).toMatchObject({ status: 0, stdout: "max@acme.test is now viewer\n" })
    const members = JSON.parse((await cli(["member", "list", "--json"])).stdout) as Array<{ email: string; role: string }>
    expect(members.find((m) => m.email === "max@acme.test")!.role).toBe("viewer")

    const lastOwner = await cli(["member", "remove", "olivia@acme.test"])
    expect(lastOwner.status).toBe(2)
    expect(lastOwner.stderr).toMatch(/last owner/)
    expect(await cli(["member", "remove", "max@acme.test"])).toMatchObject({ status: 0, stdout: "removed max@acme.test\n" })
    expect((await cli(["member", "list"])).stdout).not.toContain("max@acme.test")
  })

  it("audit --json lists the changes newest first, never with a token in them", async () => {
    const result = await cli(["audit", "--json"])
    expect(result.status).toBe(0)
    const page = JSON.parse(result.stdout) as { entries: Array<{ seq: number; action: string; target: string }> }
    const actions = page.entries.map((e) => e.action)
    expect(actions.slice(0, 4)).toEqual(["member.remove", "member.role", "member.add", "token.create"])
    expect(actions).toContain("token.revoke")
    const seqs = page.entries.map((e) => e.seq)
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a))
    expect(result.stdout).not.toMatch(/rlv_[A-Za-z0-9_-]{43}/)

    const limited = JSON.parse((await cli(["audit", "--json", "--limit", "2", "--action", "member.add"])).stdout) as { entries: Array<{ target: string }> }
    expect(limited.entries.map((e) => e.target)).toEqual(["max@acme.test"])

    const table = await cli(["audit", "--limit", "1"])
    expect(table.stdout).toMatch(/^SEQ\s+AT\s+ACTOR\s+ACTION\s+TARGET\s+DETAIL\n\d+\s+\S+\s+token:rlv_\S+\s+member\.remove\s+max@acme\.test\s+role=viewer\n/)
  })

  it("refuses bad input with exit 2 before asking anyone", async () => {
    const email = await cli(["member", "add", "not-an-email", "--role", "member"])
    expect(email.status).toBe(2)
    expect(email.stderr).toMatch(/EMAIL "not-an-email": an email address/)
    const limit = await cli(["audit", "--limit", "0"])
    expect(limit.status).toBe(2)
    expect(limit.stderr).toMatch(/--limit 0: an integer from 1 to 500/)
    const since = await cli(["audit", "--since", "last tuesday"])
    expect(since.status).toBe(2)
    expect(since.stderr).toMatch(/--since/)
    const role = await cli(["token", "create", "--name", "x", "--role", "superuser"])
    expect(role.status).toBe(2)
    // Neither a server nor a database (with its org): nothing to talk to.
    const nowhere = await relaviumAsync(["member", "list"])
    expect(nowhere.status).toBe(2)
    expect(nowhere.stderr).toMatch(/--org ORG_ID/)
  })
})

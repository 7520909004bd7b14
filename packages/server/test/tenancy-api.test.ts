/**
 * The tenancy routes over real HTTP: an org's owner hands out tokens and
 * memberships, roles bound what each caller may grant, the last owner stays,
 * revoked tokens stop working, every change lands in the audit trail — and no
 * token secret ever comes back after it is minted.
 */
import { OpenApi } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { RelaviumApi } from "../src/Api.js"
import { call, startTenancyServer, type TenancyServer } from "./support/tenancyServer.js"

let server: TenancyServer
let orgId: string
let owner: string
const api = (method: string, path: string, token: string | null, body?: unknown) => call(server.url, method, path, token, body)

beforeAll(async () => {
  server = await startTenancyServer()
  const created = await server.createOrg("Acme", "olivia@acme.test")
  orgId = created.orgId
  owner = created.ownerToken
})

afterAll(() => server.close())

const mint = async (token: string, name: string, role: string) => {
  const answer = await api("POST", "/tokens", token, { name, role })
  expect(answer.status).toBe(201)
  return answer.json as { token: string; info: { id: string; prefix: string; role: string } }
}

describe("tenancy api", () => {
  it("answers who the org is, and refuses a request without a live token", async () => {
    const org = await api("GET", "/org", owner)
    expect(org.status).toBe(200)
    expect(org.json).toMatchObject({ id: orgId, name: "Acme" })
    expect((await api("GET", "/org", null)).status).toBe(401)
    expect((await api("GET", "/org", "rlv_not-a-real-token")).status).toBe(401)
  })

  it("lets the owner mint an admin token, which adds a member and changes its role", async () => {
    const admin = await mint(owner, "ci admin", "admin")
    expect(admin.token).toMatch(/^rlv_[A-Za-z0-9_-]{43}$/)
    expect(admin.info).toMatchObject({ role: "admin", prefix: admin.token.slice(0, 12), revokedAt: null })

    const added = await api("POST", "/members", admin.token, { email: "  Max@Acme.test ", role: "member" })
    expect(added.status).toBe(201)
    expect(added.json).toMatchObject({ email: "max@acme.test", role: "member" })
    expect((await api("POST", "/members", admin.token, { email: "max@acme.test", role: "viewer" })).status).toBe(409)

    const listed = await api("GET", "/members", admin.token)
    expect(listed.json.map((m: { email: string; role: string }) => [m.email, m.role])).toEqual(
      expect.arrayContaining([
        ["olivia@acme.test", "owner"],
        ["max@acme.test", "member"]
      ])
    )

    const changed = await api("PATCH", `/members/${encodeURIComponent("max@acme.test")}`, admin.token, { role: "viewer" })
    expect(changed.status).toBe(200)
    expect(changed.json).toMatchObject({ email: "max@acme.test", role: "viewer" })
    // An admin cannot make anyone an owner, nor touch the owner.
    expect((await api("PATCH", "/members/max@acme.test", admin.token, { role: "owner" })).status).toBe(403)
    expect((await api("DELETE", "/members/olivia@acme.test", admin.token)).status).toBe(403)
    expect((await api("PATCH", "/members/nobody@acme.test", admin.token, { role: "viewer" })).status).toBe(404)

    expect((await api("DELETE", "/members/max@acme.test", admin.token)).status).toBe(204)
    expect((await api("DELETE", "/members/max@acme.test", admin.token)).status).toBe(404)
  })

  it("keeps the last owner: it can be neither removed nor demoted (409), until there is another", async () => {
    const removed = await api("DELETE", "/members/olivia@acme.test", owner)
    expect(removed.status).toBe(409)
    expect(removed.json.message).toMatch(/last owner/)
    const demoted = await api("PATCH", "/members/olivia@acme.test", owner, { role: "admin" })
    expect(demoted.status).toBe(409)
    expect(demoted.json.message).toMatch(/last owner/)

    expect((await api("POST", "/members", owner, { email: "ola@acme.test", role: "owner" })).status).toBe(201)
    expect((await api("PATCH", "/members/ola@acme.test", owner, { role: "admin" })).status).toBe(200)
  })

  it("refuses what a role does not allow: an admin minting an owner token, a viewer listing tokens (403)", async () => {
    const admin = await mint(owner, "second admin", "admin")
    const ownerByAdmin = await api("POST", "/tokens", admin.token, { name: "escalate", role: "owner" })
    expect(ownerByAdmin.status).toBe(403)
    expect(ownerByAdmin.json).toMatchObject({ _tag: "Forbidden" })

    const viewer = await mint(admin.token, "read only", "viewer")
    expect((await api("GET", "/tokens", viewer.token)).status).toBe(403)
    expect((await api("GET", "/audit", viewer.token)).status).toBe(403)
    expect((await api("POST", "/members", viewer.token, { email: "x@acme.test", role: "viewer" })).status).toBe(403)
    // Reading members is a viewer's right.
    expect((await api("GET", "/members", viewer.token)).status).toBe(200)
  })

  it("revokes a token: it stops working at once; unknown ids and other orgs' tokens are 404", async () => {
    const doomed = await mint(owner, "doomed", "member")
    expect((await api("GET", "/org", doomed.token)).status).toBe(200)
    expect((await api("DELETE", `/tokens/${doomed.info.id}`, owner)).status).toBe(204)
    expect((await api("GET", "/org", doomed.token)).status).toBe(401)
    const listed = await api("GET", "/tokens", owner)
    expect(listed.json.find((t: { id: string }) => t.id === doomed.info.id).revokedAt).toEqual(expect.any(String))

    expect((await api("DELETE", "/tokens/tok_unknown", owner)).status).toBe(404)
    const other = await server.createOrg("Other", "eve@other.test")
    const othersToken = await mint(other.ownerToken, "theirs", "viewer")
    expect((await api("DELETE", `/tokens/${othersToken.info.id}`, owner)).status).toBe(404)
    expect((await api("GET", "/org", othersToken.token)).status).toBe(200)
    // Each org sees only its own members and tokens.
    const theirMembers = await api("GET", "/members", other.ownerToken)
    expect(theirMembers.json.map((m: { email: string }) => m.email)).toEqual(["eve@other.test"])
  })

  it("lists the audit trail newest first, paged with next → before, filtered by action", async () => {
    const all = await api("GET", "/audit?limit=500", owner)
    expect(all.status).toBe(200)
    const entries = all.json.entries as Array<{ seq: number; action: string; actor: string; target: string }>
    expect(all.json.next).toBeUndefined()
    const seqs = entries.map((e) => e.seq)
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a))
    expect(new Set(entries.map((e) => e.action))).toEqual(new Set(["token.create", "token.revoke", "member.add", "member.role", "member.remove"]))
    expect(entries.find((e) => e.action === "member.remove")).toMatchObject({ target: "max@acme.test", actor: expect.stringMatching(/^token:rlv_/) })

    const first = await api("GET", "/audit?limit=2", owner)
    expect(first.json.entries.map((e: { seq: number }) => e.seq)).toEqual(seqs.slice(0, 2))
    expect(first.json.next).toBe(seqs[1])
    const second = await api("GET", `/audit?limit=2&before=${first.json.next}`, owner)
    expect(second.json.entries.map((e: { seq: number }) => e.seq)).toEqual(seqs.slice(2, 4))

    const revokes = await api("GET", "/audit?action=token.revoke", owner)
    expect(revokes.json.entries.map((e: { action: string }) => e.action)).toEqual(["token.revoke"])
    const future = await api("GET", "/audit?from=2999-01-01", owner)
    expect(future.json.entries).toEqual([])
  })

  it("never shows a token's secret again: not in GET /tokens, not in the audit trail", async () => {
    const secret = await mint(owner, "secret keeper", "viewer")
    const tokens = await api("GET", "/tokens", owner)
    const audit = await api("GET", "/audit?limit=500", owner)
    expect(tokens.text).toContain(secret.info.prefix)
    for (const text of [tokens.text, audit.text]) {
      expect(text).not.toContain(secret.token)
      expect(text).not.toContain(owner)
      expect(text).not.toContain(secret.token.slice(12))
    }
  })

  it("answers bad bodies and queries with 400 naming where the problem is", async () => {
    const badEmail = await api("POST", "/members", owner, { email: "not-an-email", role: "member" })
    expect(badEmail.status).toBe(400)
    expect(badEmail.json.issues).toContainEqual(expect.objectContaining({ path: ["email"] }))
    const badRole = await api("POST", "/members", owner, { email: "a@acme.test", role: "superuser" })
    expect(badRole.status).toBe(400)
    expect(badRole.json.issues[0].path).toEqual(["role"])
    const badDays = await api("POST", "/tokens", owner, { name: "x", role: "viewer", expiresInDays: 0 })
    expect(badDays.status).toBe(400)
    expect(badDays.json.issues[0].path).toEqual(["expiresInDays"])
    const noName = await api("POST", "/tokens", owner, { name: "   ", role: "viewer" })
    expect(noName.status).toBe(400)
    expect(noName.json.issues[0].path).toEqual(["name"])
    const badLimit = await api("GET", "/audit?limit=5000", owner)
    expect(badLimit.status).toBe(400)
    expect(badLimit.json.issues[0].path).toEqual(["limit"])
    const badFrom = await api("GET", "/audit?from=yesterday", owner)
    expect(badFrom.status).toBe(400)
    expect(badFrom.json.issues[0].path).toEqual(["from"])
    const badPath = await api("PATCH", "/members/not-an-email", owner, { role: "viewer" })
    expect(badPath.status).toBe(400)
    expect(badPath.json.issues[0].path).toEqual(["email"])
  })

  it("is described in the API's OpenAPI document, behind the bearer token", () => {
    const spec = OpenApi.fromApi(RelaviumApi)
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(["/org", "/members", "/members/{email}", "/tokens", "/tokens/{tokenId}", "/audit"]))
    expect(spec.paths["/tokens"]!.post!.security).toEqual([{ bearer: [] }])
    expect(Object.keys(spec.paths["/audit"]!.get!.responses)).toEqual(expect.arrayContaining(["200", "400", "401", "403"]))
  })
})

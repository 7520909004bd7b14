/**
 * docs/permissions.md prints the permission table (`permissions` of
 * @relavium/ports) and the route table (`routeActions` with each route's
 * method and path from the API): both are rendered here from the data and must
 * appear in the page exactly, so the page cannot drift from what the server
 * enforces. The page also states the rules of 401, 403 and 404.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Action, permissions, Role } from "@relavium/ports"
import { Auth, Routes } from "../src/index.js"

const page = readFileSync(join(__dirname, "../../../docs/permissions.md"), "utf8")

/** `owner`, `admin`, `member`, `viewer`: the most powerful first. */
const rolesMostPowerfulFirst = Role.literals

/** Roles as columns, every action as a row. */
const permissionTable = (): string =>
  [
    `| Action | ${rolesMostPowerfulFirst.map((role) => `\`${role}\``).join(" | ")} |`,
    `|---|${rolesMostPowerfulFirst.map(() => "---").join("|")}|`,
    ...Action.literals.map(
      (action) => `| \`${action}\` | ${rolesMostPowerfulFirst.map((role) => (permissions[role].has(action) ? "yes" : "—")).join(" | ")} |`
    )
  ].join("\n")

/** Every route of the API in the order the API declares them. */
const routeTable = (): string =>
  [
    "| Method | Path | Action |",
    "|---|---|---|",
    ...Routes.routes.map(
      (route) =>
        `| ${route.method} | \`${route.path.replace(/:(\w+)/g, "{$1}")}\` | ${
          route.action === "public" ? "public (no token)" : `\`${route.action ?? "MISSING"}\``
        } |`
    )
  ].join("\n")

describe("docs/permissions.md", () => {
  it("prints the permission table as the code has it", () => {
    expect(page, `docs/permissions.md must contain:\n\n${permissionTable()}\n`).toContain(permissionTable())
  })

  it("prints the route table as the code has it", () => {
    expect(page, `docs/permissions.md must contain:\n\n${routeTable()}\n`).toContain(routeTable())
  })

  it("states the answers to an unknown token, a missing permission and another org's id", () => {
    expect(page).toContain(`401 {"_tag":"Unauthorized","message":"${Auth.UNAUTHORIZED_MESSAGE}"}`)
    expect(page).toMatch(/403[^\n]*Forbidden/)
    expect(page).toMatch(/404[^\n]*never 403/)
  })
})

/**
 * The action every route requires, written once as data (`routeActions`):
 * the `Authorization` middleware looks it up for each request and refuses a
 * role the permission table (`permissions` in @relavium/ports) does not allow
 * it; docs/permissions.md prints it (a test renders the table from here and
 * keeps the page equal to it); the authorization tests walk it.
 *
 * Keys are `group.endpoint` of `MonolithApi` (a superset of `RelaviumApi`), and
 * the type requires one entry per endpoint: a new route does not compile until
 * it names its action. A route the middleware finds no entry for is refused
 * (fail closed).
 */
import type { HttpApi, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import type { Action } from "@relavium/ports"
import { MonolithApi } from "./Api.js"

type GroupsOf<A> = A extends HttpApi.HttpApi<string, infer Groups, infer _E, infer _R> ? Groups : never
type KeysOf<G> = G extends HttpApiGroup.HttpApiGroup<infer Name, infer Endpoints, infer _E, infer _R, infer _T>
  ? `${Name}.${HttpApiEndpoint.HttpApiEndpoint.Name<Endpoints>}`
  : never

/** `group.endpoint` of every route of `MonolithApi`. */
export type RouteKey = KeysOf<GroupsOf<typeof MonolithApi>>

/** What a route requires: an action of the permission table, or nothing (`public`: no token). */
export type RouteAction = Action | "public"

/** The route → action table. */
export const routeActions = {
  "health.health": "public",
  "system.ready": "runs.read",
  "system.models": "runs.read",
  "workflows.upload": "workflows.write",
  "workflows.list": "workflows.read",
  "workflows.validate": "workflows.read",
  "workflows.get": "workflows.read",
  "workflows.versions": "workflows.read",
  "workflows.export": "workflows.read",
  "runs.start": "runs.start",
  "runs.list": "runs.read",
  "runs.get": "runs.read",
  "runs.cancel": "runs.cancel",
  // Resuming runs the run's remaining nodes again (and pays for their model calls): as starting it.
  "runs.resume": "runs.start",
  // A fork or a retry starts a new run (and pays for its model calls): as starting one.
  "runs.fork": "runs.start",
  "runs.retry": "runs.start",
  "runs.events": "runs.read",
  "gates.list": "runs.read",
  "gates.approve": "gates.decide",
  "gates.reject": "gates.decide",
  "gates.input": "gates.decide",
  "keys.list": "keys.list",
  "keys.set": "keys.write",
  "keys.remove": "keys.write",
  "org.get": "members.read",
  "members.list": "members.read",
  "members.add": "members.manage",
  "members.setRole": "members.manage",
  "members.remove": "members.manage",
  "tokens.list": "tokens.read",
  "tokens.create": "tokens.manage",
  "tokens.revoke": "tokens.manage",
  "audit.list": "audit.read",
  "triggers.list": "triggers.read",
  "triggers.create": "triggers.manage",
  "triggers.remove": "triggers.manage",
  "triggers.rotateSecret": "triggers.manage",
  "notifications.channels": "notifications.read",
  "notifications.setChannel": "notifications.manage",
  "notifications.removeChannel": "notifications.manage",
  "notifications.deliveries": "notifications.read",
  "notifications.budget": "usage.read",
  "notifications.setBudget": "notifications.manage",
  "usage.get": "usage.read",
  "usage.csv": "usage.read",
  // The signed, single-use link is the authority (NotifyHandlers.ts): no bearer token.
  "gateLinks.show": "public",
  "gateLinks.decide": "public",
  "chats.createProject": "chats.write",
  "chats.listProjects": "chats.read",
  "chats.create": "chats.write",
  "chats.list": "chats.read",
  "chats.get": "chats.read",
  "chats.send": "chats.write",
  "chats.approve": "chats.write",
  "chats.resume": "chats.write",
  "chats.cancel": "chats.write",
  "chats.export": "chats.read",
  "chats.events": "chats.read"
} as const satisfies Record<RouteKey, RouteAction>

export interface Route {
  readonly key: RouteKey
  readonly method: string
  /** As the API declares it: `/runs/:runId/cancel`. */
  readonly path: string
  /** Undefined only for a route `routeActions` misses, which the middleware refuses. */
  readonly action: RouteAction | undefined
}

/** Every route of `MonolithApi`, in the order the API declares them, with its action. */
export const routes: ReadonlyArray<Route> = Object.values(MonolithApi.groups).flatMap((group) =>
  Object.values(group.endpoints).map((endpoint) => {
    const key = `${group.identifier}.${endpoint.name}` as RouteKey
    return { key, method: endpoint.method, path: endpoint.path, action: (routeActions as Record<string, RouteAction>)[key] }
  })
)

const byMethodAndPath = new Map(routes.map((route) => [`${route.method} ${route.path}`, route.action]))

/** The action of the route declared as `method path` (`path` as declared, with `:params`); undefined for an unknown route. */
export const actionOf = (method: string, path: string): RouteAction | undefined => byMethodAndPath.get(`${method} ${path}`)

/**
 * Who calls, and whether they may.
 *
 * - `Authentication` turns a bearer token into the caller (`Principal`: org,
 *   role, actor). HttpGuard.ts asks it for every request but `/health`, before
 *   a byte of the body is read, and answers any token it does not accept —
 *   missing, malformed, unknown, expired, revoked — with the same 401 (status,
 *   body and message: nothing tells a guesser why). The request then runs for
 *   the caller's org (`forOrg`), with the caller as `CurrentPrincipal`.
 * - The `Authorization` middleware (Api.ts) provides that caller to the
 *   handlers and refuses with 403 a role the permission table does not allow
 *   the route's action (Routes.ts `routeActions`), before the body is decoded
 *   or a store is read.
 *
 * Two layers provide both:
 * - `layerSingleUser(token)`: one token (the monolith's token file), compared
 *   in constant time (both sides hashed to equal length first, so not even the
 *   token's length leaks through timing); its caller is the owner of the org
 *   `local`, actor `local`.
 * - `layerTenancy()`: tokens issued to orgs, resolved through the `Tenancy`
 *   port (their org, their role, actor `token:<prefix>`). With
 *   `localOwnerToken`, that one shared token (the api's `--token`) is accepted
 *   beside them as the owner of the org `local`, as on a monolith.
 */
import { HttpRouter } from "@effect/platform"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { CurrentPrincipal, LOCAL_ORG, type Principal, Tenancy, type TenancyError } from "@relavium/ports"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { Authorization, Forbidden, Unauthorized } from "./Api.js"
import { authorize } from "./Authorize.js"
import { actionOf } from "./Routes.js"

/** The one message of every 401, whatever was wrong with the token. */
export const UNAUTHORIZED_MESSAGE = "missing or wrong bearer token (Authorization: Bearer <token>)"

/** Resolves bearer tokens to callers; HttpGuard.ts uses it on every request but `/health`. */
export class Authentication extends Context.Tag("@relavium/server/Authentication")<
  Authentication,
  {
    /** The caller of an accepted token; none for any other token, with no reason. Fails only when the token store cannot answer. */
    readonly resolve: (token: Redacted.Redacted<string>) => Effect.Effect<Option.Option<Principal>, TenancyError>
  }
>() {}

const digest = (value: string) => createHash("sha256").update(value, "utf8").digest()

export const tokensMatch = (expected: Redacted.Redacted<string>, given: Redacted.Redacted<string>): boolean =>
  timingSafeEqual(digest(Redacted.value(expected)), digest(Redacted.value(given))) && Redacted.value(given) !== ""

/** 256 random bits, URL-safe. */
export const generateToken = (): Redacted.Redacted<string> => Redacted.make(randomBytes(32).toString("base64url"))

/** The caller of a single-user deployment's token: the owner of the org `local`. */
export const localOwner: Principal = { orgId: LOCAL_ORG, role: "owner", tokenId: undefined, actor: "local" }

/**
 * The middleware: the caller HttpGuard.ts resolved (none: 401, so a composition without the guard
 * refuses everything), and the route's action checked against the caller's role (403). A route
 * `routeActions` does not name is refused.
 */
export const layerAuthorization: Layer.Layer<Authorization> = Layer.succeed(
  Authorization,
  Authorization.of({
    bearer: () =>
      Effect.gen(function* () {
        const principal = yield* Effect.serviceOption(CurrentPrincipal)
        if (Option.isNone(principal)) return yield* new Unauthorized({ message: UNAUTHORIZED_MESSAGE })
        const { route } = yield* HttpRouter.RouteContext
        const action = actionOf(route.method, String(route.path))
        if (action === undefined) return yield* new Forbidden({ message: "this route names no action in the permission table" })
        if (action !== "public") yield* authorize(action)
        return principal.value
      })
  })
)

const single = (token: Redacted.Redacted<string>, given: Redacted.Redacted<string>): Option.Option<Principal> =>
  tokensMatch(token, given) ? Option.some(localOwner) : Option.none()

/** The single-user deployments (the monolith): `token` is the owner of the org `local`. */
export const layerSingleUser = (token: Redacted.Redacted<string>): Layer.Layer<Authentication | Authorization> =>
  Layer.merge(
    Layer.succeed(Authentication, Authentication.of({ resolve: (given) => Effect.succeed(single(token, given)) })),
    layerAuthorization
  )

/** Tokens issued to orgs (the `Tenancy` port); with `localOwnerToken`, that token too, as the owner of the org `local`. */
export const layerTenancy = (
  options: { readonly localOwnerToken?: Redacted.Redacted<string> | undefined } = {}
): Layer.Layer<Authentication | Authorization, never, Tenancy> =>
  Layer.merge(
    Layer.effect(
      Authentication,
      Effect.map(Tenancy, (tenancy) =>
        Authentication.of({
          resolve: (given) => {
            const local = options.localOwnerToken === undefined ? Option.none() : single(options.localOwnerToken, given)
            return Option.isSome(local) ? Effect.succeed(local) : tenancy.tokens.resolve(given)
          }
        })
      )
    ),
    layerAuthorization
  )

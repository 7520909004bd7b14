/**
 * The permission check: the caller's role must allow the action in the
 * permission table (`permissions` in @relavium/ports, printed in
 * docs/permissions.md). The `Authorization` middleware (Auth.ts) makes it for
 * every route, with the route's action from `routeActions` (Routes.ts), before
 * the handler runs; a handler that needs a further check calls it itself.
 * Fails closed: a request with no principal is refused.
 */
import { type Action, can, CurrentPrincipal } from "@relavium/ports"
import { Effect, Option } from "effect"
import { Forbidden } from "./Api.js"

export const authorize = (action: Action): Effect.Effect<void, Forbidden> =>
  Effect.flatMap(Effect.serviceOption(CurrentPrincipal), (principal) =>
    Option.isSome(principal) && can(principal.value.role, action)
      ? Effect.void
      : Effect.fail(
          new Forbidden({
            message: Option.isSome(principal)
              ? `the ${principal.value.role} role may not do ${action}`
              : `${action} needs an authenticated caller`
          })
        )
  )

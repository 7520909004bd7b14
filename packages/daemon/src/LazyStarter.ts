/**
 * The seed's LazyDaemonStarter: a resource that is acquired on first use, not
 * when its layer is built, and then shared. A failed start is not remembered,
 * so the next use tries again; a started resource lives as long as the scope
 * that made the starter.
 */
import { Effect, ExecutionStrategy, Exit, Option, Scope, SynchronizedRef } from "effect"

export interface LazyStarter<A, E> {
  /** The resource, started now if this is the first use. */
  readonly get: Effect.Effect<A, E>
  /** Whether it has started (nothing is spawned or connected before). */
  readonly started: Effect.Effect<boolean>
}

export const make = <A, E>(acquire: Effect.Effect<A, E, Scope.Scope>): Effect.Effect<LazyStarter<A, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const state = yield* SynchronizedRef.make(Option.none<A>())
    const get = SynchronizedRef.modifyEffect(state, (current): Effect.Effect<readonly [A, Option.Option<A>], E> =>
      Option.isSome(current)
        ? Effect.succeed([current.value, current] as const)
        : Effect.gen(function* () {
            const child = yield* Scope.fork(scope, ExecutionStrategy.sequential)
            const exit = yield* Effect.exit(Scope.extend(acquire, child))
            if (Exit.isFailure(exit)) {
              yield* Scope.close(child, exit)
              return yield* Effect.failCause(exit.cause)
            }
            return [exit.value, Option.some(exit.value)] as readonly [A, Option.Option<A>]
          })
    )
    return { get: Effect.uninterruptible(get), started: SynchronizedRef.get(state).pipe(Effect.map(Option.isSome)) }
  })

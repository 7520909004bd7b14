/**
 * Bearer-token authentication: the token is `Redacted` everywhere and
 * compared in constant time (both sides hashed to equal length first, so not
 * even the token's length leaks through timing).
 */
import { Effect, Layer, Redacted } from "effect"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { Authorization, Unauthorized } from "./Api.js"

const digest = (value: string) => createHash("sha256").update(value, "utf8").digest()

export const tokensMatch = (expected: Redacted.Redacted<string>, given: Redacted.Redacted<string>): boolean =>
  timingSafeEqual(digest(Redacted.value(expected)), digest(Redacted.value(given))) && Redacted.value(given) !== ""

/** 256 random bits, URL-safe. */
export const generateToken = (): Redacted.Redacted<string> => Redacted.make(randomBytes(32).toString("base64url"))

/** Accepts exactly `Authorization: Bearer <token>`. */
export const layerBearer = (token: Redacted.Redacted<string>): Layer.Layer<Authorization> =>
  Layer.succeed(
    Authorization,
    Authorization.of({
      bearer: (given) =>
        tokensMatch(token, given)
          ? Effect.void
          : Effect.fail(new Unauthorized({ message: "missing or wrong bearer token (Authorization: Bearer <token>)" }))
    })
  )

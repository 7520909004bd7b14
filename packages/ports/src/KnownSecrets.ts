/**
 * The secret values this process knows (provider API keys), so text that
 * came back from a tool or a model can be scrubbed of them before it is
 * stored, published or sent to a model. The values stay `Redacted`; only a
 * scrubber built from them ever looks inside.
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"

export class KnownSecrets extends Context.Tag("@relavium/ports/KnownSecrets")<
  KnownSecrets,
  {
    /** Every secret value known now; a failure to load them is logged by the layer and reads as none. */
    readonly values: Effect.Effect<ReadonlyArray<Redacted.Redacted<string>>>
  }
>() {
  /** Fixed values (tests, or secrets known at start). */
  static readonly layerMemory = (values: ReadonlyArray<string>): Layer.Layer<KnownSecrets> =>
    Layer.succeed(KnownSecrets, KnownSecrets.of({ values: Effect.succeed(values.map((value) => Redacted.make(value))) }))
}

/** What replaces a known secret in scrubbed text. */
export const SCRUBBED = "[redacted secret]"

/** Values shorter than this are not scrubbed: they would match ordinary text (no real API key is this short). */
export const MIN_SECRET_LENGTH = 8

export interface Scrubber {
  /** The text with every occurrence of every known secret replaced by {@link SCRUBBED}. */
  readonly scrub: (text: string) => string
  /** The first occurrence at or after `from`: where it starts and how long it is. */
  readonly find: (text: string, from: number) => { readonly at: number; readonly length: number } | undefined
  /** The length of the longest secret (0 when there is none). */
  readonly longest: number
  /**
   * The length of the longest end of `text` that begins some secret without completing it: text a
   * stream must hold back until the next piece says whether a secret continues there.
   */
  readonly partialAtEnd: (text: string) => number
}

export const makeScrubber = (values: ReadonlyArray<Redacted.Redacted<string>>): Scrubber => {
  const secrets = [...new Set(values.map((value) => Redacted.value(value).trim()))]
    .filter((value) => value.length >= MIN_SECRET_LENGTH)
    .sort((a, b) => b.length - a.length)
  const find = (text: string, from: number) => {
    let best: { at: number; length: number } | undefined
    for (const secret of secrets) {
      const at = text.indexOf(secret, from)
      if (at !== -1 && (best === undefined || at < best.at)) best = { at, length: secret.length }
    }
    return best
  }
  const partialAtEnd = (text: string) => {
    let held = 0
    for (const secret of secrets) {
      for (let length = Math.min(secret.length - 1, text.length); length > held; length--) {
        if (text.endsWith(secret.slice(0, length))) {
          held = length
          break
        }
      }
    }
    return held
  }
  return {
    find,
    partialAtEnd,
    longest: secrets[0]?.length ?? 0,
    scrub: (text) => {
      if (secrets.length === 0) return text
      let out = ""
      let position = 0
      for (let hit = find(text, 0); hit !== undefined; hit = find(text, position)) {
        out += text.slice(position, hit.at) + SCRUBBED
        position = hit.at + hit.length
      }
      return out + text.slice(position)
    }
  }
}

/** The scrubber for the secrets known now, or none when no `KnownSecrets` is provided. */
export const currentScrubber: Effect.Effect<Scrubber | undefined> = Effect.serviceOption(KnownSecrets).pipe(
  Effect.flatMap((secrets) => (Option.isSome(secrets) ? secrets.value.values : Effect.succeed([]))),
  Effect.map((values) => (values.length === 0 ? undefined : makeScrubber(values)))
)

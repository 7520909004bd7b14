/**
 * Renders `{{ … }}` templates (prompts, gate messages, context values, save_to)
 * against a run's scope. Parsed templates are cached by their text, since the
 * same node template renders once per run.
 */
import { FileSystem } from "@effect/platform"
import { Effect, Either } from "effect"
import { RunError, Template } from "@relavium/domain"

export type TemplateScope = Template.TemplateScope

const parsed = new Map<string, ReadonlyArray<Template.Segment>>()

const parse = (text: string) => {
  const cached = parsed.get(text)
  if (cached !== undefined) return Either.right(cached)
  const result = Template.parseTemplate(text)
  if (Either.isRight(result) && parsed.size < 10_000) parsed.set(text, result.right)
  return result
}

export const interpolate = (
  text: string,
  scope: TemplateScope
): Effect.Effect<string, RunError.NodeFailure, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    if (!text.includes("{{")) return text
    const segments = parse(text)
    if (Either.isLeft(segments)) {
      return yield* RunError.nodeFailure("validation", segments.left.message)
    }
    const fs = yield* FileSystem.FileSystem
    return yield* Template.renderTemplate(segments.right, {
      resolve: Template.resolveIn(scope),
      readFile: (path) =>
        fs.readFileString(path).pipe(
          Effect.mapError((e) => RunError.nodeFailure("validation", `read_file could not read ${path}: ${e.message}`))
        )
    }).pipe(
      Effect.mapError((e) => (e._tag === "NodeFailure" ? e : RunError.nodeFailure("validation", e.message)))
    )
  })

/**
 * What a trigger starts a run with, and the checks made when a trigger is created.
 *
 * - A webhook's **input template** maps input names to templates of the workflow template
 *   language (@relavium/domain `Template`) over the delivery's JSON body, reached as `ctx.body`:
 *   `{ "title": "{{ ctx.body.issue.title }}" }`. A template that is one reference alone and no
 *   other text (`"{{ ctx.body.count }}"`) passes the value as it is (a number stays a number, a
 *   list a list; absent: the input is left out, so its default or a "missing" error applies);
 *   anything else renders as text. Without a template the body itself (a JSON object) is the
 *   inputs. Either way the result is checked against the workflow's declared inputs, as
 *   `POST /runs` checks them.
 * - A **schedule** is a cron expression (5 fields, or 6 with seconds first) in an IANA time zone,
 *   both checked here with cron-parser and `Intl`.
 */
import { CronExpressionParser } from "cron-parser"
import { Effect, Either, Option } from "effect"
import { Inputs, Template, type Workflow, WorkflowYaml } from "@relavium/domain"
import type { StoredWorkflow } from "@relavium/ports"

export interface Issue {
  readonly path: string
  readonly message: string
}

/** The declared inputs of a stored workflow. */
export const declaredInputs = (workflow: StoredWorkflow): ReadonlyArray<Workflow.WorkflowInput> =>
  Either.match(WorkflowYaml.parseWorkflow(workflow.source, workflow.file), {
    onLeft: () => [],
    onRight: (plan) => plan.spec.inputs ?? []
  })

/** Problems of an input template for a workflow: names it does not declare, templates that do not parse or read other than `ctx.body`. */
export const templateIssues = (
  template: Readonly<Record<string, string>>,
  declared: ReadonlyArray<Workflow.WorkflowInput>
): ReadonlyArray<Issue> => {
  const names = new Set(declared.map((input) => input.name))
  const issues: Array<Issue> = []
  for (const [name, text] of Object.entries(template)) {
    const path = `inputTemplate.${name}`
    if (!names.has(name)) {
      issues.push({ path, message: `the workflow declares no input '${name}' (its inputs: ${[...names].join(", ") || "none"})` })
      continue
    }
    const parsed = Template.parseTemplate(text)
    if (Either.isLeft(parsed)) {
      issues.push({ path, message: parsed.left.message })
      continue
    }
    for (const ref of Template.references(parsed.right)) {
      if (ref.root !== "ctx" || ref.name !== "body") {
        issues.push({ path, message: `${ref.source}: a webhook template reads only the delivery's body, as {{ ctx.body.… }}` })
      }
    }
  }
  return issues
}

/** The inputs a delivery's body maps to (before the workflow's checks), or the located problems. */
export const mapBody = (
  template: Readonly<Record<string, string>> | null,
  body: unknown
): Either.Either<Record<string, unknown>, ReadonlyArray<Issue>> => {
  if (template === null) {
    return body !== null && typeof body === "object" && !Array.isArray(body)
      ? Either.right({ ...(body as Record<string, unknown>) })
      : Either.left([{ path: "body", message: "the body must be a JSON object of inputs (this trigger has no input template)" }])
  }
  const values: Record<string, unknown> = {}
  const issues: Array<Issue> = []
  const scope = { inputs: {}, ctx: { body }, outputs: {} }
  for (const [name, text] of Object.entries(template)) {
    const parsed = Template.parseTemplate(text)
    if (Either.isLeft(parsed)) {
      issues.push({ path: `inputs.${name}`, message: parsed.left.message })
      continue
    }
    const segments = parsed.right
    const only = segments.length === 1 ? segments[0]! : undefined
    if (only !== undefined && only._tag === "Reference" && only.reference.filters.length === 0) {
      const value = Template.valueAt(Template.resolveIn(scope)(only.reference), only.reference.path)
      if (value !== undefined) values[name] = value
      continue
    }
    const rendered = Effect.runSync(Effect.either(Template.renderTemplate(segments, { resolve: Template.resolveIn(scope) })))
    if (Either.isLeft(rendered)) issues.push({ path: `inputs.${name}`, message: rendered.left.message })
    else values[name] = rendered.right
  }
  return issues.length > 0 ? Either.left(issues) : Either.right(values)
}

/** The workflow's check of mapped inputs, its problems located at `inputs.<name>`. */
export const checkInputs = (
  declared: ReadonlyArray<Workflow.WorkflowInput>,
  values: Readonly<Record<string, unknown>>
): ReadonlyArray<Issue> =>
  Either.match(Inputs.resolveInputs(declared, values, { coerceStrings: false }), {
    onLeft: (error) => error.issues.map((issue) => ({ path: `inputs.${issue.input}`, message: issue.message })),
    onRight: () => []
  })

/** Whether `zone` is an IANA time zone this runtime knows. */
export const knownTimeZone = (zone: string): boolean => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone })
    return zone.trim() !== ""
  } catch {
    return false
  }
}

/** Problems of a cron expression in a zone (both checked). */
export const scheduleIssues = (cron: string, zone: string): ReadonlyArray<Issue> => {
  const issues: Array<Issue> = []
  if (!knownTimeZone(zone)) issues.push({ path: "timezone", message: `'${zone}' is not an IANA time zone (e.g. UTC, Europe/Paris, America/New_York)` })
  const fields = cron.trim().split(/\s+/).length
  if (fields !== 5 && fields !== 6) {
    issues.push({ path: "cron", message: `a cron expression has 5 fields (minute hour day month weekday), or 6 with seconds first; '${cron}' has ${fields}` })
  } else {
    try {
      CronExpressionParser.parse(cron, { tz: knownTimeZone(zone) ? zone : "UTC", strict: false })
    } catch (e) {
      issues.push({ path: "cron", message: `'${cron}' is not a cron expression: ${(e as Error).message}` })
    }
  }
  return issues
}

/** The fire times of a schedule after `afterMs` up to and including `untilMs` (at most `limit`). */
export const firesBetween = (cron: string, zone: string, afterMs: number, untilMs: number, limit = 1000): ReadonlyArray<number> => {
  const expression = CronExpressionParser.parse(cron, { tz: zone, currentDate: new Date(afterMs) })
  const fires: Array<number> = []
  while (fires.length < limit) {
    const next = expression.next().getTime()
    if (next > untilMs) break
    if (next > afterMs) fires.push(next)
  }
  return fires
}

/** The newest fire time at or before `atMs`, if any after `afterMs`. */
export const latestFire = (cron: string, zone: string, afterMs: number, atMs: number): Option.Option<number> => {
  const expression = CronExpressionParser.parse(cron, { tz: zone, currentDate: new Date(atMs + 1) })
  try {
    const previous = expression.prev().getTime()
    return previous > afterMs && previous <= atMs ? Option.some(previous) : Option.none()
  } catch {
    return Option.none()
  }
}

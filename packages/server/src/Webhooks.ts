/**
 * `POST /hooks/:triggerId`: a signed webhook delivery starts a run (docs/triggers.md).
 *
 * No bearer token: the signature is the authentication (WebhookSignature.ts). The route is served
 * beside the API (outside its OpenAPI document, since its body is read as raw bytes); HttpGuard.ts
 * lets it through without a token and applies the body size limit (413). In order:
 *
 * 1. the trigger's org, before any org is known (`Triggers.orgOf`: a SECURITY DEFINER lookup of
 *    one id on Postgres); an unknown trigger, or one that is not a webhook: 404;
 * 2. everything after runs for that org (`forOrg`), under row-level security;
 * 3. the signature over the raw body with the trigger's secrets (two during a rotation) and the
 *    timestamp's tolerance: 401 saying which check failed;
 * 4. the body as JSON (400), mapped by the input template and checked against the workflow's
 *    inputs: 422 with the located problems, and no run;
 * 5. the delivery recorded before the run starts (unique per trigger and `webhook-id`): a retried
 *    delivery gets the first run's id (202) and starts nothing; past the trigger's rate limit,
 *    429 with `Retry-After`;
 * 6. the run starts with the trigger on `run:started`; 202 `{ runId }`. A run that fails to start
 *    forgets its delivery, so the sender's retry can start it.
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Either, Option } from "effect"
import { WorkflowEngine } from "@relavium/core"
import { forOrg, looksLikeTriggerId, Triggers, WorkflowStore } from "@relavium/ports"
import { checkInputs, declaredInputs, type Issue, mapBody } from "./TriggerInputs.js"
import { refusalMessage, verify } from "./WebhookSignature.js"

/** The path of the hook route, as the router declares it. */
export const HOOK_PATH = "/hooks/:triggerId"

/** Whether a request path is a hook delivery (served without a bearer token). */
export const isHookPath = (path: string): boolean => /^\/hooks\/[^/]+\/?$/.test(path)

const problem = (status: number, tag: string, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson({ _tag: tag, message, ...extra }, { status, headers })

const notFound = (triggerId: string) => problem(404, "NotFound", `no webhook trigger ${triggerId}`)

const unprocessable = (issues: ReadonlyArray<Issue>) =>
  problem(422, "Unprocessable", `the body does not map to the workflow's inputs: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, { issues })

const unavailable = (what: string) => problem(503, "NotReady", `${what} could not be done now; deliver again`)

/** The handler, on the services of the request's context. */
export const hookHandler = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const params = yield* HttpRouter.params
  const triggerId = params.triggerId ?? ""
  if (!looksLikeTriggerId(triggerId)) return notFound(triggerId.slice(0, 80))
  const triggers = yield* Triggers
  const found = yield* Effect.either(triggers.orgOf(triggerId))
  if (Either.isLeft(found)) {
    yield* Effect.logError(`webhook ${triggerId}: looking up the trigger failed: ${found.left.message}`)
    return unavailable("looking up the trigger")
  }
  if (Option.isNone(found.right)) return notFound(triggerId)
  return yield* forOrg(found.right.value)(deliver(triggerId, request))
})

const deliver = (triggerId: string, request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function* () {
    const triggers = yield* Triggers
    const workflows = yield* WorkflowStore
    const engine = yield* WorkflowEngine
    const trigger = yield* triggers.get(triggerId)
    if (Option.isNone(trigger) || trigger.value.kind !== "webhook") return notFound(triggerId)
    const bytes = yield* Effect.either(request.arrayBuffer)
    if (Either.isLeft(bytes)) {
      const error = bytes.left
      return /too large|max.*size|exceed/i.test(`${error.description ?? ""} ${String(error.cause ?? "")}`)
        ? problem(413, "PayloadTooLarge", "the delivery's body is over the server's limit")
        : problem(400, "BadRequest", "the delivery's body could not be read")
    }
    const body = new Uint8Array(bytes.right)
    const header = (name: string) => request.headers[name]
    const refusal = verify(
      { id: header("webhook-id"), timestamp: header("webhook-timestamp"), signature: header("webhook-signature"), body },
      yield* triggers.secrets(triggerId),
      yield* Clock.currentTimeMillis
    )
    if (refusal !== undefined) return problem(401, "Unauthorized", refusalMessage[refusal])
    const deliveryId = header("webhook-id")!
    if (deliveryId.length > 200) return problem(400, "BadRequest", "webhook-id is longer than 200 characters")
    const parsed = yield* Effect.either(
      Effect.try({ try: (): unknown => JSON.parse(Buffer.from(body).toString("utf8")), catch: (e) => (e as Error).message })
    )
    if (Either.isLeft(parsed)) return problem(400, "BadRequest", `the delivery's body is not JSON: ${parsed.left}`)
    const json = parsed.right
    const workflow = yield* workflows.get(trigger.value.workflowId)
    if (Option.isNone(workflow)) return problem(422, "Unprocessable", `the trigger's workflow ${trigger.value.workflowId} no longer exists`)
    const declared = declaredInputs(workflow.value)
    const mapped = mapBody(trigger.value.inputTemplate, json)
    if (Either.isLeft(mapped)) return unprocessable(mapped.left)
    const issues = checkInputs(declared, mapped.right)
    if (issues.length > 0) return unprocessable(issues)
    const runId = crypto.randomUUID()
    const outcome = yield* triggers.recordDelivery({ triggerId, deliveryId, runId, limitPerMinute: trigger.value.rateLimitPerMinute })
    switch (outcome._tag) {
      case "Duplicate":
        return HttpServerResponse.unsafeJson({ runId: outcome.runId, duplicate: true }, { status: 202 })
      case "Limited":
        return problem(
          429,
          "TooManyRequests",
          `trigger ${triggerId} accepts ${trigger.value.rateLimitPerMinute} deliveries a minute; deliver again in ${outcome.retryAfterSeconds} s`,
          {},
          { "retry-after": String(outcome.retryAfterSeconds) }
        )
      case "Accepted":
        break
    }
    const started = yield* Effect.either(
      engine.start(trigger.value.workflowId, mapped.right, { runId, trigger: { triggerId, kind: "webhook", deliveryId } })
    )
    if (Either.isLeft(started)) {
      yield* triggers.forgetDelivery(triggerId, deliveryId)
      const error = started.left
      if (error.reason === "invalid_input" || error.reason === "not_found") return problem(422, "Unprocessable", error.message)
      yield* Effect.logError(`webhook ${triggerId}: the run could not start: ${error.message}`)
      return unavailable("starting the run")
    }
    return HttpServerResponse.unsafeJson({ runId }, { status: 202 })
  }).pipe(
    Effect.catchTag("TriggerError", (e) =>
      Effect.as(Effect.logError(`webhook ${triggerId}: ${e.message}`), unavailable("handling the delivery"))
    ),
    Effect.catchTag("WorkflowStoreError", (e) =>
      Effect.as(Effect.logError(`webhook ${triggerId}: ${e.message}`), unavailable("reading the workflow"))
    )
  )

/** The hook route on the API's router: needs `Triggers`, `WorkflowStore` and `WorkflowEngine`. */
export const route = <E, R>(router: HttpRouter.HttpRouter.Service<E, R>) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<Triggers | WorkflowStore | WorkflowEngine>()
    yield* router.post(HOOK_PATH, Effect.provide(hookHandler, context))
  })

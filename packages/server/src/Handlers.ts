/**
 * The API's handlers: each group of `RelaviumApi` implemented on the component
 * tags (WorkflowEngine, RunStore, WorkflowStore, KeyStore, AuditLog). Nothing
 * here picks an implementation; the composition root provides the layers.
 *
 * A handler runs only for a caller whose role allows the route's action (the
 * `Authorization` middleware, Routes.ts), for the caller's org (HttpGuard.ts):
 * an id of another org is not found (404), never refused. Changes are written
 * to the audit trail (Audit.ts).
 */
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect, Either, Layer, Option, Redacted } from "effect"
import { type EngineError, RunSummary as Summary, WorkflowEngine } from "@relavium/core"
import { KeyStore, type KeyStoreError, RunStore, TerminalStatuses, WorkflowStore, type StoredWorkflow } from "@relavium/ports"
import { WorkflowYaml } from "@relavium/domain"
import { Pricing } from "@relavium/llm"
import { readFileSync } from "node:fs"
import { isDocument, parseDocument } from "yaml"
import { BadRequest, Conflict, InternalError, type Issue, NotFound, NotReady, RelaviumApi } from "./Api.js"
import { callerActor, makeAudit } from "./Audit.js"
import { eventStreamResponse, type SseOptions } from "./Sse.js"

// ---------------------------------------------------------------------------
// Error mapping at the boundary
// ---------------------------------------------------------------------------

const internal = (e: { readonly message?: string; readonly _tag: string }) =>
  new InternalError({ message: `${e._tag}: ${e.message ?? "internal error"}` })

const fromEngine = (e: EngineError) => {
  switch (e.reason) {
    case "not_found":
      return new NotFound({ message: e.message })
    case "invalid_input":
    case "invalid_workflow":
      return new BadRequest({ message: e.message, issues: issuesOf(e.cause) })
    case "conflict":
      return new Conflict({ message: e.message })
    case "store":
      return new InternalError({ message: e.message })
  }
}

/** The located issues of a workflow or inputs error, when the cause has them. */
const issuesOf = (cause: unknown): ReadonlyArray<Issue> | undefined => {
  const tagged = cause as { readonly _tag?: string; readonly issues?: ReadonlyArray<Record<string, unknown>> } | undefined
  if (tagged?._tag === "WorkflowLoadError" && tagged.issues) {
    return tagged.issues.map((i) => ({
      path: String(i.path),
      line: Number(i.line),
      column: Number(i.column),
      message: String(i.message)
    }))
  }
  if (tagged?._tag === "InputsError" && tagged.issues) {
    return tagged.issues.map((i) => ({ path: `inputs.${String(i.input)}`, message: String(i.message) }))
  }
  return undefined
}

const keyError = (e: KeyStoreError) =>
  /not a provider name|come from the environment/.test(e.message) ? new BadRequest({ message: e.message }) : internal(e)

const workflowInfo = (w: StoredWorkflow) => ({
  workflowId: w.workflowId,
  name: w.name,
  version: w.version,
  file: w.file,
  createdAt: w.createdAt
})

// ---------------------------------------------------------------------------
// Workflows
// ---------------------------------------------------------------------------

const parseUpload = (yaml: string, file: string | undefined) => {
  const name = file ?? "upload.relavium.yaml"
  return Either.mapLeft(WorkflowYaml.parseWorkflow(yaml, name), (error) =>
    new BadRequest({ message: error.message, issues: issuesOf(error) })
  )
}

/**
 * The YAML with every `secret` input's `default` removed (comments and layout kept),
 * so an exported workflow never carries a secret that was written into it.
 */
export const stripSecretDefaults = (source: string): string => {
  const document = parseDocument(source)
  if (!isDocument(document)) return source
  const inputs = document.getIn(["workflow", "inputs"], true) as { readonly items?: ReadonlyArray<unknown> } | undefined
  const count = inputs?.items?.length ?? 0
  let changed = false
  for (let i = 0; i < count; i++) {
    if (document.getIn(["workflow", "inputs", i, "type"]) === "secret" && document.hasIn(["workflow", "inputs", i, "default"])) {
      document.deleteIn(["workflow", "inputs", i, "default"])
      changed = true
    }
  }
  return changed ? document.toString() : source
}

const WorkflowsLive = HttpApiBuilder.group(RelaviumApi, "workflows", (handlers) =>
  Effect.gen(function* () {
    const workflows = yield* WorkflowStore
    const audit = yield* makeAudit
    const find = (workflowId: string) =>
      workflows.get(workflowId).pipe(
        Effect.mapError(internal),
        Effect.flatMap(Option.match({
          onNone: () => Effect.fail(new NotFound({ message: `no workflow with id ${workflowId}` })),
          onSome: Effect.succeed
        }))
      )
    return handlers
      .handle("upload", ({ payload }) =>
        Effect.gen(function* () {
          const plan = yield* parseUpload(payload.yaml, payload.file)
          const stored = yield* workflows
            .put({ name: plan.spec.id, source: payload.yaml, file: payload.file ?? "upload.relavium.yaml" })
            .pipe(Effect.mapError(internal))
          yield* audit(stored.version === 1 ? "workflow.create" : "workflow.update", stored.workflowId, {
            name: stored.name,
            version: stored.version
          })
          return workflowInfo(stored)
        })
      )
      .handle("list", () => workflows.list.pipe(Effect.map((all) => all.map(workflowInfo)), Effect.mapError(internal)))
      .handle("validate", ({ payload }) =>
        Effect.sync(() =>
          Either.match(parseUpload(payload.yaml, payload.file), {
            onLeft: (error) => ({ valid: false, issues: error.issues ?? [{ path: "", message: error.message }] }),
            onRight: (plan) => ({
              valid: true,
              workflow: plan.spec.id,
              nodes: plan.order.length,
              edges: [...plan.incoming.values()].reduce((n, e) => n + e.length, 0)
            })
          })
        )
      )
      .handle("get", ({ path }) => find(path.workflowId).pipe(Effect.map(workflowInfo)))
      .handle("versions", ({ path }) =>
        Effect.gen(function* () {
          const found = yield* find(path.workflowId)
          const all = yield* workflows.list.pipe(Effect.mapError(internal))
          return all.filter((w) => w.name === found.name).sort((a, b) => a.version - b.version).map(workflowInfo)
        })
      )
      .handle("export", ({ path }) => find(path.workflowId).pipe(Effect.map((w) => stripSecretDefaults(w.source))))
  })
)

// ---------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------

const makeRunLookup = Effect.gen(function* () {
  const store = yield* RunStore
  const record = (runId: string) =>
    store.get(runId).pipe(
      Effect.mapError(internal),
      Effect.flatMap(Option.match({
        onNone: () => Effect.fail(new NotFound({ message: `no run with id ${runId}` })),
        onSome: Effect.succeed
      }))
    )
  const summary = (runId: string) =>
    Effect.gen(function* () {
      const found = yield* record(runId)
      const events = yield* store.events(runId).pipe(Effect.mapError(internal))
      return { ...Summary.summarize(runId, events), workflowId: found.workflowId, workflowName: found.workflowName }
    })
  return { store, record, summary }
})

const RunsLive = (sse: SseOptions) =>
  HttpApiBuilder.group(RelaviumApi, "runs", (handlers) =>
    Effect.gen(function* () {
      const engine = yield* WorkflowEngine
      const { record, store, summary } = yield* makeRunLookup
      const audit = yield* makeAudit
      return handlers
        .handle("start", ({ payload }) =>
          engine.start(payload.workflowId, payload.inputs ?? {}).pipe(
            Effect.mapError(fromEngine),
            Effect.tap((handle) => audit("run.start", handle.runId, { workflowId: payload.workflowId })),
            Effect.map((handle) => ({ runId: handle.runId, status: "running" as const }))
          )
        )
        .handle("list", ({ urlParams }) =>
          Effect.gen(function* () {
            const limit = urlParams.limit ?? 50
            const offset = urlParams.offset ?? 0
            // One more than the page shows whether there is a next page.
            const rows = yield* store
              .list({ status: urlParams.status, limit: offset + limit + 1 })
              .pipe(Effect.mapError(internal))
            const page = rows.slice(offset, offset + limit)
            return rows.length > offset + limit ? { runs: page, nextOffset: offset + limit } : { runs: page }
          })
        )
        .handle("get", ({ path }) => summary(path.runId))
        .handle("cancel", ({ path, urlParams }) =>
          Effect.gen(function* () {
            yield* record(path.runId)
            yield* engine.cancel(path.runId, urlParams.reason ?? "cancelled through the API").pipe(Effect.mapError(fromEngine))
            yield* audit("run.cancel", path.runId)
            const after = yield* record(path.runId)
            return { runId: path.runId, status: after.status }
          })
        )
        .handle("resume", ({ path }) =>
          Effect.gen(function* () {
            yield* record(path.runId)
            yield* engine.recover(path.runId).pipe(Effect.mapError(fromEngine))
            yield* audit("run.resume", path.runId)
            const after = yield* record(path.runId)
            return { runId: path.runId, status: after.status }
          })
        )
        .handleRaw("events", ({ headers, path, urlParams }) =>
          Effect.gen(function* () {
            const run = yield* record(path.runId)
            // A reconnecting EventSource keeps its URL, so Last-Event-ID wins over `?after=`.
            const after = headers["last-event-id"] ?? urlParams.after ?? -1
            // Nothing will follow an ended run's last event: 204 tells an EventSource not to reconnect.
            if (TerminalStatuses.has(run.status) && after >= run.lastSequenceNumber) {
              return HttpServerResponse.empty({ status: 204 })
            }
            return yield* eventStreamResponse(engine.events(path.runId, after), sse)
          })
        )
    })
  )

// ---------------------------------------------------------------------------
// Gates
// ---------------------------------------------------------------------------

const GatesLive = HttpApiBuilder.group(RelaviumApi, "gates", (handlers) =>
  Effect.gen(function* () {
    const engine = yield* WorkflowEngine
    const { record, store } = yield* makeRunLookup
    const audit = yield* makeAudit
    const decide = (
      runId: string,
      gateId: string,
      decision: "approved" | "rejected" | "input_provided",
      payload: unknown,
      comment: string | undefined
    ) =>
      Effect.gen(function* () {
        yield* record(runId)
        const decidedBy = yield* callerActor
        yield* engine
          .resume(runId, gateId, { decision, decidedBy, payload, comment })
          .pipe(Effect.mapError(fromEngine))
        // The decision's kind only: a comment or a given value may hold anything.
        yield* audit("gate.decide", gateId, { runId, decision })
        return { runId, gateId, decision }
      })
    return handlers
      .handle("list", ({ urlParams }) =>
        Effect.gen(function* () {
          if (urlParams.runId !== undefined) yield* record(urlParams.runId)
          return yield* store.pendingGates(urlParams.runId).pipe(Effect.mapError(internal))
        })
      )
      .handle("approve", ({ path, payload }) => decide(path.runId, path.gateId, "approved", undefined, payload?.comment))
      .handle("reject", ({ path, payload }) => decide(path.runId, path.gateId, "rejected", undefined, payload?.comment))
      .handle("input", ({ path, payload }) => decide(path.runId, path.gateId, "input_provided", payload.value, payload.comment))
  })
)

// ---------------------------------------------------------------------------
// Keys (write-only), models, health
// ---------------------------------------------------------------------------

const KeysLive = HttpApiBuilder.group(RelaviumApi, "keys", (handlers) =>
  Effect.gen(function* () {
    const keys = yield* KeyStore
    const audit = yield* makeAudit
    return handlers
      .handle("list", () => keys.list.pipe(Effect.map((providers) => ({ providers })), Effect.mapError(keyError)))
      .handle("set", ({ path, payload }) =>
        Redacted.value(payload.key).trim() === ""
          ? Effect.fail(new BadRequest({ message: "key: must not be blank" }))
          : keys.set(path.provider, Redacted.make(Redacted.value(payload.key).trim())).pipe(
              Effect.mapError(keyError),
              // The provider only, never the key.
              Effect.zipRight(audit("key.set", path.provider))
            )
      )
      .handle("remove", ({ path }) =>
        keys.remove(path.provider).pipe(
          Effect.mapError(keyError),
          Effect.flatMap((removed) =>
            removed ? audit("key.delete", path.provider) : Effect.fail(new NotFound({ message: `no stored key for ${path.provider}` }))
          )
        )
      )
  })
)

/** The user's prices, read at each request (an edit shows at once); a missing file is no prices. */
const readPrices = (file: string | undefined) =>
  Effect.suspend(() => {
    if (file === undefined) return Effect.succeed([])
    let text: string
    try {
      text = readFileSync(file, "utf8")
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return Effect.succeed([])
      return Effect.fail(new InternalError({ message: `${file}: cannot read the price file: ${(e as Error).message}` }))
    }
    return Either.match(Pricing.parsePriceFile(text, file), {
      onLeft: (error) => Effect.fail(new InternalError({ message: `the price file is invalid; fix it: ${error.message}` })),
      onRight: Effect.succeed
    })
  })

const SystemLive = (options: { readonly pricesFile?: string | undefined }) => HttpApiBuilder.group(RelaviumApi, "system", (handlers) =>
  Effect.gen(function* () {
    const store = yield* RunStore
    return handlers
      .handle("ready", () =>
        store.list({ limit: 1 }).pipe(
          Effect.as({ status: "ready" as const }),
          Effect.mapError((e) => new NotReady({ message: `the run store does not answer: ${e.message}` }))
        )
      )
      .handle("models", () => Effect.map(readPrices(options.pricesFile), Pricing.catalog))
  })
)

const HealthLive = HttpApiBuilder.group(RelaviumApi, "health", (handlers) =>
  handlers.handle("health", () => Effect.succeed({ status: "ok" as const }))
)

/** Every group of the API; needs the component tags, `AuditLog` and the `Authorization` middleware. */
export const layerHandlers = (sse: SseOptions & { readonly pricesFile?: string | undefined }) =>
  Layer.mergeAll(HealthLive, SystemLive(sse), WorkflowsLive, RunsLive(sse), GatesLive, KeysLive)

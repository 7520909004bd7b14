/**
 * `relavium run FILE`: starts the workflow on the local engine (SQLite in the data directory) and
 * follows it; with `--server`, on a running monolith (the HTTP client is loaded only then).
 */
import { Effect, Either, HashMap, Option } from "effect"
import { planExpressions, WorkflowEngine } from "@relavium/core"
import { KeyStore, WorkflowStore } from "@relavium/ports"
import { Inputs, type Plan } from "@relavium/domain"
import { KeyStores } from "@relavium/keys"
import type { RunArgs } from "../commands/Run.js"
import { followRun } from "../Follow.js"
import { withLocal } from "../runtime/Local.js"
import * as Settings from "../runtime/Settings.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"
import type { RemoteOptions } from "../Remote.js"
import { loadWorkflow } from "./Validate.js"

/** Providers the workflow's agents may call (fallbacks included): none for a workflow without agents. */
const providersCalled = (plan: Plan.WorkflowPlan) => {
  const providers = new Set<string>()
  for (const node of plan.nodes.values()) {
    if (node.type !== "agent") continue
    const agent = plan.agents.get(node.agent_ref)
    if (agent === undefined) continue
    providers.add(agent.provider)
    for (const fallback of agent.fallback_chain ?? []) providers.add(fallback.provider)
  }
  return providers
}

/** Of those, the ones that need a key (the provider list is loaded only for a workflow with agents). */
const providersNeedingKeys = (plan: Plan.WorkflowPlan) => {
  const called = providersCalled(plan)
  if (called.size === 0) return Effect.succeed([])
  return Effect.map(Effect.promise(() => import("@relavium/llm")), ({ Providers }) =>
    [...called].filter((p) => Providers.builtinProviders[p]?.keyRequired !== false).sort()
  )
}

/** Before anything starts: every provider the run may call has a key, or the user is told how to set it. */
export const checkKeys = (plan: Plan.WorkflowPlan, file: string) =>
  Effect.gen(function* () {
    const store = yield* KeyStore
    const missing: Array<string> = []
    for (const provider of yield* providersNeedingKeys(plan)) {
      const key = yield* store.get(provider).pipe(Effect.orElseSucceed(() => Option.none()))
      if (Option.isNone(key)) missing.push(provider)
    }
    if (missing.length > 0) {
      return yield* Effect.fail(
        new UsageProblem(
          `${file}: no API key for ${missing.join(", ")}: ${missing.map((p) => KeyStores.howToSet(p)).join("; ")} — or pass --cassette FILE to replay a recorded model`,
          "provider_auth"
        )
      )
    }
  })

/**
 * `relavium run FILE --server URL`: uploads the workflow to a running monolith, starts it there and
 * follows its events over SSE, rendered and with exit codes exactly as a local run.
 */
const runRemote = (
  run: {
    readonly file: string
    readonly text: string
    readonly plan: Plan.WorkflowPlan
    readonly inputs: Readonly<Record<string, string>>
    readonly json: boolean
  },
  options: RemoteOptions
) =>
  Effect.gen(function* () {
    // The API takes typed values: coerce the --input strings here, as the local engine does.
    const resolved = Inputs.resolveInputs(run.plan.spec.inputs, run.inputs, { coerceStrings: true })
    if (Either.isLeft(resolved)) return yield* Effect.fail(new UsageProblem(resolved.left.message))
    const inputs = Object.fromEntries(Object.keys(run.inputs).map((name) => [name, resolved.right[name]]))
    const { withRemote } = yield* Effect.promise(() => import("../Remote.js"))
    return yield* withRemote(options, (remote) =>
      Effect.gen(function* () {
        const stored = yield* remote.call(remote.api.workflows.upload({ payload: { yaml: run.text, file: run.file } }))
        const started = yield* remote.call(remote.api.runs.start({ payload: { workflowId: stored.workflowId, inputs } }))
        return yield* remote.follow(started.runId, {
          json: run.json,
          workflowName: run.plan.spec.name ?? run.plan.spec.id,
          cancelOnInterrupt: true
        })
      })
    )
  })

export const run = ({ ca, cassette, dataDir, file, input, json, mode, recordCassette, server, token, tokenDelayMs, workspace }: RunArgs) =>
  Effect.gen(function* () {
    const { plan, text } = yield* loadWorkflow(file)
    if (Option.isSome(server) && Option.isSome(mode)) {
      return yield* Effect.fail(new UsageProblem("--mode applies to runs on this machine; a run on a server uses the server's mode"))
    }
    const inputs = Option.match(input, { onNone: () => ({}), onSome: (m) => Object.fromEntries(HashMap.toEntries(m)) })
    if (Option.isSome(server)) {
      if (Option.isSome(cassette) || Option.isSome(workspace) || Option.isSome(recordCassette)) {
        return yield* Effect.fail(
          new UsageProblem(
            "--cassette, --record-cassette and --workspace apply to local runs; with --server, give --cassette and --workspace to `relavium monolith`"
          )
        )
      }
      process.exitCode = yield* runRemote({ file, inputs, json, plan, text }, { server: server.value, token, ca, dataDir })
      return
    }
    const cassetteFile = Option.getOrUndefined(cassette)
    if (cassetteFile !== undefined && Option.isSome(recordCassette)) {
      return yield* Effect.fail(new UsageProblem("--record-cassette records the live providers; it cannot be combined with --cassette"))
    }
    // Resolved once, before anything starts: where the model calls go (never a quiet fall back).
    const runMode = yield* Settings.runMode(mode).pipe(Effect.mapError((e) => new UsageProblem(e.message)))
    const gateway = runMode.executionMode === "managed" ? runMode.gateway : undefined
    if (gateway !== undefined && (cassetteFile !== undefined || Option.isSome(recordCassette))) {
      return yield* Effect.fail(new UsageProblem("managed mode sends model calls to the gateway; it cannot be combined with --cassette or --record-cassette"))
    }
    // The QuickJS worker starts loading with the layers only for a run that will get past its inputs.
    const startable = Either.isRight(Inputs.resolveInputs(plan.spec.inputs, inputs, { coerceStrings: true }))
    process.exitCode = yield* withLocal(
      Effect.gen(function* () {
        // Managed mode needs no provider key (and reads none).
        if (cassetteFile === undefined && gateway === undefined) yield* checkKeys(plan, file)
        const workflows = yield* WorkflowStore
        const engine = yield* WorkflowEngine
        const stored = yield* workflows.put({ name: plan.spec.id, source: text, file }).pipe(Effect.orDie)
        const handle = yield* engine
          .start(stored.workflowId, inputs, { coerceStrings: true })
          .pipe(Effect.mapError((e) => new UsageProblem(e.message, e.reason === "invalid_input" ? "validation" : e.reason)))
        return yield* followRun(handle.runId, { json, workflowName: plan.spec.name ?? plan.spec.id })
      }),
      {
        dataDir,
        cassette: cassetteFile,
        recordCassette: Option.getOrUndefined(recordCassette),
        tokenDelayMs,
        workspace,
        gateway,
        executionMode: runMode.executionMode,
        expressions: startable ? planExpressions(plan) : undefined
      }
    )
  }).pipe(Effect.catchIf(isUsageProblem, report(json)))

/**
 * `relavium runs fork RUN --from NODE [--input k=v …]` and `relavium runs retry RUN`: start a new run
 * from an ended one (docs/time-travel.md) on the local engine, or with `--server URL` on a monolith
 * over its API, then follow it as `relavium run` does (`--detach`, with `--server`, only prints its
 * id). The new run's id is on its first line (`run:started` with `--json`).
 */
import { Console, Effect, Either, HashMap, Option } from "effect"
import { type EngineError, WorkflowEngine } from "@relavium/core"
import { Inputs, WorkflowYaml } from "@relavium/domain"
import { RunStore, WorkflowStore } from "@relavium/ports"
import type { RunsArgs } from "../commands/Runs.js"
import { followRun } from "../Follow.js"
import { withRemote } from "../LazyRemote.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"
import type { Remote, RemoteOptions } from "../Remote.js"
import { withLocal } from "../runtime/Local.js"
import { checkKeys } from "./Run.js"

type NewRunArgs = RunsArgs["fork"] | RunsArgs["retry"]

const problemOf = (e: EngineError) =>
  new UsageProblem(e.message, e.reason === "invalid_input" || e.reason === "invalid_workflow" ? "validation" : e.reason)

const inputsOf = (input: NewRunArgs["input"]): Record<string, string> =>
  Option.match(input, { onNone: () => ({}), onSome: (m) => Object.fromEntries(HashMap.toEntries(m)) })

/**
 * The `--input` strings as the typed values the API takes, coerced to the types the run's workflow
 * declares (read from the server); an undeclared name is passed on for the server to refuse.
 */
const typedInputs = (remote: Remote, workflowId: string, given: Record<string, string>) =>
  Effect.gen(function* () {
    if (Object.keys(given).length === 0) return given as Record<string, unknown>
    const yaml = yield* remote.call(remote.api.workflows.export({ path: { workflowId } }))
    const plan = WorkflowYaml.parseWorkflow(yaml, `workflow ${workflowId}`)
    if (Either.isLeft(plan)) return yield* Effect.fail(new UsageProblem(plan.left.message))
    const declared = (plan.right.spec.inputs ?? []).filter((input) => Object.hasOwn(given, input.name))
    const resolved = Inputs.resolveInputs(declared, Object.fromEntries(declared.map((i) => [i.name, given[i.name]])), { coerceStrings: true })
    if (Either.isLeft(resolved)) return yield* Effect.fail(new UsageProblem(resolved.left.message))
    return { ...given, ...resolved.right } as Record<string, unknown>
  })

const printDetached = (runId: string, json: boolean) =>
  Console.log(json ? JSON.stringify({ runId, status: "running" }) : runId)

/** On a monolith: create the new run through `create`, then follow it (or print its id with --detach). */
const remoteNewRun = (
  args: NewRunArgs,
  options: RemoteOptions,
  create: (remote: Remote, workflowId: string) => Effect.Effect<{ readonly runId: string }, UsageProblem>
) =>
  withRemote(options, (remote) =>
    Effect.gen(function* () {
      const original = yield* remote.call(remote.api.runs.get({ path: { runId: args.runId } }))
      const created = yield* create(remote, original.workflowId)
      if (args.detach) return yield* printDetached(created.runId, args.json)
      process.exitCode = yield* remote.follow(created.runId, {
        json: args.json,
        workflowName: original.workflowName,
        cancelOnInterrupt: true
      })
    })
  )

/**
 * Without a cassette, every provider the ended run's workflow may call needs a key, as for
 * `relavium run`; an unknown run is left for the engine to name.
 */
const checkKeysOf = (runId: string, cassette: string | undefined) =>
  Effect.gen(function* () {
    if (cassette !== undefined) return
    const record = yield* Effect.flatMap(RunStore, (store) => store.get(runId)).pipe(Effect.orDie)
    if (Option.isNone(record)) return
    const stored = yield* Effect.flatMap(WorkflowStore, (workflows) => workflows.get(record.value.workflowId)).pipe(Effect.orDie)
    if (Option.isNone(stored)) return
    const plan = WorkflowYaml.parseWorkflow(stored.value.source, stored.value.file)
    if (Either.isRight(plan)) yield* checkKeys(plan.right, stored.value.file)
  })

/** Here: the new run executes in this process, on the local database, followed to its end or pause. */
const localNewRun = (args: NewRunArgs, create: Effect.Effect<{ readonly runId: string }, EngineError, WorkflowEngine>) =>
  args.detach
    ? Effect.fail(
        new UsageProblem("--detach applies with --server: a local run executes in this process (stopped, it is continued with `relavium resume`)")
      )
    : withLocal(
        Effect.gen(function* () {
          yield* checkKeysOf(args.runId, Option.getOrUndefined(args.cassette))
          const handle = yield* create.pipe(Effect.mapError(problemOf))
          const record = yield* Effect.flatMap(RunStore, (store) => store.get(handle.runId)).pipe(Effect.orDie)
          const workflowName = Option.match(record, { onNone: () => handle.runId, onSome: (r) => r.workflowName })
          process.exitCode = yield* followRun(handle.runId, { json: args.json, workflowName })
        }),
        { dataDir: args.dataDir, workspace: args.workspace, cassette: Option.getOrUndefined(args.cassette) }
      )

const remoteOnlyFlags = (args: NewRunArgs) =>
  Option.isSome(args.cassette) || Option.isSome(args.workspace)
    ? Effect.fail(new UsageProblem("--cassette and --workspace apply to local runs; with --server, give them to `relavium monolith`"))
    : Effect.void

/** `relavium runs fork RUN --from NODE [--input k=v …]`. */
export const fork = (args: RunsArgs["fork"]) => {
  const given = inputsOf(args.input)
  return (
    Option.isSome(args.server)
      ? Effect.zipRight(
          remoteOnlyFlags(args),
          remoteNewRun(args, { server: args.server.value, token: args.token, ca: args.ca, dataDir: args.dataDir }, (remote, workflowId) =>
            Effect.flatMap(typedInputs(remote, workflowId, given), (inputs) =>
              remote.call(remote.api.runs.fork({ path: { runId: args.runId }, payload: { from: args.from, inputs } }))
            )
          )
        )
      : localNewRun(
          args,
          Effect.flatMap(WorkflowEngine, (engine) => engine.fork(args.runId, { from: args.from, inputs: given, coerceStrings: true }))
        )
  ).pipe(Effect.catchIf(isUsageProblem, report(args.json)))
}

/** `relavium runs retry RUN [--input secret=v …]`. */
export const retry = (args: RunsArgs["retry"]) => {
  const given = inputsOf(args.input)
  return (
    Option.isSome(args.server)
      ? Effect.zipRight(
          remoteOnlyFlags(args),
          remoteNewRun(args, { server: args.server.value, token: args.token, ca: args.ca, dataDir: args.dataDir }, (remote) =>
            remote.call(remote.api.runs.retry({ path: { runId: args.runId }, payload: { inputs: given } }))
          )
        )
      : localNewRun(
          args,
          Effect.flatMap(WorkflowEngine, (engine) => engine.retry(args.runId, { inputs: given, coerceStrings: true }))
        )
  ).pipe(Effect.catchIf(isUsageProblem, report(args.json)))
}

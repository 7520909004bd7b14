/**
 * `relavium gate list` and `relavium gate RUN --approve|--reject|--input JSON`:
 * deciding a human gate from any process. After the decision this process
 * continues the run until it ends or pauses again. Flags in commands/Gate.ts.
 */
import { Console, Effect, Option, Schema } from "effect"
import { WorkflowEngine } from "@relavium/core"
import { RunStore } from "@relavium/ports"
import { ExitCode } from "../ExitCodes.js"
import { followRun } from "../Follow.js"
import { withLocal, withLocalRun } from "../runtime/Local.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"
import { withRemote } from "../LazyRemote.js"
import type { GateArgs } from "../commands/Gate.js"
import { loadSummary } from "./Runs.js"

const decodeJson = Schema.decodeUnknown(Schema.parseJson())

const printGates = (
  gates: ReadonlyArray<{
    readonly runId: string
    readonly gateId: string
    readonly gateType: string
    readonly message: string
    readonly assignee?: string | undefined
    readonly expiresAt?: string | undefined
  }>,
  json: boolean,
  server?: string
) =>
  Effect.gen(function* () {
    if (json) return yield* Console.log(JSON.stringify(gates))
    if (gates.length === 0) return yield* Console.log("no pending gates")
    for (const g of gates) {
      yield* Console.log(`${g.gateId}\n  ${g.gateType}${g.assignee ? ` for ${g.assignee}` : ""}: ${g.message}${g.expiresAt ? `\n  expires ${g.expiresAt}` : ""}\n  decide: relavium gate ${g.runId} --gate ${g.gateId} --approve${server ? ` --server ${server}` : ""}`)
    }
  })

export const list = ({ ca, dataDir, json, server, token }: GateArgs["list"]) =>
  Option.isSome(server)
    ? withRemote({ server: server.value, token, ca, dataDir }, (remote) =>
        remote.call(remote.api.gates.list({ urlParams: {} })).pipe(Effect.flatMap((gates) => printGates(gates, json, remote.baseUrl)))
      ).pipe(Effect.catchIf(isUsageProblem, report(json)))
    : withLocal(Effect.gen(function* () {
    const store = yield* RunStore
    // The store keeps pending gates as a projection: no run's log is read or folded here.
    yield* printGates(yield* store.pendingGates().pipe(Effect.orDie), json)
  }), { dataDir }).pipe(Effect.catchIf(isUsageProblem, report(json)))

/** The run, the decision and its payload from the flags, or a usage problem. */
const parseDecision = (runIdArg: Option.Option<string>, approve: boolean, reject: boolean, input: Option.Option<string>) =>
  Effect.gen(function* () {
    if (Option.isNone(runIdArg)) return yield* Effect.fail(new UsageProblem("name the run: relavium gate RUN-ID --approve (see `relavium gate list`)"))
    const chosen = [approve, reject, Option.isSome(input)].filter(Boolean).length
    if (chosen !== 1) return yield* Effect.fail(new UsageProblem("say exactly one of --approve, --reject or --input JSON"))
    const payload: unknown = Option.isSome(input)
      ? yield* decodeJson(input.value).pipe(
          Effect.mapError(() => new UsageProblem(`--input: not valid JSON: ${input.value}`))
        )
      : undefined
    const decision = approve ? ("approved" as const) : reject ? ("rejected" as const) : ("input_provided" as const)
    return { runId: runIdArg.value, decision, payload }
  })

/** `gate RUN ... --server URL`: the decision goes to the monolith, which continues the run; this process follows it. */
const decideRemote = (
  flags: {
    readonly runIdArg: Option.Option<string>
    readonly approve: boolean
    readonly reject: boolean
    readonly input: Option.Option<string>
    readonly gateId: Option.Option<string>
    readonly comment: Option.Option<string>
    readonly json: boolean
    readonly noWait: boolean
  },
  options: Parameters<typeof withRemote>[0]
) =>
  Effect.gen(function* () {
    const { decision, payload, runId } = yield* parseDecision(flags.runIdArg, flags.approve, flags.reject, flags.input)
    return yield* withRemote(options, (remote) =>
      Effect.gen(function* () {
        const summary = yield* remote.call(remote.api.runs.get({ path: { runId } }))
        let gateId = Option.getOrUndefined(flags.gateId)
        if (gateId === undefined) {
          const pending = summary.pendingGates
          if (pending.length === 0) return yield* Effect.fail(new UsageProblem(`run ${runId} is not waiting at a gate (${summary.status})`, "conflict"))
          if (pending.length > 1) {
            return yield* Effect.fail(
              new UsageProblem(`run ${runId} waits at ${pending.length} gates; say which with --gate (${pending.map((g) => g.gateId).join(", ")})`)
            )
          }
          gateId = pending[0]!.gateId
        }
        const path = { runId, gateId }
        const comment = Option.getOrUndefined(flags.comment)
        yield* remote.call(
          decision === "approved"
            ? remote.api.gates.approve({ path, payload: { comment } })
            : decision === "rejected"
            ? remote.api.gates.reject({ path, payload: { comment } })
            : remote.api.gates.input({ path, payload: { value: payload, comment } })
        )
        if (flags.noWait) {
          yield* Console.log(flags.json ? JSON.stringify({ runId, decided: true }) : `decision recorded for run ${runId}`)
          return ExitCode.ok
        }
        return yield* remote.follow(runId, { json: flags.json, workflowName: summary.workflowName, after: summary.lastSequenceNumber })
      })
    )
  })

export const gate = ({ approve, ca, comment, dataDir, gate: gateId, input, json, noWait, reject, runId: runIdArg, server, token, workspace }: GateArgs["gate"]) =>
  Option.isSome(server)
    ? decideRemote({ runIdArg, approve, reject, input, gateId, comment, json, noWait }, { server: server.value, token, ca, dataDir }).pipe(
        Effect.flatMap((code) => Effect.sync(() => void (process.exitCode = code))),
        Effect.catchIf(isUsageProblem, report(json))
      )
    : withLocalRun(runIdArg, Effect.gen(function* () {
    const { payload, runId } = yield* parseDecision(runIdArg, approve, reject, input)
    const { record, summary } = yield* loadSummary(runId)
    const engine = yield* WorkflowEngine
    yield* engine
      .resume(runId, Option.getOrUndefined(gateId), {
        decision: approve ? "approved" : reject ? "rejected" : "input_provided",
        decidedBy: "cli",
        payload,
        comment: Option.getOrUndefined(comment)
      })
      .pipe(Effect.mapError((e) => new UsageProblem(e.message, e.reason)))
    if (noWait) return yield* Console.log(json ? JSON.stringify({ runId, decided: true }) : `decision recorded for run ${runId}`)
    // Continue the run here: the process that paused it has exited.
    yield* engine.recover(runId).pipe(Effect.orDie)
    process.exitCode = yield* followRun(runId, { json, workflowName: record.workflowName, after: summary.lastSequenceNumber })
  }), { dataDir, workspace }).pipe(Effect.catchIf(isUsageProblem, report(json)))

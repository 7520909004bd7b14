/**
 * `relavium gate list` and `relavium gate RUN --approve|--reject|--input JSON`:
 * deciding a human gate from any process. After the decision this process
 * continues the run until it ends or pauses again.
 */
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option, Schema } from "effect"
import { RunStore, RunSummary, WorkflowEngine } from "@relavium/core"
import { followRun } from "../Follow.js"
import { dataDirOption, withLocal, workspaceOption } from "../Local.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"
import { jsonOption, loadSummary } from "./Runs.js"

const decodeJson = Schema.decodeUnknown(Schema.parseJson())

const list = Command.make("list", { json: jsonOption, dataDir: dataDirOption }, ({ dataDir, json }) =>
  withLocal(Effect.gen(function* () {
    const store = yield* RunStore
    const waiting = yield* store.list({ status: "waiting" }).pipe(Effect.orDie)
    const running = yield* store.list({ status: "running" }).pipe(Effect.orDie)
    const gates: Array<RunSummary.GateSummary> = []
    for (const run of [...waiting, ...running]) {
      gates.push(...RunSummary.summarize(run.runId, yield* store.events(run.runId).pipe(Effect.orDie)).pendingGates)
    }
    if (json) return yield* Console.log(JSON.stringify(gates))
    if (gates.length === 0) return yield* Console.log("no pending gates")
    for (const g of gates) {
      yield* Console.log(`${g.gateId}\n  ${g.gateType}${g.assignee ? ` for ${g.assignee}` : ""}: ${g.message}${g.expiresAt ? `\n  expires ${g.expiresAt}` : ""}\n  decide: relavium gate ${g.runId} --gate ${g.gateId} --approve`)
    }
  }), { dataDir }).pipe(Effect.catchIf(isUsageProblem, report(json)))
).pipe(Command.withDescription("List the gates waiting for a decision"))

const decide = {
  runId: Args.text({ name: "run-id" }).pipe(Args.withDescription("the paused run"), Args.optional),
  approve: Options.boolean("approve").pipe(Options.withDescription("approve the gate")),
  reject: Options.boolean("reject").pipe(Options.withDescription("reject the gate (the run goes on; the gate's output says rejected)")),
  input: Options.text("input").pipe(Options.optional, Options.withDescription("answer an input gate with this JSON value")),
  gate: Options.text("gate").pipe(Options.optional, Options.withDescription("which gate, when the run waits at several")),
  comment: Options.text("comment").pipe(Options.optional, Options.withDescription("a note recorded with the decision")),
  json: jsonOption,
  dataDir: dataDirOption,
  workspace: workspaceOption,
  noWait: Options.boolean("no-wait").pipe(Options.withDescription("record the decision and return without continuing the run here"))
}

export const gate = Command.make("gate", decide, ({ approve, comment, dataDir, gate: gateId, input, json, noWait, reject, runId: runIdArg, workspace }) =>
  withLocal(Effect.gen(function* () {
    if (Option.isNone(runIdArg)) return yield* Effect.fail(new UsageProblem("name the run: relavium gate RUN-ID --approve (see `relavium gate list`)"))
    const runId = runIdArg.value
    const chosen = [approve, reject, Option.isSome(input)].filter(Boolean).length
    if (chosen !== 1) return yield* Effect.fail(new UsageProblem("say exactly one of --approve, --reject or --input JSON"))
    const payload = Option.isSome(input)
      ? yield* decodeJson(input.value).pipe(
          Effect.mapError(() => new UsageProblem(`--input: not valid JSON: ${input.value}`))
        )
      : undefined
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
).pipe(
  Command.withDescription("Decide a human gate of a paused run, then continue the run"),
  Command.withSubcommands([list])
)

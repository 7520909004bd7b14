/**
 * `relavium runs list|show|logs|cancel|prune` and `relavium resume`: looking
 * after runs stored in the local database (WorkflowEngine, RunStore and
 * WorkflowStore on the durable local layers) or, with `--server URL`, on a
 * running monolith over its API (all but prune), with the same output and
 * exit codes.
 */
import { Console, Duration, Effect, Option, Stream } from "effect"
import { RunSummary, WorkflowEngine } from "@relavium/core"
import { RunStore, WorkflowStore } from "@relavium/ports"
import { Cost, RunEvent as RE } from "@relavium/domain"
import { followRun } from "../Follow.js"
import { withLocal, withLocalRun } from "../runtime/Local.js"
import * as Settings from "../runtime/Settings.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"
import { colors, makeRenderer, plain } from "../Render.js"
import type { RunsArgs } from "../commands/Runs.js"
import { withRemote } from "../LazyRemote.js"
import type { RunSummary as ApiRunSummary } from "@relavium/server"

export const loadSummary = (runId: string) =>
  Effect.gen(function* () {
    const store = yield* RunStore
    const record = yield* store.get(runId).pipe(Effect.orDie)
    if (Option.isNone(record)) return yield* Effect.fail(new UsageProblem(`no run with id ${runId} (see \`relavium runs list\`)`, "not_found"))
    const events = yield* store.events(runId).pipe(Effect.orDie)
    return { record: record.value, summary: RunSummary.summarize(runId, events), events }
  })

const workflowNameOf = (workflowId: string) =>
  Effect.flatMap(WorkflowStore, (workflows) => workflows.get(workflowId)).pipe(
    Effect.map(Option.match({ onNone: () => workflowId, onSome: (w) => w.name })),
    Effect.orElseSucceed(() => workflowId)
  )

const pad = (s: string, n: number) => (s.length >= n ? s : s + " ".repeat(n - s.length))

export const list = ({ ca, dataDir, json, limit, server, status, token }: RunsArgs["list"]) =>
    (Option.isSome(server)
      ? withRemote({ server: server.value, token, ca, dataDir }, (remote) =>
          remote.call(remote.api.runs.list({ urlParams: { status: Option.getOrUndefined(status), limit } }))
        ).pipe(Effect.flatMap((page) => printRuns(page.runs, json)))
      : withLocal(Effect.gen(function* () {
      const store = yield* RunStore
      const runs = yield* store.list({ status: Option.getOrUndefined(status), limit }).pipe(Effect.orDie)
      yield* printRuns(runs, json)
    }), { dataDir })).pipe(Effect.catchIf(isUsageProblem, report(json)))

const printRuns = (
  runs: ReadonlyArray<{ readonly runId: string; readonly workflowName: string; readonly status: string; readonly updatedAt: string }>,
  json: boolean
) =>
  Effect.gen(function* () {
    if (json) return yield* Console.log(JSON.stringify(runs))
    if (runs.length === 0) return yield* Console.log("no runs yet — start one with `relavium run FILE`")
    yield* Console.log(`${pad("RUN", 38)}${pad("WORKFLOW", 24)}${pad("STATUS", 11)}UPDATED`)
    for (const r of runs) yield* Console.log(`${pad(r.runId, 38)}${pad(r.workflowName, 24)}${pad(r.status, 11)}${r.updatedAt}`)
  })

type SummaryView = Omit<typeof ApiRunSummary.Type, "workflowName" | "pendingGates"> & {
  readonly pendingGates: ReadonlyArray<{ readonly gateId: string; readonly gateType: string; readonly message: string }>
}

export const show = ({ ca, dataDir, json, runId, server, token }: RunsArgs["show"]) =>
  (Option.isSome(server)
    ? withRemote({ server: server.value, token, ca, dataDir }, (remote) => remote.call(remote.api.runs.get({ path: { runId } }))).pipe(
        Effect.map((summary) => ({ record: { workflowName: summary.workflowName }, summary: summary as SummaryView }))
      )
    : withLocal(loadSummary(runId), { dataDir }).pipe(
        Effect.map(({ record, summary }) => ({ record: { workflowName: record.workflowName }, summary: summary as SummaryView }))
      )
  ).pipe(
    Effect.flatMap(({ record, summary }) =>
      json
        ? Console.log(JSON.stringify({ ...summary, workflowName: record.workflowName }))
        : Console.log(
            [
              `run       ${summary.runId}`,
              `workflow  ${record.workflowName} (${summary.workflowId})`,
              `status    ${summary.status}`,
              `started   ${summary.startedAt ?? "-"}${summary.endedAt ? `   ended ${summary.endedAt}` : ""}`,
              ...(summary.forkedFrom === undefined
                ? []
                : [`${pad(summary.forkedFrom.kind === "fork" ? "forked" : "retries", 10)}run ${summary.forkedFrom.runId}${summary.forkedFrom.nodeId === undefined ? "" : ` from node ${summary.forkedFrom.nodeId}`}`]),
              `usage     ${summary.tokens.input} in / ${summary.tokens.output} out tokens, ${Cost.formatUsd(summary.costMicrocents)}`,
              "nodes",
              ...summary.nodes.map(
                (n) =>
                  `  ${pad(n.nodeId, 24)}${pad(n.status, 10)}${n.attempt > 1 ? `attempt ${n.attempt} ` : ""}${n.reusedFrom !== undefined ? `reused from run ${n.reusedFrom}` : n.durationMs !== undefined ? `${n.durationMs} ms` : ""}${n.error ? `${n.error.code}: ${n.error.message}` : ""}${n.skipReason ? n.skipReason.replace(/_/g, " ") : ""}`
              ),
              ...(summary.pendingGates.length > 0
                ? ["pending gates", ...summary.pendingGates.map((g) => `  ${g.gateId}  ${g.gateType}: ${g.message}`)]
                : []),
              ...(summary.error ? [`error     ${summary.error.code}: ${summary.error.message}`] : []),
              ...(summary.outputs && summary.status === "completed" ? ["outputs", JSON.stringify(summary.outputs, null, 2)] : [])
            ].join("\n")
          )
    ),
    Effect.catchIf(isUsageProblem, report(json))
  )

export const logs = ({ ca, dataDir, follow, json, runId, server, token }: RunsArgs["logs"]) =>
    (Option.isSome(server)
      ? withRemote({ server: server.value, token, ca, dataDir }, (remote) =>
          Effect.gen(function* () {
            const summary = yield* remote.call(remote.api.runs.get({ path: { runId } }))
            // As the local command: the whole stored log, or with --follow also what comes, through pauses, to the end.
            yield* remote.follow(
              runId,
              follow
                ? { json, workflowName: summary.workflowName, throughPauses: true }
                : { json, workflowName: summary.workflowName, throughPauses: true, until: summary.lastSequenceNumber }
            )
          })
        )
      : withLocal(Effect.gen(function* () {
      const { record, events } = yield* loadSummary(runId)
      if (follow) {
        const engine = yield* WorkflowEngine
        const render = makeRenderer((yield* Settings.colors) ? colors : plain, record.workflowName)
        return yield* engine.events(runId).pipe(
          Stream.runForEach((e) => Effect.sync(() => process.stdout.write(json ? `${RE.encodeRunEventJson(e)}\n` : render(e)))),
          Effect.orDie
        )
      }
      const render = makeRenderer((yield* Settings.colors) ? colors : plain, record.workflowName)
      for (const e of events) process.stdout.write(json ? `${RE.encodeRunEventJson(e)}\n` : render(e))
    }), { dataDir })).pipe(Effect.catchIf(isUsageProblem, report(json)))

const ended = (status: string) => status === "completed" || status === "failed" || status === "cancelled"

const printCancelled = (runId: string, status: string, alreadyEnded: boolean, json: boolean) =>
  Console.log(
    json ? JSON.stringify({ runId, status }) : alreadyEnded ? `run ${runId} had already ended (${status})` : `run ${runId} cancelled`
  )

export const cancel = ({ ca, dataDir, json, runId, server, token }: RunsArgs["cancel"]) =>
  (Option.isSome(server)
    ? withRemote({ server: server.value, token, ca, dataDir }, (remote) =>
        Effect.gen(function* () {
          const summary = yield* remote.call(remote.api.runs.get({ path: { runId } }))
          if (ended(summary.status)) return yield* printCancelled(runId, summary.status, true, json)
          const after = yield* remote.call(remote.api.runs.cancel({ path: { runId }, urlParams: { reason: "cancelled from the CLI" } }))
          // It may have ended on its own in the meantime; say which.
          yield* printCancelled(runId, after.status, after.status !== "cancelled", json)
        })
      )
    : withLocal(Effect.gen(function* () {
    const { summary } = yield* loadSummary(runId)
    if (ended(summary.status)) return yield* printCancelled(runId, summary.status, true, json)
    const engine = yield* WorkflowEngine
    yield* engine.cancel(runId, "cancelled from the CLI").pipe(Effect.orDie)
    yield* printCancelled(runId, "cancelled", false, json)
  }), { dataDir })).pipe(Effect.catchIf(isUsageProblem, report(json)))

export const prune = ({ dataDir, json, olderThan }: RunsArgs["prune"]) =>
    withLocal(Effect.gen(function* () {
      const match = /^(\d+)\s*(d|h|m|s)$/.exec(olderThan.trim())
      if (!match) return yield* Effect.fail(new UsageProblem(`--older-than ${olderThan}: expected a number and a unit, e.g. 7d, 12h, 30m`))
      const unit = { d: "days", h: "hours", m: "minutes", s: "seconds" } as const
      const age = Duration.decode(`${match[1]} ${unit[match[2] as keyof typeof unit]}` as Duration.DurationInput)
      const store = yield* RunStore
      const cutoff = new Date(Date.now() - Duration.toMillis(age))
      const deleted = yield* store.prune(cutoff).pipe(Effect.orDie)
      yield* Console.log(json ? JSON.stringify({ deleted }) : `deleted ${deleted} ended run${deleted === 1 ? "" : "s"} last updated before ${cutoff.toISOString()}`)
    }), { dataDir }).pipe(Effect.catchIf(isUsageProblem, report(json)))

const alreadyEnded = (runId: string, status: string) =>
  new UsageProblem(`run ${runId} has already ended (${status}); nothing to resume`, "conflict")

/** `relavium resume RUN`: continues a run whose process died, without re-running completed nodes. */
export const resume = ({ ca, dataDir, json, runId, server, token, workspace }: RunsArgs["resume"]) =>
    (Option.isSome(server)
      ? Option.isSome(workspace)
        ? Effect.fail(new UsageProblem("--workspace applies to local runs; with --server, give it to `relavium monolith`"))
        : withRemote({ server: server.value, token, ca, dataDir }, (remote) =>
            Effect.gen(function* () {
              const summary = yield* remote.call(remote.api.runs.get({ path: { runId } }))
              if (ended(summary.status)) return yield* Effect.fail(alreadyEnded(runId, summary.status))
              yield* remote.call(remote.api.runs.resume({ path: { runId } }))
              process.exitCode = yield* remote.follow(runId, {
                json,
                workflowName: summary.workflowName,
                after: summary.lastSequenceNumber,
                cancelOnInterrupt: true
              })
            })
          )
      : withLocalRun(Option.some(runId), Effect.gen(function* () {
    const { record, summary } = yield* loadSummary(runId)
    if (ended(summary.status)) return yield* Effect.fail(alreadyEnded(runId, summary.status))
    const engine = yield* WorkflowEngine
    yield* engine.recover(runId).pipe(Effect.orDie)
    process.exitCode = yield* followRun(runId, { json, workflowName: yield* workflowNameOf(record.workflowId), after: summary.lastSequenceNumber })
  }), { dataDir, workspace })).pipe(Effect.catchIf(isUsageProblem, report(json)))

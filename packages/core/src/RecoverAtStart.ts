/**
 * Recovery at start-up: continue every run a previous process left running or
 * waiting. It only writes events and offers jobs (the workers do the work), so
 * a server forks it and serves at once; a run that keeps stopping the process
 * is failed as a poison run instead of being resumed again (Recover.ts).
 */
import { Effect } from "effect"
import { forOrg, RunStore } from "@relavium/ports"
import { WorkflowEngine } from "./Engine.js"

export interface RunRecoveryReport {
  /** Runs whose jobs were offered again. */
  readonly resumed: ReadonlyArray<string>
  /** Runs failed with `poison_run`, with the node that kept stopping the process. */
  readonly poisoned: ReadonlyArray<{ readonly runId: string; readonly nodeId: string; readonly message: string }>
  /** Runs that could not be recovered now (the store failed); the next start tries again. */
  readonly failed: ReadonlyArray<{ readonly runId: string; readonly message: string }>
  /** Set when the store could not even list the runs to recover. */
  readonly listError?: string | undefined
}

/**
 * Recovers every run left running or waiting, one after the other, and reports what it did.
 * It never fails: a run that cannot be recovered is logged and reported. Fork it from the
 * composition root (`Effect.forkScoped`) so start-up does not wait for it.
 */
export const recoverAtStart: Effect.Effect<RunRecoveryReport, never, WorkflowEngine | RunStore> = Effect.gen(function* () {
  const store = yield* RunStore
  const engine = yield* WorkflowEngine
  const resumed: Array<string> = []
  const poisoned: Array<RunRecoveryReport["poisoned"][number]> = []
  const failed: Array<RunRecoveryReport["failed"][number]> = []
  const listed = yield* store.runsToRecover().pipe(Effect.either)
  if (listed._tag === "Left") {
    yield* Effect.logError(`could not list the runs to recover: ${listed.left.message}`)
    return { resumed, poisoned, failed, listError: listed.left.message }
  }
  const records = listed.right
  for (const record of records) {
    // A multi-tenant store lists the runs of every org: each is recovered for its own.
    const recover = engine.recover(record.runId)
    const outcome = yield* Effect.either(record.orgId === undefined ? recover : forOrg(record.orgId)(recover))
    if (outcome._tag === "Left") {
      failed.push({ runId: record.runId, message: outcome.left.message })
      yield* Effect.logError(`could not resume run ${record.runId}: ${outcome.left.message}`)
    } else if (outcome.right._tag === "Resumed") {
      resumed.push(record.runId)
      yield* Effect.logInfo(`resumed run ${record.runId}`)
    } else if (outcome.right._tag === "Poisoned") {
      poisoned.push({ runId: record.runId, nodeId: outcome.right.nodeId, message: outcome.right.message })
      yield* Effect.logWarning(`run ${record.runId} failed (poison_run): ${outcome.right.message}`)
    }
  }
  return { resumed, poisoned, failed }
})

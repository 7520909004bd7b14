/**
 * Deciding a human gate: approve, reject or provide input, by a user or by the
 * gate's timeout. Shared by the engine (`resume`) and the worker (a gate's
 * timeout job): the decision and the job that acts on it are written together.
 */
import { Effect, Either } from "effect"
import type { RunEvent as RE } from "@relavium/domain"
import type { Job, RunQueue } from "@relavium/ports"
import { EngineError, now, storeError } from "./EngineError.js"
import { offerRetry } from "./RetryPolicy.js"
import type { Runs } from "./RunCache.js"
import { commitThen, offerSpan } from "./RunLoop.js"
import { pastSpan, SpanName } from "./Telemetry.js"
import { isTerminalState, nodeState } from "./RunState.js"

export interface GateResolution {
  readonly decision: RE.GateDecision
  readonly decidedBy: string
  readonly payload?: unknown
  readonly comment?: string | undefined
}

/** Decides a pending gate (the only one when `gateId` is undefined); a gate already decided is left as it is. */
export const gateDecision = (runs: Runs, queue: RunQueue["Type"], runId: string, gateId: string | undefined, resolution: GateResolution) =>
  Effect.gen(function* () {
    for (let tries = 0; tries < 50; tries++) {
      const { state } = yield* runs.load(runId)
      const gates = [...state.pendingGates.values()]
      const id =
        gateId ??
        (gates.length === 1
          ? gates[0]!.gateId
          : yield* new EngineError({
                reason: gates.length === 0 ? "not_found" : "conflict",
                message:
                  gates.length === 0
                    ? `run ${runId} has no pending gate`
                    : `run ${runId} has ${gates.length} pending gates; name one (${gates.map((g) => g.gateId).join(", ")})`
              }))
      if (state.resolvedGateIds.has(id)) return
      if (isTerminalState(state)) {
        return yield* new EngineError({ reason: "conflict", message: `run ${runId} has already ended (${state.status})` })
      }
      const gate = state.pendingGates.get(id)
      if (gate === undefined) {
        return yield* new EngineError({ reason: "not_found", message: `run ${runId} has no gate ${id}` })
      }
      if (resolution.decision === "input_provided" && gate.gateType !== "input") {
        return yield* new EngineError({ reason: "invalid_input", message: `gate ${id} is a ${gate.gateType} gate; approve or reject it` })
      }
      const timestamp = yield* now
      const resumed: RE.RunEventDraft = {
        type: "human_gate:resumed",
        runId,
        timestamp,
        nodeId: gate.nodeId,
        gateId: id,
        decision: resolution.decision,
        decidedBy: resolution.decidedBy,
        payload: resolution.payload,
        comment: resolution.comment
      }
      const approved = resolution.decision !== "rejected"
      const drafts: Array<RE.RunEventDraft> = [resumed]
      let next: Job = { _tag: "Advance", runId }
      if (gate.gateType === "budget") {
        if (approved) next = { _tag: "ExecuteNode", runId, nodeId: gate.nodeId, attempt: nodeState(state, gate.nodeId).attempt }
        else
          drafts.push({
            type: "node:failed",
            runId,
            timestamp,
            nodeId: gate.nodeId,
            error: { code: "budget_exceeded", message: "the budget gate was rejected", retryable: false }
          })
      } else if (resolution.decidedBy === "timeout" && !approved) {
        drafts.push({
          type: "node:failed",
          runId,
          timestamp,
          nodeId: gate.nodeId,
          error: { code: "run_timeout", message: `gate '${gate.nodeId}' timed out and its timeout_action is reject`, retryable: false }
        })
      } else {
        drafts.push({
          type: "node:completed",
          runId,
          timestamp,
          nodeId: gate.nodeId,
          output: resolution.payload ?? { decision: resolution.decision },
          tokensUsed: { input: 0, output: 0 },
          durationMs: 0
        })
      }
      // The decision and the job that acts on it go together.
      const result = yield* commitThen(runs, runId, drafts, state.lastSequenceNumber, queue.offer([next]).pipe(Effect.retry(offerRetry), offerSpan([next._tag])))
      if (Either.isLeft(result)) {
        if (result.left._tag === "SequenceConflict") continue
        if (result.left._tag === "RunClosed") return
        return yield* storeError(result.left)
      }
      // The wait, from the gate's opening to this decision, as a span of the run's trace.
      if (gate.openedAt !== undefined) {
        yield* pastSpan(SpanName.gateWait, Date.parse(gate.openedAt), {
          "relavium.run_id": runId,
          "relavium.node_id": gate.nodeId,
          "relavium.gate_id": id,
          "relavium.gate_type": gate.gateType,
          "relavium.gate_decision": resolution.decision,
          "relavium.gate_decided_by": resolution.decidedBy === "timeout" ? "timeout" : "user"
        })
      }
      return
    }
    return yield* new EngineError({ reason: "conflict", message: `run ${runId} is too busy to take the decision; retry` })
  })

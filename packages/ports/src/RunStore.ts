/**
 * Runs and their append-only, per-run numbered event log.
 *
 * The store assigns sequence numbers, so concurrent writers of one run (node
 * fibers, workers in other processes) never produce a gap or a duplicate. An
 * append after the run's terminal event is refused: nothing is written once a
 * run has completed, failed or been cancelled.
 */
import { Context, Data, Effect, Layer, Option } from "effect"
import { RunEvent as RE, type Run } from "@relavium/domain"

export type RunStatus = Run.RunStatus
/** The statuses of a run that has ended. */
export type TerminalStatus = Run.TerminalStatus
export const TerminalStatuses: ReadonlySet<RunStatus> = new Set<TerminalStatus>(["completed", "failed", "cancelled"])
/** The statuses of a run a process must pick up again after a restart. */
export const ActiveStatuses: ReadonlySet<RunStatus> = new Set<RunStatus>(["running", "waiting"])

/** A run as stored (the shape is `Run.RunRecord` in @relavium/domain). */
export type RunRecord = Run.RunRecord

/** A run a recovery sweep found, with the org it belongs to when the store holds several. */
export type RecoverableRun = RunRecord & { readonly orgId?: string | undefined }

/** A gate that waits for a decision, in a run that has not ended (`Run.PendingGate`). */
export type PendingGateRecord = Run.PendingGate

export class StoreError extends Data.TaggedError("StoreError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** The run has a terminal event; nothing more may be appended. */
export class RunClosed extends Data.TaggedError("RunClosed")<{ readonly runId: string }> {}

/** An append with `expectedLastSequenceNumber` lost a race with another writer. */
export class SequenceConflict extends Data.TaggedError("SequenceConflict")<{
  readonly runId: string
  readonly expected: number
  readonly actual: number
}> {}

export class RunNotFound extends Data.TaggedError("RunNotFound")<{ readonly runId: string }> {}

export interface AppendOptions {
  /** Append only if the log still ends at this sequence number (optimistic concurrency). */
  readonly expectedLastSequenceNumber?: number | undefined
}

export interface ListRunsQuery {
  readonly status?: RunStatus | undefined
  readonly limit?: number | undefined
}

/** How a run's status moves with each event it logs. */
export const statusAfter = (status: RunStatus, event: { readonly type: string }): RunStatus => {
  if (TerminalStatuses.has(status)) return status
  switch (event.type) {
    case "run:completed":
      return "completed"
    case "run:failed":
      return "failed"
    case "run:cancelled":
      return "cancelled"
    case "run:paused":
      return "waiting"
    case "human_gate:resumed":
    case "node:started":
      return "running"
    default:
      return status
  }
}

/**
 * The status an event sets for any open run, whatever its status before
 * (undefined: the event leaves an open run's status as it was).
 */
export const openStatusAfter = (event: { readonly type: string }): RunStatus | undefined => {
  const fromRunning = statusAfter("running", event)
  return fromRunning === statusAfter("waiting", event) ? fromRunning : undefined
}

export declare namespace RunStore {
  /** The error channel of a RunStore method. */
  export type Error<K extends keyof RunStore.Service> = RunStore.Service[K] extends (
    ...args: ReadonlyArray<never>
  ) => Effect.Effect<unknown, infer E>
    ? E
    : never
  export type Service = Context.Tag.Service<typeof RunStore>
}

export class RunStore extends Context.Tag("@relavium/ports/RunStore")<
  RunStore,
  {
    readonly create: (run: {
      readonly runId: string
      readonly workflowId: string
      readonly workflowName: string
      readonly createdAt: string
    }) => Effect.Effect<void, StoreError>
    readonly append: (
      runId: string,
      drafts: ReadonlyArray<RE.RunEventDraft>,
      options?: AppendOptions
    ) => Effect.Effect<ReadonlyArray<RE.RunEvent>, StoreError | RunClosed | RunNotFound | SequenceConflict>
    /** Events with a sequence number greater than `afterSequenceNumber` (default: all), in order. */
    readonly events: (
      runId: string,
      afterSequenceNumber?: number
    ) => Effect.Effect<ReadonlyArray<RE.RunEvent>, StoreError>
    readonly get: (runId: string) => Effect.Effect<Option.Option<RunRecord>, StoreError>
    readonly list: (query?: ListRunsQuery) => Effect.Effect<ReadonlyArray<RunRecord>, StoreError>
    /**
     * Deletes the ended runs (status in `statuses`, default all three) last updated
     * before `olderThan`, with their events and projections. Returns how many runs.
     */
    readonly prune: (
      olderThan: Date,
      statuses?: ReadonlyArray<TerminalStatus>
    ) => Effect.Effect<number, StoreError>
    /**
     * Gates waiting for a decision in runs that have not ended (of one run, or of all),
     * ordered by the run's creation, then by when each gate paused.
     */
    readonly pendingGates: (runId?: string) => Effect.Effect<ReadonlyArray<PendingGateRecord>, StoreError>
    /**
     * Runs still `running` or `waiting`, oldest first: what a restarted process must continue.
     * A multi-tenant store (Postgres) lists the runs of every org, each with its `orgId`: act on
     * each for that org (`forOrg`). Single-user stores leave `orgId` out (their one org).
     */
    readonly runsToRecover: () => Effect.Effect<ReadonlyArray<RecoverableRun>, StoreError>
  }
>() {
  static readonly layerMemory: Layer.Layer<RunStore> = Layer.sync(RunStore, () => {
    // Plain mutable state: every method runs synchronously inside one `Effect.suspend`,
    // so each append is atomic with respect to other fibers.
    const runs = new Map<string, { record: RunRecord; events: Array<RE.RunEvent> }>()
    return RunStore.of({
      create: (run) =>
        Effect.sync(() => {
          if (!runs.has(run.runId)) {
            runs.set(run.runId, {
              record: { ...run, status: "running", updatedAt: run.createdAt, lastSequenceNumber: -1 },
              events: []
            })
          }
        }),
      append: (runId, drafts, options) =>
        Effect.suspend((): Effect.Effect<ReadonlyArray<RE.RunEvent>, RunClosed | RunNotFound | SequenceConflict> => {
          const entry = runs.get(runId)
          if (!entry) return Effect.fail(new RunNotFound({ runId }))
          const { record, events } = entry
          if (TerminalStatuses.has(record.status)) return Effect.fail(new RunClosed({ runId }))
          if (
            options?.expectedLastSequenceNumber !== undefined &&
            options.expectedLastSequenceNumber !== record.lastSequenceNumber
          ) {
            return Effect.fail(
              new SequenceConflict({
                runId,
                expected: options.expectedLastSequenceNumber,
                actual: record.lastSequenceNumber
              })
            )
          }
          const numbered = numberDrafts(record, drafts)
          for (const e of numbered.events) events.push(e)
          entry.record = numbered.record
          return Effect.succeed(numbered.events)
        }),
      events: (runId, after = -1) => Effect.sync(() => (runs.get(runId)?.events ?? []).slice(Math.max(0, after + 1))),
      get: (runId) => Effect.sync(() => Option.fromNullable(runs.get(runId)?.record)),
      list: (query) =>
        Effect.sync(() =>
          [...runs.values()]
            .map((e) => e.record)
            .filter((r) => query?.status === undefined || r.status === query.status)
            .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
            .slice(0, query?.limit ?? Number.MAX_SAFE_INTEGER)
        ),
      prune: (olderThan, statuses = [...TerminalStatuses] as Array<TerminalStatus>) =>
        Effect.sync(() => {
          // Timestamps are canonical ISO-8601 UTC strings: string order is time order (as in SQL).
          const before = olderThan.toISOString()
          const prunable = new Set<RunStatus>(statuses.filter((s) => TerminalStatuses.has(s)))
          let deleted = 0
          for (const [runId, { record }] of runs) {
            if (prunable.has(record.status) && record.updatedAt < before) {
              runs.delete(runId)
              deleted += 1
            }
          }
          return deleted
        }),
      pendingGates: (runId) =>
        Effect.sync(() =>
          byCreation([...runs.values()].map((e) => e.record))
            .filter((r) => (runId === undefined || r.runId === runId) && !TerminalStatuses.has(r.status))
            .flatMap((r) => pendingGatesOf(runs.get(r.runId)!.events))
        ),
      runsToRecover: () =>
        Effect.sync(() => byCreation([...runs.values()].map((e) => e.record).filter((r) => ActiveStatuses.has(r.status))))
    })
  })
}

/**
 * Numbers drafts after the run's last event and moves its status; drafts after a
 * terminal event in the same batch are dropped. Shared by every store layer.
 */
export const numberDrafts = (
  record: RunRecord,
  drafts: ReadonlyArray<RE.RunEventDraft>
): { readonly events: ReadonlyArray<RE.RunEvent>; readonly record: RunRecord } => {
  let seq = record.lastSequenceNumber
  let status = record.status
  const events: Array<RE.RunEvent> = []
  for (const draft of drafts) {
    if (TerminalStatuses.has(status)) break
    seq += 1
    const event = { ...draft, sequenceNumber: seq } as RE.RunEvent
    events.push(event)
    status = statusAfter(status, event)
  }
  return {
    events,
    record: { ...record, status, lastSequenceNumber: seq, updatedAt: events.at(-1)?.timestamp ?? record.updatedAt }
  }
}

const byCreation = (records: ReadonlyArray<RunRecord>): Array<RunRecord> =>
  [...records].sort((a, b) =>
    a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0
  )

/**
 * The gates of one run's log still waiting for a decision, in the order they
 * paused (a gate paused again moves to the end). A resume without a gate id
 * resolves the node's first pending gate, as the run state fold does.
 */
export const pendingGatesOf = (events: ReadonlyArray<RE.RunEvent>): ReadonlyArray<PendingGateRecord> => {
  const pending = new Map<string, PendingGateRecord>()
  for (const event of events) {
    if (event.type === "human_gate:paused") {
      pending.delete(event.gateId)
      pending.set(event.gateId, {
        runId: event.runId,
        gateId: event.gateId,
        nodeId: event.nodeId,
        gateType: event.gateType,
        message: event.message,
        ...(event.assignee !== undefined ? { assignee: event.assignee } : {}),
        ...(event.expiresAt !== undefined ? { expiresAt: event.expiresAt } : {}),
        ...(event.timeoutAction !== undefined ? { timeoutAction: event.timeoutAction } : {}),
        pausedAt: event.timestamp
      })
    } else if (event.type === "human_gate:resumed") {
      const gateId = event.gateId ?? [...pending.values()].find((g) => g.nodeId === event.nodeId)?.gateId
      if (gateId !== undefined) pending.delete(gateId)
    }
  }
  return [...pending.values()]
}

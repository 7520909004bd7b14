/**
 * Runs and their append-only, per-run numbered event log.
 *
 * The store assigns sequence numbers, so concurrent writers of one run (node
 * fibers, workers in other processes) never produce a gap or a duplicate. An
 * append after the run's terminal event is refused: nothing is written once a
 * run has completed, failed or been cancelled.
 */
import { Context, Data, Effect, Layer, Option } from "effect"
import { RunEvent as RE } from "@relavium/domain"

export type RunStatus = "running" | "waiting" | "completed" | "failed" | "cancelled"
export const TerminalStatuses: ReadonlySet<RunStatus> = new Set(["completed", "failed", "cancelled"])

export interface RunRecord {
  readonly runId: string
  readonly workflowId: string
  readonly workflowName: string
  readonly status: RunStatus
  readonly createdAt: string
  readonly updatedAt: string
  readonly lastSequenceNumber: number
}

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

export declare namespace RunStore {
  /** The error channel of a RunStore method. */
  export type Error<K extends keyof RunStore.Service> = RunStore.Service[K] extends (
    ...args: ReadonlyArray<never>
  ) => Effect.Effect<unknown, infer E>
    ? E
    : never
  export type Service = Context.Tag.Service<typeof RunStore>
}

export class RunStore extends Context.Tag("@relavium/core/RunStore")<
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
        )
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

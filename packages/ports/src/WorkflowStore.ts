/**
 * Workflow definitions a run can be started from, by id. Each stored workflow
 * keeps its YAML source; the engine compiles it once per process.
 */
import { Context, Data, Effect, Layer, Option } from "effect"

export interface StoredWorkflow {
  readonly workflowId: string
  /** The `workflow.id` of the YAML (kebab-case name). */
  readonly name: string
  readonly version: number
  readonly source: string
  /** Where the YAML came from, for error messages. */
  readonly file: string
  readonly createdAt: string
}

export class WorkflowStoreError extends Data.TaggedError("WorkflowStoreError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export class WorkflowStore extends Context.Tag("@relavium/ports/WorkflowStore")<
  WorkflowStore,
  {
    /** Stores a new version of the workflow named `name` (a new id if the source changed). */
    readonly put: (workflow: {
      readonly name: string
      readonly source: string
      readonly file: string
    }) => Effect.Effect<StoredWorkflow, WorkflowStoreError>
    readonly get: (workflowId: string) => Effect.Effect<Option.Option<StoredWorkflow>, WorkflowStoreError>
    readonly list: Effect.Effect<ReadonlyArray<StoredWorkflow>, WorkflowStoreError>
  }
>() {
  static readonly layerMemory: Layer.Layer<WorkflowStore> = Layer.sync(WorkflowStore, () => {
    const byId = new Map<string, StoredWorkflow>()
    return WorkflowStore.of({
      put: ({ file, name, source }) =>
        Effect.sync(() => {
          const versions = [...byId.values()].filter((w) => w.name === name)
          const same = versions.find((w) => w.source === source)
          if (same) return same
          const stored: StoredWorkflow = {
            workflowId: crypto.randomUUID(),
            name,
            version: versions.length + 1,
            source,
            file,
            createdAt: new Date().toISOString()
          }
          byId.set(stored.workflowId, stored)
          return stored
        }),
      get: (workflowId) => Effect.sync(() => Option.fromNullable(byId.get(workflowId))),
      list: Effect.sync(() => [...byId.values()])
    })
  })
}

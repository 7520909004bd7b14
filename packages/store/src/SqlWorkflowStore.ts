/**
 * `WorkflowStore` on SQL: `workflows` holds one row per workflow name, and
 * `workflow_versions` one row per distinct source of it (its id is the
 * `workflowId` runs refer to). Storing a source already stored returns that
 * version, so re-running an unchanged file does not grow the table.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer, Option } from "effect"
import { createHash } from "node:crypto"
import { type StoreError, type StoredWorkflow, WorkflowStore, WorkflowStoreError } from "@relavium/ports"
import * as Database from "./Database.js"

interface VersionRow {
  readonly workflow_id: string
  readonly name: string
  readonly version: number | string
  readonly source: string
  readonly file: string
  readonly created_at: string
}

const toStored = (row: VersionRow): StoredWorkflow => ({
  workflowId: row.workflow_id,
  name: row.name,
  version: Number(row.version),
  source: row.source,
  file: row.file,
  createdAt: row.created_at
})

const columns = "workflow_id, name, version, source, file, created_at"

export const make: Effect.Effect<WorkflowStore["Type"], never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const database = Database.describeDatabase(sql)
  const storeError = (action: string) => (cause: SqlError) =>
    new WorkflowStoreError({ message: `${database}: ${action} failed: ${Database.describeCause(cause)}`, cause })

  return WorkflowStore.of({
    put: ({ file, name, source }) => {
      const hash = createHash("sha256").update(source).digest("hex")
      return sql
        .withTransaction(
          Effect.gen(function* () {
            const now = new Date().toISOString()
            // A write first: locks the workflow's row, so concurrent puts of one name take turns.
            const [head] = yield* sql<{ latest_version: number | string }>`
              INSERT INTO workflows (name, created_at, updated_at) VALUES (${name}, ${now}, ${now})
              ON CONFLICT (org_id, name) DO UPDATE SET updated_at = workflows.updated_at
              RETURNING latest_version`
            const same = yield* sql<VersionRow>`SELECT ${sql.literal(columns)} FROM workflow_versions
              WHERE name = ${name} AND source_hash = ${hash} ORDER BY version`
            const found = same.find((row) => row.source === source)
            if (found !== undefined) return toStored(found)
            const stored: StoredWorkflow = {
              workflowId: crypto.randomUUID(),
              name,
              version: Number(head?.latest_version ?? 0) + 1,
              source,
              file,
              createdAt: now
            }
            yield* sql`INSERT INTO workflow_versions ${sql.insert({
              workflow_id: stored.workflowId,
              name,
              version: stored.version,
              source,
              source_hash: hash,
              file,
              created_at: now
            })}`
            yield* sql`UPDATE workflows SET latest_version = ${stored.version}, updated_at = ${now} WHERE name = ${name}`
            return stored
          })
        )
        .pipe(Effect.mapError(storeError(`storing workflow ${name} from ${file}`)))
    },
    get: (workflowId) =>
      sql<VersionRow>`SELECT ${sql.literal(columns)} FROM workflow_versions WHERE workflow_id = ${workflowId}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toStored)),
        Effect.mapError(storeError(`reading workflow ${workflowId}`))
      ),
    list: sql<VersionRow>`SELECT ${sql.literal(columns)} FROM workflow_versions ORDER BY created_at, name, version`.pipe(
      Effect.map((rows) => rows.map(toStored)),
      Effect.mapError(storeError("listing workflows"))
    )
  })
})

/** `WorkflowStore` on whatever `SqlClient` is provided (already migrated: see `Database`). */
export const layer: Layer.Layer<WorkflowStore, never, SqlClient.SqlClient> = Layer.effect(WorkflowStore, make)

export const layerSqlite = (
  options: Database.SqliteOptions
): Layer.Layer<WorkflowStore, StoreError> =>
  layer.pipe(Layer.provide(Database.layerSqlite(options)))

export const layerPg = (options: Database.PgOptions): Layer.Layer<WorkflowStore, StoreError> =>
  layer.pipe(Layer.provide(Database.layerPg(options)))

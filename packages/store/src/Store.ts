/**
 * Every repository on one database: the layers an executable picks from
 * (`layerSqlite` for the CLI and the monolith, `layerPg` for the cloud). The
 * `SqlClient` is exposed too, so later repositories share the connection.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Layer } from "effect"
import type { ChatStore, RunStore, StoreError, WorkflowStore } from "@relavium/ports"
import * as Database from "./Database.js"
import * as SqlChatStore from "./SqlChatStore.js"
import * as SqlRunStore from "./SqlRunStore.js"
import * as SqlWorkflowStore from "./SqlWorkflowStore.js"

export type Services = RunStore | WorkflowStore | ChatStore | SqlClient.SqlClient

const repositories = Layer.mergeAll(SqlRunStore.layer, SqlWorkflowStore.layer, SqlChatStore.layer)

/** On Postgres, the run store's appends take fewer round trips and share commits (SqlRunStore.layerServer). */
const serverRepositories = Layer.mergeAll(SqlRunStore.layerServer(), SqlWorkflowStore.layer, SqlChatStore.layer)

/** Every repository on a SQLite file (WAL, busy timeout, foreign keys), migrated. */
export const layerSqlite = (options: Database.SqliteOptions): Layer.Layer<Services, StoreError> =>
  Layer.provideMerge(repositories, Database.layerSqlite(options))

/** Every repository on Postgres, migrated; fails within the connect timeout if unreachable. */
export const layerPg = (options: Database.PgOptions): Layer.Layer<Services, StoreError> =>
  Layer.provideMerge(serverRepositories, Database.layerPg(options))

/**
 * `12_chats_distributed`: a project may name the dialed-in tools daemon whose
 * workspace it is (`projects.daemon`, null for a directory of the machine
 * running the turn), so any worker of the distributed deployment sends its
 * chats' tool calls to that daemon through a gateway.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

export const chatsDistributed = Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.asVoid(sql.unsafe(`ALTER TABLE projects ADD COLUMN daemon text`)))

/**
 * `ChatStore` on SQL (SQLite or Postgres, the same statements): projects,
 * worktrees, chats, messages, content blocks and the per-chat event log.
 *
 * A commit is one transaction. Its first statement advances the chat's
 * `last_seq` with an `UPDATE … RETURNING` (the chat's row lock on Postgres, the
 * write lock on SQLite), so concurrent writers of one chat number their events
 * with no gap; then it upserts messages and blocks and inserts the events.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer, Option } from "effect"
import { type ChatEventDraft, type ChatEventRecord, ChatNotFound, type ChatRecord, ChatStore, type ContentBlockRecord, forOrg, type MessageRecord, type MessageWrite, type ProjectRecord, StoreError, type TurnStatus, type WorktreeRecord } from "@relavium/ports"
import * as Database from "./Database.js"
import { chunks, fromJson } from "./internal/Rows.js"

/** Rows per multi-row INSERT: well under SQLite's and Postgres's bound-parameter limits. */
const insertChunk = 500

interface ProjectRow {
  readonly project_id: string
  readonly name: string
  readonly root_path: string | null
  readonly daemon?: string | null | undefined
  readonly created_at: string
  readonly updated_at: string
}

const toProject = (row: ProjectRow): ProjectRecord => ({
  projectId: row.project_id,
  name: row.name,
  rootPath: row.root_path ?? "",
  ...(row.daemon !== null && row.daemon !== undefined ? { daemon: row.daemon } : {}),
  createdAt: row.created_at,
  updatedAt: row.updated_at
})

interface WorktreeRow {
  readonly worktree_id: string
  readonly project_id: string
  readonly path: string
  readonly branch: string | null
  readonly base_ref: string | null
  readonly status: "active" | "removed"
  readonly created_at: string
  readonly updated_at: string
}

const toWorktree = (row: WorktreeRow): WorktreeRecord => ({
  worktreeId: row.worktree_id,
  projectId: row.project_id,
  path: row.path,
  branch: row.branch ?? "",
  baseRef: row.base_ref ?? undefined,
  status: row.status,
  createdAt: row.created_at,
  updatedAt: row.updated_at
})

interface ChatRow {
  readonly chat_id: string
  readonly project_id: string | null
  readonly worktree_id: string | null
  readonly title: string
  readonly model: string | null
  readonly settings: unknown
  readonly turn_status: TurnStatus
  readonly turn_owner: string | null
  readonly turn_heartbeat_at: string | null
  readonly last_seq: number | string
  readonly created_at: string
  readonly updated_at: string
}

const toChat = (row: ChatRow): ChatRecord => ({
  chatId: row.chat_id,
  projectId: row.project_id ?? "",
  worktreeId: row.worktree_id ?? undefined,
  title: row.title,
  model: row.model ?? undefined,
  settings: row.settings === null ? undefined : fromJson(row.settings),
  turnStatus: row.turn_status,
  turnOwner: row.turn_owner ?? undefined,
  turnHeartbeatAt: row.turn_heartbeat_at ?? undefined,
  lastSequenceNumber: Number(row.last_seq),
  createdAt: row.created_at,
  updatedAt: row.updated_at
})

interface MessageRow {
  readonly message_id: string
  readonly chat_id: string
  readonly seq: number | string
  readonly role: MessageWrite["role"]
  readonly status: MessageWrite["status"]
  readonly model: string | null
  readonly input_tokens: number | string
  readonly output_tokens: number | string
  readonly cost_microcents: number | string
  readonly created_at: string
  readonly updated_at: string | null
}

const toMessage = (row: MessageRow): MessageWrite => ({
  messageId: row.message_id,
  chatId: row.chat_id,
  seq: Number(row.seq),
  role: row.role,
  status: row.status,
  model: row.model ?? undefined,
  inputTokens: Number(row.input_tokens),
  outputTokens: Number(row.output_tokens),
  costMicrocents: Number(row.cost_microcents),
  createdAt: row.created_at,
  updatedAt: row.updated_at ?? row.created_at
})

interface BlockRow {
  readonly block_id: string
  readonly message_id: string
  readonly position: number | string
  readonly kind: ContentBlockRecord["kind"]
  readonly call_id: string | null
  readonly status: string | null
  readonly content: unknown
  readonly created_at: string
}

const toBlock = (row: BlockRow): ContentBlockRecord => ({
  blockId: row.block_id,
  messageId: row.message_id,
  position: Number(row.position),
  kind: row.kind,
  callId: row.call_id ?? undefined,
  status: row.status ?? undefined,
  content: fromJson(row.content),
  createdAt: row.created_at
})

interface EventRow {
  readonly chat_id: string
  readonly seq: number | string
  readonly type: string
  readonly timestamp: string
  readonly payload: unknown
}

const toEvent = (row: EventRow): ChatEventRecord => ({
  chatId: row.chat_id,
  seq: Number(row.seq),
  type: row.type,
  timestamp: row.timestamp,
  data: fromJson(row.payload)
})

const toJson = (value: unknown): string => JSON.stringify(value ?? null)

const messageColumns = "message_id, chat_id, seq, role, status, model, input_tokens, output_tokens, cost_microcents, created_at, updated_at"
const blockColumns = "block_id, message_id, position, kind, call_id, status, content, created_at"
const chatColumns =
  "chat_id, project_id, worktree_id, title, model, settings, turn_status, turn_owner, turn_heartbeat_at, last_seq, created_at, updated_at"

export const make: Effect.Effect<ChatStore.Service, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const database = Database.describeDatabase(sql)
  const storeError = (action: string) => (cause: SqlError) =>
    new StoreError({ message: `${database}: ${action} failed: ${Database.describeCause(cause)}`, cause })

  const insertEvents = (chatId: string, first: number, drafts: ReadonlyArray<ChatEventDraft>) => {
    const events: Array<ChatEventRecord> = drafts.map((d, i) => ({ ...d, chatId, seq: first + i }))
    return Effect.as(
      Effect.forEach(
        chunks(events, insertChunk),
        (chunk) =>
          sql`INSERT INTO chat_events ${sql.insert(
            chunk.map((e) => ({ chat_id: chatId, seq: e.seq, type: e.type, timestamp: e.timestamp, payload: toJson(e.data) }))
          )}`,
        { discard: true }
      ),
      events
    )
  }

  const upsertMessages = (messages: ReadonlyArray<MessageWrite>) =>
    Effect.forEach(
      chunks(messages, insertChunk),
      (chunk) =>
        sql`INSERT INTO messages ${sql.insert(
          chunk.map((m) => ({
            message_id: m.messageId,
            chat_id: m.chatId,
            seq: m.seq,
            role: m.role,
            status: m.status,
            model: m.model ?? null,
            input_tokens: m.inputTokens,
            output_tokens: m.outputTokens,
            cost_microcents: m.costMicrocents,
            created_at: m.createdAt,
            updated_at: m.updatedAt
          }))
        )}
        ON CONFLICT (message_id) DO UPDATE SET status = excluded.status, model = excluded.model,
          input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
          cost_microcents = excluded.cost_microcents, updated_at = excluded.updated_at`,
      { discard: true }
    )

  const upsertBlocks = (blocks: ReadonlyArray<ContentBlockRecord>) =>
    Effect.forEach(
      chunks(blocks, insertChunk),
      (chunk) =>
        sql`INSERT INTO content_blocks ${sql.insert(
          chunk.map((b) => ({
            block_id: b.blockId,
            message_id: b.messageId,
            position: b.position,
            kind: b.kind,
            call_id: b.callId ?? null,
            status: b.status ?? null,
            content: toJson(b.content),
            created_at: b.createdAt
          }))
        )}
        ON CONFLICT (block_id) DO UPDATE SET status = excluded.status, content = excluded.content`,
      { discard: true }
    )

  const messagesOf = (chatId: string) =>
    Effect.gen(function* () {
      const rows = yield* sql<MessageRow>`SELECT ${sql.literal(messageColumns)} FROM messages WHERE chat_id = ${chatId} ORDER BY seq`
      const blocks = yield* sql<BlockRow>`SELECT ${sql.literal(blockColumns.split(", ").map((c) => `b.${c}`).join(", "))}
        FROM content_blocks b JOIN messages m ON m.message_id = b.message_id
        WHERE m.chat_id = ${chatId} ORDER BY m.seq, b.position`
      const byMessage = new Map<string, Array<ContentBlockRecord>>()
      for (const row of blocks) {
        const list = byMessage.get(row.message_id) ?? []
        list.push(toBlock(row))
        byMessage.set(row.message_id, list)
      }
      return rows.map((row): MessageRecord => ({ ...toMessage(row), blocks: byMessage.get(row.message_id) ?? [] }))
    })

  return ChatStore.of({
    putProject: (project) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            const same = yield* sql<ProjectRow>`SELECT * FROM projects WHERE root_path = ${project.rootPath}
              AND COALESCE(daemon, '') = ${project.daemon ?? ""} ORDER BY created_at LIMIT 1`
            if (same[0] !== undefined) return toProject(same[0])
            yield* sql`INSERT INTO projects ${sql.insert({
              project_id: project.projectId,
              name: project.name,
              root_path: project.rootPath,
              daemon: project.daemon ?? null,
              created_at: project.createdAt,
              updated_at: project.updatedAt
            })}`
            return project
          })
        )
        .pipe(Effect.mapError(storeError(`storing the project ${project.rootPath}`))),
    getProject: (projectId) =>
      sql<ProjectRow>`SELECT * FROM projects WHERE project_id = ${projectId}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toProject)),
        Effect.mapError(storeError(`reading project ${projectId}`))
      ),
    listProjects: () =>
      sql<ProjectRow>`SELECT * FROM projects ORDER BY created_at, project_id`.pipe(
        Effect.map((rows) => rows.map(toProject)),
        Effect.mapError(storeError("listing projects"))
      ),
    getWorktree: (worktreeId) =>
      sql<WorktreeRow>`SELECT * FROM worktrees WHERE worktree_id = ${worktreeId}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toWorktree)),
        Effect.mapError(storeError(`reading worktree ${worktreeId}`))
      ),
    setWorktreeStatus: (worktreeId, status, at) =>
      sql`UPDATE worktrees SET status = ${status}, updated_at = ${at} WHERE worktree_id = ${worktreeId}`.pipe(
        Effect.asVoid,
        Effect.mapError(storeError(`updating worktree ${worktreeId}`))
      ),
    createChat: (chat, options) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            const worktree = options?.worktree
            if (worktree !== undefined) {
              yield* sql`INSERT INTO worktrees ${sql.insert({
                worktree_id: worktree.worktreeId,
                project_id: worktree.projectId,
                path: worktree.path,
                branch: worktree.branch,
                base_ref: worktree.baseRef ?? null,
                status: worktree.status,
                created_at: worktree.createdAt,
                updated_at: worktree.updatedAt
              })}`
            }
            const drafts = options?.events ?? []
            yield* sql`INSERT INTO chats ${sql.insert({
              chat_id: chat.chatId,
              project_id: chat.projectId,
              worktree_id: chat.worktreeId ?? null,
              title: chat.title,
              model: chat.model ?? null,
              settings: toJson(chat.settings),
              turn_status: chat.turnStatus,
              turn_owner: chat.turnOwner ?? null,
              turn_heartbeat_at: chat.turnHeartbeatAt ?? null,
              last_seq: chat.lastSequenceNumber + drafts.length,
              created_at: chat.createdAt,
              updated_at: chat.updatedAt
            })}`
            return yield* insertEvents(chat.chatId, chat.lastSequenceNumber + 1, drafts)
          })
        )
        .pipe(Effect.mapError(storeError(`creating chat ${chat.chatId}`))),
    getChat: (chatId) =>
      sql<ChatRow>`SELECT ${sql.literal(chatColumns)} FROM chats WHERE chat_id = ${chatId}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toChat)),
        Effect.mapError(storeError(`reading chat ${chatId}`))
      ),
    listChats: (query) =>
      sql<ChatRow>`SELECT ${sql.literal(chatColumns)} FROM chats
        ${query?.projectId !== undefined ? sql`WHERE project_id = ${query.projectId}` : sql.literal("")}
        ORDER BY updated_at DESC, chat_id DESC
        ${query?.limit !== undefined ? sql`LIMIT ${Math.max(0, query.limit)}` : sql.literal("")}`.pipe(
        Effect.map((rows) => rows.map(toChat)),
        Effect.mapError(storeError("listing chats"))
      ),
    commit: (chatId, write) => {
      const drafts = write.events ?? []
      return sql
        .withTransaction(
          Effect.gen(function* () {
            // First statement a write: takes the chat's row lock (Postgres) or the write lock (SQLite).
            const rows = yield* sql<{ last_seq: number | string }>`
              UPDATE chats SET last_seq = last_seq + ${drafts.length},
                updated_at = ${write.updatedAt},
                turn_status = COALESCE(${write.turnStatus ?? null}, turn_status),
                title = COALESCE(${write.title ?? null}, title),
                model = COALESCE(${write.model ?? null}, model)
              WHERE chat_id = ${chatId}
              RETURNING last_seq`
            const row = rows[0]
            if (row === undefined) return yield* new ChatNotFound({ chatId })
            if (write.settings !== undefined) {
              yield* sql`UPDATE chats SET settings = ${toJson(write.settings)} WHERE chat_id = ${chatId}`
            }
            if (write.messages !== undefined && write.messages.length > 0) yield* upsertMessages(write.messages)
            if (write.blocks !== undefined && write.blocks.length > 0) yield* upsertBlocks(write.blocks)
            return yield* insertEvents(chatId, Number(row.last_seq) - drafts.length + 1, drafts)
          })
        )
        .pipe(Effect.catchTag("SqlError", (error) => Effect.fail(storeError(`writing to chat ${chatId}`)(error))))
    },
    messages: (chatId) => messagesOf(chatId).pipe(Effect.mapError(storeError(`reading the messages of chat ${chatId}`))),
    events: (chatId, after = -1) =>
      sql<EventRow>`SELECT chat_id, seq, type, timestamp, payload FROM chat_events
        WHERE chat_id = ${chatId} AND seq > ${after} ORDER BY seq`.pipe(
        Effect.map((rows) => rows.map(toEvent)),
        Effect.mapError(storeError(`reading the events of chat ${chatId}`))
      ),
    usage: (chatId) =>
      sql<{
        chat_id: string
        model: string
        input_tokens: number | string
        output_tokens: number | string
        cost_microcents: number | string
        calls: number | string
      }>`SELECT chat_id, model, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
          SUM(cost_microcents) AS cost_microcents, COUNT(*) AS calls
        FROM messages WHERE role = 'assistant' AND model IS NOT NULL
          ${chatId !== undefined ? sql`AND chat_id = ${chatId}` : sql.literal("")}
        GROUP BY chat_id, model ORDER BY chat_id, model`.pipe(
        Effect.map((rows) =>
          rows.map((row) => ({
            chatId: row.chat_id,
            model: row.model,
            inputTokens: Number(row.input_tokens),
            outputTokens: Number(row.output_tokens),
            costMicrocents: Number(row.cost_microcents),
            calls: Number(row.calls)
          }))
        ),
        Effect.mapError(storeError("reading chat usage"))
      ),
    pendingToolCalls: (chatId) =>
      sql<MessageRow & { readonly b_block_id: string; readonly b_position: number | string; readonly b_kind: ContentBlockRecord["kind"]; readonly b_call_id: string | null; readonly b_status: string | null; readonly b_content: unknown; readonly b_created_at: string }>`
        SELECT ${sql.literal(messageColumns.split(", ").map((c) => `m.${c}`).join(", "))},
          b.block_id AS b_block_id, b.position AS b_position, b.kind AS b_kind, b.call_id AS b_call_id,
          b.status AS b_status, b.content AS b_content, b.created_at AS b_created_at
        FROM content_blocks b
          JOIN messages m ON m.message_id = b.message_id
          JOIN chats c ON c.chat_id = m.chat_id
        WHERE b.kind = 'tool_call' AND b.status = 'pending'
          ${chatId !== undefined ? sql`AND m.chat_id = ${chatId}` : sql.literal("")}
        ORDER BY c.created_at, c.chat_id, m.seq, b.position`.pipe(
        Effect.map((rows) =>
          rows.map((row) => ({
            chatId: row.chat_id,
            message: toMessage(row),
            block: toBlock({
              block_id: row.b_block_id,
              message_id: row.message_id,
              position: row.b_position,
              kind: row.b_kind,
              call_id: row.b_call_id,
              status: row.b_status,
              content: row.b_content,
              created_at: row.b_created_at
            })
          }))
        ),
        Effect.mapError(storeError("reading pending tool calls"))
      ),
    // Postgres: the (org, chat) pairs of every org through the operator's SECURITY DEFINER
    // function (Migrations.ts), then each chat read for its org, under row-level security.
    chatsToRecover: () =>
      sql.onDialectOrElse({
        pg: () =>
          Effect.flatMap(sql<{ org_id: string; chat_id: string }>`SELECT org_id, chat_id FROM relavium_chats_to_recover()`, (pairs) =>
            Effect.map(
              Effect.forEach(pairs, (pair) =>
                forOrg(pair.org_id)(sql<ChatRow>`SELECT ${sql.literal(chatColumns)} FROM chats WHERE chat_id = ${pair.chat_id} AND turn_status = 'running'`).pipe(
                  Effect.map((rows) => rows.map((row) => ({ ...toChat(row), orgId: pair.org_id })))
                )
              ),
              (found) => found.flat()
            )
          ),
        orElse: () =>
          Effect.map(sql<ChatRow>`SELECT ${sql.literal(chatColumns)} FROM chats WHERE turn_status = 'running' ORDER BY updated_at, chat_id`, (rows) =>
            rows.map(toChat)
          )
      }).pipe(
        Effect.mapError(storeError("listing chats to recover"))
      ),
    claimTurn: (chatId, claim) =>
      sql<{ chat_id: string }>`UPDATE chats SET turn_owner = ${claim.owner}, turn_heartbeat_at = ${claim.at}
        WHERE chat_id = ${chatId} AND ${
          claim.expectedOwner === undefined ? sql`turn_owner IS NULL` : sql`turn_owner = ${claim.expectedOwner}`
        }
        RETURNING chat_id`.pipe(
        Effect.map((rows) => rows.length > 0),
        Effect.mapError(storeError(`claiming chat ${chatId}`))
      ),
    heartbeat: (chatId, owner, at) =>
      sql`UPDATE chats SET turn_heartbeat_at = ${at} WHERE chat_id = ${chatId} AND turn_owner = ${owner}`.pipe(
        Effect.asVoid,
        Effect.mapError(storeError(`refreshing chat ${chatId}`))
      ),
    releaseTurn: (chatId, owner) =>
      sql`UPDATE chats SET turn_owner = NULL, turn_heartbeat_at = NULL WHERE chat_id = ${chatId} AND turn_owner = ${owner}`.pipe(
        Effect.asVoid,
        Effect.mapError(storeError(`releasing chat ${chatId}`))
      )
  })
})

/** `ChatStore` on whatever `SqlClient` is provided (already migrated: see `Database`). */
export const layer: Layer.Layer<ChatStore, never, SqlClient.SqlClient> = Layer.effect(ChatStore, make)

export const layerSqlite = (options: Database.SqliteOptions): Layer.Layer<ChatStore, StoreError> =>
  layer.pipe(Layer.provide(Database.layerSqlite(options)))

export const layerPg = (options: Database.PgOptions): Layer.Layer<ChatStore, StoreError> =>
  layer.pipe(Layer.provide(Database.layerPg(options)))

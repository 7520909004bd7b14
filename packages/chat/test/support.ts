/**
 * Test helpers: real git repositories in temporary directories, and the chat
 * service on a chosen store with a scripted model and the real tools daemon
 * (`layerLocal`, one per workspace).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Layer, Redacted } from "effect"
import { ChatStore, type LlmProvider, StoreError } from "@relavium/ports"
import { layerLocal } from "@relavium/daemon"
import { Store } from "@relavium/store"
import { flatPricing } from "../../core/test/harness.js"
import { ChatHub, ChatService, ChatTools, layer as chatServiceLayer, Worktrees } from "../src/index.js"

import { tempDir } from "./fixtures.js"

export { git as gitOutput, gitRepo, tempDir } from "./fixtures.js"

export const read = (...parts: Array<string>) => Fs.readFileSync(Path.join(...parts), "utf8")

/** The chat service with the real daemon per workspace, git worktrees under a temp dir, $3/$15 per MTok. */
export const chatLayer = (options: {
  readonly model: Layer.Layer<LlmProvider>
  readonly store?: Layer.Layer<ChatStore, StoreError> | undefined
  readonly worktreesDir?: string | undefined
}): Layer.Layer<ChatService | ChatStore, StoreError> =>
  chatServiceLayer({ worktreesDir: options.worktreesDir ?? tempDir("relavium-worktrees-") }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        options.store ?? ChatStore.layerMemory,
        ChatHub.layerMemory,
        options.model,
        flatPricing,
        ChatTools.layer(({ workspace }) => layerLocal({ workspace })),
        Worktrees.layerGit
      )
    )
  )

/** Runs `effect` against the service, then waits for its turn to rest. */
export const turnOf = <E, R>(turn: Effect.Effect<{ readonly outcome: Effect.Effect<import("../src/index.js").TurnOutcome, import("../src/index.js").ChatError> }, E, R>) =>
  Effect.flatMap(turn, (t) => t.outcome)

const pgServer = "postgres://postgres@127.0.0.1:5432"

const onAdmin = (statement: string) =>
  Effect.scoped(
    Effect.flatMap(PgClient.make({ url: Redacted.make(`${pgServer}/test`), connectTimeout: Duration.seconds(5) }), (sql) => sql.unsafe(statement))
  ).pipe(Effect.provide(Reactivity.layer))

/** A ChatStore on a fresh Postgres database (dropped afterwards). */
export const freshPgStore: Layer.Layer<ChatStore, StoreError> = Layer.unwrapScoped(
  Effect.acquireRelease(
    Effect.sync(() => `relavium_chat_${crypto.randomUUID().replaceAll("-", "")}`).pipe(Effect.tap((name) => onAdmin(`CREATE DATABASE ${name}`))),
    (name) => onAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.orDie)
  ).pipe(
    Effect.mapError((cause) => new StoreError({ message: `cannot create a test database on ${pgServer}/test: ${String(cause)}; is Postgres running?`, cause })),
    Effect.map((name) => Store.layerPg({ url: `${pgServer}/${name}` }))
  )
)

/** A ChatStore on a SQLite file. */
export const sqliteStore = (filename = Path.join(tempDir("relavium-chat-db-"), "relavium.db")): Layer.Layer<ChatStore, StoreError> =>
  Store.layerSqlite({ filename })

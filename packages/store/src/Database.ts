/**
 * Opening a Relavium database: a `SqlClient` layer for SQLite (one file, WAL)
 * or Postgres, checked and migrated before anything uses it. Every failure is a
 * `StoreError` that names the database and says what to do; nothing hangs
 * (Postgres has a connect timeout, SQLite a busy timeout).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { Cause, Context, Data, Duration, Effect, Layer, Redacted, Schedule } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { StoreError } from "@relavium/ports"
import * as OrgClient from "./internal/OrgClient.js"
import * as Migrations from "./Migrations.js"

export interface SqliteOptions {
  /** The database file (created if missing; its directory must exist). `:memory:` for a private in-memory database. */
  readonly filename: string
  /** How long a writer waits for another connection's write lock before failing (default 5 s). */
  readonly busyTimeout?: Duration.DurationInput | undefined
  /**
   * How often the WAL is copied back into the database file (default 1 s). Done by a
   * background fiber instead of by whichever commit crosses SQLite's threshold, so
   * the fsyncs of a checkpoint never land inside a node commit.
   */
  readonly checkpointInterval?: Duration.DurationInput | undefined
}

export interface PgOptions {
  /** `postgres://user[:password]@host:port/database`; the password never appears in an error. */
  readonly url: string | Redacted.Redacted<string>
  /** How long to wait for a connection before failing (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** The pool's size (default 10; at least 2: a migration holds its lock on one connection). */
  readonly maxConnections?: number | undefined
  /**
   * `apply` (the default) brings the schema up to date under the migration lock; `verify` only
   * checks it and fails, saying to run `relavium db migrate`, when the database is behind
   * (processes that should never change the schema, such as workers).
   */
  readonly migrate?: "apply" | "verify" | undefined
  /** How long a migration waits for another process's migration lock (default 60 s). */
  readonly lockTimeout?: Duration.DurationInput | undefined
}

/** What a migration did. */
export interface MigrationReport {
  /** The migrations this call applied, as `<id>_<name>`, in order; empty when the schema was current. */
  readonly applied: ReadonlyArray<string>
  /** The schema version of the database afterwards. */
  readonly version: number
}

/** A URL without its password, for messages. */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return url.replace(/:[^:@/]*@/, ":***@")
  }
}

const causeText = (cause: unknown): string => {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause
    return inner instanceof Error && inner.message !== "" ? inner.message : cause.message
  }
  if (typeof cause === "object" && cause !== null && "message" in cause) return String(cause.message)
  return String(cause)
}

/** The most specific message in a cause chain (SqlError → driver error), for users. */
export const describeCause = (cause: unknown): string => {
  let current: unknown = cause
  let text = causeText(cause)
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null && "cause" in current; depth++) {
    current = (current as { cause?: unknown }).cause
    if (current instanceof Error && current.message !== "") text = current.message
    else if (current instanceof AggregateError) text = current.errors.map(causeText).join("; ")
  }
  return text
}

/** How a client's database is named in messages: the SQLite file or the Postgres URL. */
export const describeDatabase = (sql: SqlClient.SqlClient): string => {
  const config = (sql as { readonly config?: unknown }).config
  if (typeof config === "object" && config !== null) {
    if ("filename" in config && typeof config.filename === "string") return `SQLite database ${config.filename}`
    if ("url" in config && Redacted.isRedacted(config.url)) {
      return `Postgres at ${redactUrl(Redacted.value(config.url as Redacted.Redacted<string>))}`
    }
    if ("host" in config || "database" in config) {
      const c = config as { host?: string; port?: number; database?: string }
      return `Postgres at postgres://${c.host ?? "localhost"}:${c.port ?? 5432}/${c.database ?? ""}`
    }
  }
  return sql.onDialectOrElse({ pg: () => "the Postgres database", orElse: () => "the SQLite database" })
}

// ---------------------------------------------------------------------------
// Schema version and migrations
// ---------------------------------------------------------------------------

const currentVersion = (database: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const present = yield* sql.onDialectOrElse({
      pg: () =>
        Effect.map(
          sql<{ t: string | null }>`SELECT to_regclass(${Migrations.migrationsTable})::text AS t`,
          (rows) => ({ ours: rows[0]?.t != null, foreign: false })
        ),
      orElse: () =>
        Effect.map(
          sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`,
          (rows) => ({
            ours: rows.some((r) => r.name === Migrations.migrationsTable),
            foreign: rows.length > 0 && !rows.some((r) => r.name === Migrations.migrationsTable)
          })
        )
    })
    if (present.foreign) {
      return yield* new StoreError({
        message: `${database} is not a Relavium database or is corrupt: move it away or pass --data-dir`
      })
    }
    if (!present.ours) return 0
    const rows = yield* sql<{ v: number | string | null }>`SELECT MAX(migration_id) AS v FROM ${sql(Migrations.migrationsTable)}`
    return Number(rows[0]?.v ?? 0)
  })

/**
 * Brings the database to this build's schema and says what it applied. Refuses a
 * database written by a newer build; safe to run any number of times and from
 * concurrent processes: on Postgres every migrator first takes one advisory lock
 * (see {@link migrationLockKey}), so replicas starting together take turns.
 */
export const migrate = (
  database: string,
  options: { readonly lockTimeout?: Duration.DurationInput | undefined } = {}
): Effect.Effect<MigrationReport, StoreError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () => withMigrationLock(database, Duration.decode(options.lockTimeout ?? "60 seconds"), migrateUnlocked(database)),
      orElse: () => migrateUnlocked(database)
    })
  )

const migrateUnlocked = (database: string): Effect.Effect<MigrationReport, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const version = yield* currentVersion(database)
    if (version > Migrations.schemaVersion) {
      return yield* new StoreError({
        message: `${database} was written by a newer Relavium (schema ${version} > ${Migrations.schemaVersion}): upgrade Relavium, or pass --data-dir to use another database`
      })
    }
    if (version === Migrations.schemaVersion) return { applied: [], version }
    const applied = yield* Migrations.migrator({ loader: Migrations.loader, table: Migrations.migrationsTable })
    // Another process may have held the migration lock: wait until its migration is visible.
    const after = yield* currentVersion(database)
    if (after < Migrations.schemaVersion) {
      return yield* new MigrationPending()
    }
    return { applied: applied.map(([id, name]) => `${id}_${name}`), version: after }
  }).pipe(
    Effect.catchAllDefect((defect) =>
      Effect.fail(new StoreError({ message: `${database}: migration failed: ${describeCause(defect)}`, cause: defect }))
    ),
    // Retried: a concurrent migrator (MigrationPending) or a lost race creating the migrations table.
    Effect.retry({
      while: (error) => error instanceof MigrationPending || (error as { _tag?: unknown })._tag === "SqlError",
      schedule: Schedule.spaced(Duration.millis(50)),
      times: 20
    }),
    Effect.mapError((error) =>
      error instanceof StoreError
        ? error
        : new StoreError({ message: `${database}: migration failed: ${describeCause(error)}`, cause: error })
    )
  )

/**
 * The key of the Postgres advisory lock a migrator holds while it migrates ("relav" in ASCII):
 * the same for `relavium db migrate`, every api replica and every other opener of the database.
 */
export const migrationLockKey = "491327873398"

class LockBusy extends Data.TaggedError("LockBusy")<{}> {}

/**
 * Runs `effect` holding the migration lock: a session-level advisory lock on a connection
 * reserved for the purpose (so the lock outlives the migrator's own transactions), waited for
 * up to `timeout` and released, with the connection, when `effect` ends however it ends.
 */
const withMigrationLock = <A>(
  database: string,
  timeout: Duration.Duration,
  effect: Effect.Effect<A, StoreError, SqlClient.SqlClient>
): Effect.Effect<A, StoreError, SqlClient.SqlClient> =>
  Effect.scoped(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const failed = (what: string) => (cause: unknown) =>
        new StoreError({ message: `${database}: ${what}: ${describeCause(cause)}`, cause })
      const connection = yield* sql.reserve.pipe(Effect.mapError(failed("cannot take the migration lock")))
      yield* connection
        .execute("SELECT pg_try_advisory_lock($1::bigint) AS locked", [migrationLockKey], undefined)
        .pipe(
          Effect.mapError(failed("cannot take the migration lock")),
          Effect.flatMap((rows) => ((rows[0] as { locked?: unknown } | undefined)?.locked === true ? Effect.void : new LockBusy())),
          Effect.retry({ while: (e) => e._tag === "LockBusy", schedule: Schedule.spaced("100 millis").pipe(Schedule.upTo(timeout)) }),
          Effect.catchTag("LockBusy", () =>
            Effect.fail(
              new StoreError({
                message: `${database}: another process has held the migration lock for ${Duration.format(timeout)}; wait for it to finish (pg_locks lists it as an advisory lock)`
              })
            )
          )
        )
      yield* Effect.addFinalizer(() =>
        connection.execute("SELECT pg_advisory_unlock($1::bigint)", [migrationLockKey], undefined).pipe(Effect.ignore)
      )
      return yield* effect
    })
  )

/**
 * Checks, without changing anything, that the database has this build's schema: a database
 * behind it fails with what to run, one ahead of it with "upgrade".
 */
export const verifySchema = (database: string): Effect.Effect<void, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const version = yield* currentVersion(database)
    if (version > Migrations.schemaVersion) {
      return yield* new StoreError({
        message: `${database} was written by a newer Relavium (schema ${version} > ${Migrations.schemaVersion}): upgrade Relavium`
      })
    }
    if (version < Migrations.schemaVersion) {
      return yield* new StoreError({
        message: `${database} has schema version ${version}; this build needs ${Migrations.schemaVersion}: run \`relavium db migrate --database-url URL\` with the operator role's URL (or start \`relavium server api\` connected as it, which migrates)`
      })
    }
  }).pipe(
    Effect.catchTag("SqlError", (cause) =>
      Effect.fail(new StoreError({ message: `${database}: cannot read the schema version: ${describeCause(cause)}`, cause }))
    )
  )

/** Another process holds the migration lock and has not committed yet. */
class MigrationPending extends Data.TaggedError("MigrationPending")<{}> {
  override get message() {
    return "another process is migrating the database"
  }
}

// ---------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------

const sqliteHeader = "SQLite format 3\u0000"

/** Checks the file before opening it, so the common mistakes get a precise message. */
const preflightSqlite = (filename: string): Effect.Effect<void, StoreError> =>
  Effect.suspend(() => {
    if (filename === ":memory:" || filename === "") return Effect.void
    const fail = (message: string) => Effect.fail(new StoreError({ message }))
    const dir = Path.dirname(Path.resolve(filename))
    let dirStat: Fs.Stats
    try {
      dirStat = Fs.statSync(dir)
    } catch {
      return fail(
        `cannot open SQLite database ${filename}: the directory ${dir} does not exist; create it or pass --data-dir`
      )
    }
    if (!dirStat.isDirectory()) {
      return fail(`cannot open SQLite database ${filename}: ${dir} is not a directory; pass --data-dir`)
    }
    let stat: Fs.Stats | undefined
    try {
      stat = Fs.statSync(filename)
    } catch {
      stat = undefined
    }
    if (stat === undefined) {
      try {
        Fs.accessSync(dir, Fs.constants.W_OK)
      } catch {
        return fail(
          `cannot create SQLite database ${filename}: the directory ${dir} is not writable; fix its permissions or pass --data-dir`
        )
      }
      return Effect.void
    }
    if (!stat.isFile()) {
      return fail(`cannot open SQLite database ${filename}: it is not a file; move it away or pass --data-dir`)
    }
    try {
      Fs.accessSync(filename, Fs.constants.R_OK | Fs.constants.W_OK)
    } catch {
      return fail(
        `cannot open SQLite database ${filename}: the file is not writable; fix its permissions or pass --data-dir`
      )
    }
    if (stat.size > 0) {
      const header = Buffer.alloc(16)
      let read = 0
      try {
        const fd = Fs.openSync(filename, "r")
        try {
          read = Fs.readSync(fd, header, 0, 16, 0)
        } finally {
          Fs.closeSync(fd)
        }
      } catch (cause) {
        return Effect.fail(
          new StoreError({ message: `cannot read SQLite database ${filename}: ${describeCause(cause)}`, cause })
        )
      }
      if (read < 16 || header.toString("latin1") !== sqliteHeader) {
        return fail(`${filename} is not a Relavium database or is corrupt: move it away or pass --data-dir`)
      }
    }
    return Effect.void
  })

/**
 * Creates a data directory 0700 (missing parents get the default mode) and makes an existing one
 * this user owns 0700: it holds the database, run data, the key file and the monolith's token.
 */
export const ensurePrivateDirectory = (dir: string): void => {
  Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  const uid = process.getuid?.()
  if (uid === undefined || Fs.statSync(dir).uid === uid) Fs.chmodSync(dir, 0o700)
}

/** The database and its WAL, shared-memory and journal files. */
const sqliteFiles = (filename: string) => [filename, `${filename}-wal`, `${filename}-shm`, `${filename}-journal`]

/**
 * Makes the database's files 0600: a missing database is created empty with that mode before
 * SQLite opens it (SQLite gives its WAL and shared-memory files the database's mode), and existing
 * files this user owns are tightened (databases made by older versions were 0644). The database
 * holds run data: prompts, model answers, tool output.
 */
const privateSqliteFiles = (filename: string): Effect.Effect<void, StoreError> =>
  Effect.try({
    try: () => {
      if (filename === ":memory:" || filename === "") return
      Fs.closeSync(Fs.openSync(filename, Fs.constants.O_RDWR | Fs.constants.O_CREAT, 0o600))
      const uid = process.getuid?.()
      for (const file of sqliteFiles(filename)) {
        let stat: Fs.Stats
        try {
          stat = Fs.statSync(file)
        } catch {
          continue
        }
        if (stat.isFile() && (uid === undefined || stat.uid === uid) && (stat.mode & 0o777) !== 0o600) Fs.chmodSync(file, 0o600)
      }
    },
    catch: (cause) =>
      new StoreError({
        message: `cannot make SQLite database ${filename} private (mode 0600): ${describeCause(cause)}; check its permissions or pass --data-dir`,
        cause
      })
  })

const sqliteOpenError = (filename: string, cause: unknown): StoreError => {
  const text = describeCause(cause)
  if (/not a database|malformed|corrupt/i.test(text)) {
    return new StoreError({
      message: `${filename} is not a Relavium database or is corrupt: move it away or pass --data-dir`,
      cause
    })
  }
  if (/readonly|read-only|permission|unable to open|cannot open/i.test(text)) {
    return new StoreError({
      message: `cannot open SQLite database ${filename}: ${text}; check its permissions or pass --data-dir`,
      cause
    })
  }
  return new StoreError({ message: `cannot open SQLite database ${filename}: ${text}`, cause })
}

/**
 * A SQLite client on one file in WAL mode, with a busy timeout and foreign keys
 * on, migrated to this build's schema.
 */
export const layerSqlite = (
  options: SqliteOptions
): Layer.Layer<SqliteClient.SqliteClient | SqlClient.SqlClient, StoreError> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const { filename } = options
      yield* preflightSqlite(filename)
      yield* privateSqliteFiles(filename)
      const client = yield* SqliteClient.make({ filename }).pipe(
        Effect.catchAllCause((cause) => Effect.fail(sqliteOpenError(filename, Cause.squash(cause))))
      )
      const busyMs = Math.round(Duration.toMillis(options.busyTimeout ?? Duration.seconds(5)))
      yield* Effect.all([
        client.unsafe(`PRAGMA busy_timeout = ${busyMs}`),
        client.unsafe("PRAGMA foreign_keys = ON"),
        // Durable against a killed process (WAL); an OS crash may lose the last commits.
        client.unsafe("PRAGMA synchronous = NORMAL"),
        client.unsafe("PRAGMA wal_autocheckpoint = 0")
      ]).pipe(Effect.catchAllCause((cause) => Effect.fail(sqliteOpenError(filename, Cause.squash(cause)))))
      yield* client.unsafe("PRAGMA wal_checkpoint(PASSIVE)").pipe(
        Effect.catchAllCause((cause) => Effect.logDebug("WAL checkpoint failed", cause)),
        Effect.repeat(Schedule.spaced(options.checkpointInterval ?? Duration.seconds(1))),
        Effect.interruptible,
        Effect.forkScoped
      )
      // The WAL and shared-memory files now exist; tighten any an older version left readable.
      yield* privateSqliteFiles(filename)
      yield* migrate(`SQLite database ${filename}`).pipe(
        Effect.provideService(SqlClient.SqlClient, client),
        Effect.mapError((error) =>
          /not a database|malformed|corrupt/i.test(describeCause(error.cause)) ? sqliteOpenError(filename, error.cause) : error
        )
      )
      return Context.make(SqliteClient.SqliteClient, client).pipe(Context.add(SqlClient.SqlClient, client))
    })
  ).pipe(Layer.provide(Reactivity.layer))

// ---------------------------------------------------------------------------
// Postgres
// ---------------------------------------------------------------------------

const pgOpenError = (url: string, cause: unknown): StoreError => {
  const where = redactUrl(url)
  const code = findCode(cause)
  const text = describeCause(cause)
  if (code === "3D000") {
    return new StoreError({
      message: `cannot open Postgres at ${where}: ${text}; create it (createdb) or fix the URL`,
      cause
    })
  }
  if (code === "28P01" || code === "28000") {
    return new StoreError({ message: `cannot log in to Postgres at ${where}: ${text}; check the user and password`, cause })
  }
  return new StoreError({
    message: `cannot reach Postgres at ${where}: ${text}; is it running? \`bash scripts/services.sh\` starts it`,
    cause
  })
}

const findCode = (cause: unknown): string | undefined => {
  let current: unknown = cause
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    if ("code" in current && typeof current.code === "string") return current.code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

/** The Postgres client, loaded only by a process that opens Postgres (a local CLI run never does). */
const loadPg = () => import("@effect/sql-pg/PgClient")

/** A Postgres pool in the current scope, connected (or failed) within the connect timeout. */
const openPg = (options: PgOptions) =>
  Effect.gen(function* () {
    const Pg = yield* Effect.promise(loadPg)
    const url = Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url)
    const plain = Redacted.value(url)
    const connectTimeout = options.connectTimeout ?? Duration.seconds(5)
    const driver = yield* Pg.make({
      url,
      connectTimeout,
      maxConnections: Math.max(2, options.maxConnections ?? 10),
      applicationName: "relavium"
    }).pipe(
      Effect.catchAllCause((cause) => Effect.fail(pgOpenError(plain, Cause.squash(cause)))),
      // The pool's own timeout covers connecting; this covers a server that accepts and never answers.
      Effect.timeoutFail({
        duration: Duration.sum(connectTimeout, Duration.seconds(1)),
        onTimeout: () => pgOpenError(plain, new Error(`no answer within ${Duration.format(connectTimeout)}`))
      })
    )
    // Every statement and transaction runs for the fiber's CurrentOrg (row-level security).
    const client = yield* OrgClient.make(driver, Pg.makeCompiler())
    return { client, database: `Postgres at ${redactUrl(plain)}`, tag: Pg.PgClient }
  })

/**
 * A Postgres pool, connected (or failed) within the connect timeout, migrated to this build's
 * schema (or, with `migrate: "verify"`, checked to have it).
 */
export const layerPg = (options: PgOptions): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, StoreError> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const { client, database, tag } = yield* openPg(options)
      yield* Effect.gen(function* () {
        // Only the operator role changes the schema; the application role (relavium_app) verifies it.
        const operator = options.migrate !== "verify" && (yield* isOperator(database))
        yield* operator ? migrate(database, options) : verifySchema(database)
      }).pipe(Effect.provideService(SqlClient.SqlClient, client))
      return Context.make(tag, client).pipe(Context.add(SqlClient.SqlClient, client))
    })
  ).pipe(Layer.provide(Reactivity.layer))

/**
 * Whether the connected role may migrate: a superuser or a role with BYPASSRLS (the operator role
 * that owns the schema). The application role `relavium_app` is neither, and only verifies.
 */
export const isOperator = (database: string): Effect.Effect<boolean, StoreError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ operator: boolean }>`SELECT rolsuper OR rolbypassrls AS operator FROM pg_roles WHERE rolname = current_user`.pipe(
      Effect.map((rows) => rows[0]?.operator === true),
      Effect.mapError((cause) => new StoreError({ message: `${database}: cannot read the connected role: ${describeCause(cause)}`, cause }))
    )
  )

/**
 * Opens Postgres, brings it to this build's schema under the migration lock, closes it, and
 * says what it applied: `relavium db migrate`. Connected as a role that cannot migrate (the
 * application role), it fails saying to use the operator's URL; with `ifNotOperator: "verify"` (an
 * api replica starting) it only checks the schema instead, failing when it is behind.
 */
export const migratePg = (options: PgOptions, ifNotOperator: "fail" | "verify" = "fail"): Effect.Effect<MigrationReport & { readonly database: string }, StoreError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { client, database } = yield* openPg({ ...options, maxConnections: 2 })
      const report = yield* Effect.gen(function* () {
        if (!(yield* isOperator(database))) {
          if (ifNotOperator === "verify") {
            yield* verifySchema(database)
            return { applied: [], version: Migrations.schemaVersion }
          }
          return yield* new StoreError({
            message: `${database}: this role cannot migrate (it is neither superuser nor BYPASSRLS, as the application role ${Migrations.appRole} is): pass the operator role's URL`
          })
        }
        return yield* migrate(database, options)
      }).pipe(Effect.provideService(SqlClient.SqlClient, client))
      return { ...report, database }
    })
  ).pipe(Effect.provide(Reactivity.layer))

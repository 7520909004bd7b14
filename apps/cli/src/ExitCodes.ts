/**
 * How a command ends: its exit code (0 ok, 1 failed, 2 bad input or setting,
 * 3 paused for a human) and, for `--json`, the error's code. For each family
 * of commands, a table over the `_tag`s of the tagged errors it can fail with
 * maps every error to its ending: the tables are total, so a new error in one
 * of those unions that has no exit code here is a type error.
 */
import type { HttpServerError } from "@effect/platform"
import type { ChatError } from "@relavium/chat"
import type { DaemonServeError, DialError } from "@relavium/daemon"
import type { Cassette, Pricing } from "@relavium/llm"
import type { KeyStoreError, StoreError } from "@relavium/ports"
import type { Monolith } from "@relavium/server"
import type { Misconfigured } from "./Problem.js"
import type { DataDirectoryError } from "./runtime/DataDirectory.js"
import type { StartupError } from "./runtime/Deployment.js"
import type { GatewayError } from "./runtime/Gateway.js"

export const ExitCode = { ok: 0, failed: 1, invalid: 2, paused: 3 } as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

export interface Ending {
  readonly exit: ExitCode
  /** The `code` of the `{"type":"error"}` object printed with `--json`. */
  readonly code: string
}

type Tagged = { readonly _tag: string }

/** One ending for every `_tag` of the union `E`. */
export type Endings<E extends Tagged> = { readonly [K in E["_tag"]]: Ending }

const invalid = (code = "validation"): Ending => ({ exit: ExitCode.invalid, code })
const failed = (code = "failed"): Ending => ({ exit: ExitCode.failed, code })

/** The ending `table` gives `error`, when it is one of the table's errors. */
export const endingOf = <E extends Tagged>(table: Endings<E>, error: unknown): Ending | undefined => {
  if (typeof error !== "object" || error === null || !("_tag" in error) || typeof error._tag !== "string") return undefined
  return Object.hasOwn(table, error._tag) ? (table as Record<string, Ending>)[error._tag] : undefined
}

/** Whether `error` is one of the errors of `table`. */
export const isOneOf =
  <E extends Tagged>(table: Endings<E>) =>
  (error: unknown): error is E =>
    endingOf(table, error) !== undefined

// ---------------------------------------------------------------------------
// Local commands (run, resume, runs, gate, chat, models): bad input, exit 2
// ---------------------------------------------------------------------------

/** What the local composition can fail with as it opens: the database, a cassette, the price file, the data directory. */
export type LocalError = StoreError | Cassette.CassetteError | Pricing.PricingError | DataDirectoryError

export const localErrors: Endings<LocalError> = {
  StoreError: invalid("store"),
  CassetteError: invalid(),
  PricingError: invalid(),
  DataDirectoryError: invalid("store")
}

export const chatErrors: Endings<ChatError> = {
  ProjectDirectoryNotFound: invalid(),
  UnknownProject: invalid("not_found"),
  UnknownChat: invalid("not_found"),
  NotAGitRepository: invalid(),
  WorktreeError: invalid(),
  InvalidChatInput: invalid(),
  ChatBusy: invalid("conflict"),
  ApprovalRequired: { exit: ExitCode.paused, code: "approval_required" },
  UnknownToolCall: invalid("not_found"),
  ToolCallAlreadyDecided: invalid("conflict"),
  NothingToResume: invalid(),
  WorktreeRemoved: invalid("conflict"),
  DaemonNotConnected: invalid("conflict"),
  ChatStorageError: invalid("store")
}

// ---------------------------------------------------------------------------
// Long-running processes (monolith, server api|worker|gateway) and db migrate
// ---------------------------------------------------------------------------

/** Why a process of the distributed deployment could not start (or stopped). */
export type ServerProcessError =
  | Misconfigured
  | StartupError
  | HttpServerError.ServeError
  | GatewayError

export const serverProcessErrors: Endings<ServerProcessError> = {
  Misconfigured: invalid(),
  StoreError: failed("store"),
  QueueError: failed(),
  HubError: failed(),
  NatsRouterError: failed(),
  KeyStoreError: failed(),
  CassetteError: failed(),
  ServeError: failed(),
  GatewayError: failed()
}

/** Why a monolith could not start (or stopped): every one exits 1. */
export type MonolithProcessError = Monolith.MonolithError | LocalError | HttpServerError.ServeError

export const monolithErrors: Endings<MonolithProcessError> = {
  MonolithError: failed(),
  StoreError: failed("store"),
  CassetteError: failed(),
  PricingError: failed(),
  DataDirectoryError: failed(),
  ServeError: failed()
}

/** `relavium db migrate`: the database could not be migrated. */
export const migrateErrors: Endings<StoreError> = { StoreError: failed("store") }

/** `relavium keys rotate-master | rotate`: a missing or malformed setting (2), the database or a key that does not open (1). */
export const keyRotationErrors: Endings<Misconfigured | StoreError | KeyStoreError> = {
  Misconfigured: invalid(),
  StoreError: failed("store"),
  KeyStoreError: failed("keys")
}

/** `relavium daemon start`: it could not listen (1), or the gateway refused it or could not be dialed (2). */
export const daemonErrors: Endings<DaemonServeError | DialError> = {
  DaemonServeError: failed(),
  DialError: invalid()
}

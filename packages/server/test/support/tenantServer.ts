/**
 * The whole `MonolithApi` in this process on plain HTTP on loopback, with
 * callers resolved through the memory `Tenancy` (`Auth.layerTenancy`, as the
 * api replicas do) and the audit trail in memory: the local engine on SQLite in
 * a temporary directory, the chat service, no model. The test gets the built
 * context to make orgs and tokens and to read the audit trail.
 */
import { NodeContext, NodeHttpServer } from "@effect/platform-node"
import { HttpServer } from "@effect/platform"
import { type Context, Effect, Exit, Layer, type Redacted, Scope } from "effect"
import { createServer } from "node:http"
import { join } from "node:path"
import { ChatHub, ChatTools, layer as chatServiceLayer, Worktrees } from "@relavium/chat"
import { layerLocal, QuickJsSandbox } from "@relavium/core"
import { Cassette, Pricing } from "@relavium/llm"
import {
  type AuditLog,
  DaemonRouter,
  KeyStore,
  layerTenancyMemory,
  layerTriggersMemory,
  type NotificationStore,
  RunQueue,
  type Tenancy,
  type Triggers,
  UpdateHub,
  type UsageStore
} from "@relavium/ports"
import { Store } from "@relavium/store"
import { Auth, HttpGuard, type Notifier, Server } from "../../src/index.js"
import { notificationStores } from "../../../../test/support/notify.js"

export interface TenantServer {
  readonly url: string
  /** Runs an effect with the server's Tenancy, AuditLog, Triggers and notification stores. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, Tenancy | AuditLog | Triggers | NotifyServices>) => Promise<A>
  readonly close: () => Promise<void>
}

/** The notification and usage stores and the notifier's settings (test/support/notify.ts). */
type NotifyServices = NotificationStore | UsageStore | Notifier.NotifySettings

const noModel = Cassette.layerCassette({ schema_version: "1.0", provider: "openai", calls: [] })

export const startTenantServer = async (options: {
  readonly dataDir: string
  /** Accepted beside the org tokens as the owner of the org `local` (the api's `--token`). */
  readonly localOwnerToken?: Redacted.Redacted<string>
  /** The notification settings (a master key for channel secrets, the link key). */
  readonly notify?: Parameters<typeof notificationStores>[0]
}): Promise<TenantServer> => {
  const scope = Effect.runSync(Scope.make())
  const engine = layerLocal({ executionMode: "local" }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        UpdateHub.layerMemory,
        RunQueue.layerMemory(),
        QuickJsSandbox.layerQuickJs,
        noModel,
        KeyStore.layerMemory(),
        Pricing.layerStatic,
        DaemonRouter.layerInProcess([])
      )
    ),
    Layer.provideMerge(Store.layerSqlite({ filename: join(options.dataDir, "relavium.db") })),
    Layer.provideMerge(NodeContext.layer)
  )
  const chats = chatServiceLayer({ worktreesDir: join(options.dataDir, "worktrees") }).pipe(
    Layer.provideMerge(Layer.mergeAll(ChatHub.layerMemory, ChatTools.layer(() => DaemonRouter.layerInProcess([])), Worktrees.layerGit))
  )
  const app = Server.layerMonolith({}).pipe(
    Layer.provide(Auth.layerTenancy({ localOwnerToken: options.localOwnerToken })),
    Layer.provideMerge(layerTenancyMemory),
    Layer.provideMerge(layerTriggersMemory),
    Layer.provideMerge(NodeHttpServer.layer(() => createServer(HttpGuard.nodeServerOptions()), { host: "127.0.0.1", port: 0 })),
    Layer.provideMerge(notificationStores(options.notify)),
    Layer.provide(chats),
    Layer.provide(engine)
  )
  const context: Context.Context<Tenancy | AuditLog | Triggers | HttpServer.HttpServer | NotifyServices> = await Effect.runPromise(Layer.buildWithScope(app, scope))
  const url = await Effect.runPromise(
    Effect.map(HttpServer.HttpServer, (server) => {
      const address = server.address
      if (address._tag !== "TcpAddress") throw new Error("not a TCP server")
      return `http://127.0.0.1:${address.port}`
    }).pipe(Effect.provide(context))
  )
  return {
    url,
    run: (effect) => Effect.runPromise(Effect.provide(effect, context)),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export interface Reply {
  readonly status: number
  readonly text: string
  readonly json: any
}

/**
 * One request; `authorization` is the whole header (null: none). An event stream's status is read
 * and the stream closed, so a stream that would never end does not hold the test.
 */
export const call = async (
  server: TenantServer,
  method: string,
  path: string,
  options: { readonly authorization: string | null; readonly body?: unknown }
): Promise<Reply> => {
  const controller = new AbortController()
  const headers: Record<string, string> = {}
  if (options.authorization !== null) headers.authorization = options.authorization
  if (options.body !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: controller.signal
  })
  if ((response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    controller.abort()
    return { status: response.status, text: "", json: undefined }
  }
  const text = await response.text()
  let json: unknown
  try {
    json = text === "" ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, text, json }
}

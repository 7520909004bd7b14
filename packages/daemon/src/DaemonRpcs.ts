/**
 * The daemon's RPC protocol (@effect/rpc, JSON over a websocket):
 *
 * - `Execute { call }` → a stream of `Output { stream, text }` chunks, then one
 *   `Result { output, isError }`; fails with `ToolError`.
 * - `ListTools { names? }` → `ToolDef[]`; fails with `ToolError`.
 * - `Ping` → `{ daemon, version, uptimeMs, started }`.
 *
 * Every request must carry `authorization: Bearer <token>`; the
 * `DaemonAuth` middleware compares it in constant time and refuses a wrong
 * one with `Unauthorized` (the connection and the daemon stay up).
 */
import * as Crypto from "node:crypto"
import { Headers } from "@effect/platform"
import { Rpc, RpcGroup, RpcMiddleware } from "@effect/rpc"
import { Effect, Layer, Redacted, Schema } from "effect"
import { ToolError } from "@relavium/ports"
import { Llm } from "@relavium/domain"
import { Daemon } from "./Daemon.js"
import { ExecuteChunk, PingInfo, ToolCallSchema } from "./ToolCall.js"

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}) {}

export class DaemonAuth extends RpcMiddleware.Tag<DaemonAuth>()("@relavium/daemon/DaemonAuth", {
  failure: Unauthorized,
  requiredForClient: true
}) {}

export class DaemonRpcs extends RpcGroup.make(
  Rpc.make("Execute", {
    payload: { call: ToolCallSchema },
    success: ExecuteChunk,
    error: ToolError,
    stream: true
  }),
  Rpc.make("ListTools", {
    payload: { names: Schema.optional(Schema.Array(Schema.String)) },
    success: Schema.Array(Llm.ToolDef),
    error: ToolError
  }),
  Rpc.make("Ping", { success: PingInfo })
).middleware(DaemonAuth) {}

const digest = (value: string) => Crypto.createHash("sha256").update(value, "utf8").digest()

/** Whether `presented` equals `expected`, in time that does not depend on where they differ. */
export const tokenMatches = (expected: Redacted.Redacted<string>, presented: string): boolean =>
  Crypto.timingSafeEqual(digest(Redacted.value(expected)), digest(presented))

/** The server side of the token check. */
export const layerAuth = (token: Redacted.Redacted<string>): Layer.Layer<DaemonAuth> =>
  Layer.succeed(
    DaemonAuth,
    DaemonAuth.of(({ headers }) => {
      const header = headers.authorization ?? ""
      const presented = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : ""
      return presented !== "" && tokenMatches(token, presented)
        ? Effect.void
        : Effect.fail(new Unauthorized({ message: "the daemon refused the request: missing or wrong token" }))
    })
  )

/** The client side: every request carries the token. */
export const layerAuthClient = (token: Redacted.Redacted<string>) =>
  RpcMiddleware.layerClient(DaemonAuth, ({ request }) =>
    Effect.succeed({ ...request, headers: Headers.set(request.headers, "authorization", `Bearer ${Redacted.value(token)}`) })
  )

/** The handlers: each RPC is the daemon method of the same name. */
export const layerHandlers: Layer.Layer<Rpc.ToHandler<RpcGroup.Rpcs<typeof DaemonRpcs>>, never, Daemon> = DaemonRpcs.toLayer(
  Effect.gen(function* () {
    const daemon = yield* Daemon
    return DaemonRpcs.of({
      Execute: ({ call }) => daemon.execute(call),
      ListTools: ({ names }) => daemon.tools(names),
      Ping: () => daemon.ping
    })
  })
)

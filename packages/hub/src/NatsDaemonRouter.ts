/**
 * Tool calls over NATS, between the workers that run agents and the gateway
 * that holds a user's tools daemon (ARCHITECTURE: `DaemonRouter.layerNats`).
 *
 * Subjects, under a prefix (default `relavium`), per daemon name `N`:
 *
 * - `<prefix>.daemon.N.call` — a request `{ kind: "execute", call }` or
 *   `{ kind: "tools", names? }`, with a reply inbox. Only a gateway holding
 *   daemon N subscribes (queue group `gateway`, so one of them answers when a
 *   daemon reconnected through another gateway). On the inbox it sends
 *   `{ t: "ack" }` at once, `{ t: "beat" }` every `heartbeatMs` while the call
 *   runs, `{ t: "output", stream, text }` for each chunk of output the tool
 *   prints while it runs (run_command; coalesced and bounded by the daemon,
 *   in order: one publisher, one subject), then `{ t: "result", output,
 *   isError }`, `{ t: "tools", tools }` or `{ t: "error", code, message }`.
 * - `<prefix>.daemon.N.cancel` — `{ callId }`, published by a worker whose
 *   call was interrupted (a run cancelled); the gateway interrupts that call,
 *   which kills the daemon's command tree.
 *
 * The worker side fails with `tool_unavailable` — never hangs — when no ack
 * arrives (no gateway holds daemon N) or the beats stop (the gateway or its
 * connection died mid-call). Every message is decoded with a Schema; a
 * malformed one is ignored on the gateway and a `tool_failed` on the worker.
 * Nothing but the call (tool name, arguments, policy) crosses NATS: no keys.
 * With tracing on, a call carries the W3C `traceparent` of the worker's span
 * as a NATS header (`TRACEPARENT_HEADER`); the gateway's span of the call is
 * its child, so the call is part of the run's trace (docs/observability.md).
 */
import { createInbox, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from "nats"
import { Cause, Data, Duration, Effect, Either, Exit, Fiber, FiberId, Layer, Option, Queue, Runtime, Schema, Scope } from "effect"
import { DaemonRouter, type ExecuteOptions, ToolError, type ToolCall, type ToolResult, Tracing } from "@relavium/ports"
import { Llm, Tool } from "@relavium/domain"
import * as NatsUpdateHub from "./NatsUpdateHub.js"

export class NatsRouterError extends Data.TaggedError("NatsRouterError")<{ readonly message: string; readonly cause?: unknown }> {}

const CallSchema = Tool.toolCallWith(Tool.ToolPolicy)

/** What a worker sends. */
export const Request = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("execute"), call: CallSchema }),
  Schema.Struct({ kind: Schema.Literal("tools"), names: Schema.Array(Schema.String) })
)
export type Request = typeof Request.Type

/** What a gateway sends back on the reply inbox. */
export const Reply = Schema.Union(
  Schema.Struct({ t: Schema.Literal("ack") }),
  Schema.Struct({ t: Schema.Literal("beat") }),
  Schema.Struct({ t: Schema.Literal("output"), stream: Schema.Literal("stdout", "stderr"), text: Schema.String }),
  Schema.Struct({ t: Schema.Literal("result"), output: Schema.String, isError: Schema.Boolean }),
  Schema.Struct({ t: Schema.Literal("tools"), tools: Schema.Array(Llm.ToolDef) }),
  Schema.Struct({ t: Schema.Literal("error"), code: Tool.ToolErrorCode, message: Schema.String })
)
export type Reply = typeof Reply.Type

/** What a worker sends when it gives up on a call (on the cancel subject). */
export const Cancel = Schema.Struct({ callId: Schema.String })

const decodeRequest = Schema.decodeUnknownEither(Schema.parseJson(Request))
const decodeReply = Schema.decodeUnknownEither(Schema.parseJson(Reply))
const decodeCancel = Schema.decodeUnknownEither(Schema.parseJson(Cancel))
const encodeRequest = Schema.encodeSync(Schema.parseJson(Request))
const encodeReply = Schema.encodeSync(Schema.parseJson(Reply))

/** NATS subject tokens cannot hold `.`, `*`, `>` or whitespace. */
const subjectToken = (value: string) => value.replace(/[.*>\s]/g, "_")

/** The NATS header carrying the caller's W3C trace context. */
export const TRACEPARENT_HEADER = "traceparent"

export const callSubject = (prefix: string, daemon: string) => `${prefix}.daemon.${subjectToken(daemon)}.call`
export const cancelSubject = (prefix: string, daemon: string) => `${prefix}.daemon.${subjectToken(daemon)}.cancel`

export interface ConnectOptions {
  /** One or more `nats://host:port` URLs. */
  readonly servers: string | ReadonlyArray<string>
  /** How long to wait for NATS before failing (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Shown by the NATS server in its connection list. */
  readonly name?: string | undefined
}

/** A NATS connection for the scope (the hub's, with this module's error); drained when it closes. */
export const acquireConnection = (options: ConnectOptions): Effect.Effect<NatsConnection, NatsRouterError, Scope.Scope> =>
  NatsUpdateHub.acquireConnection({ ...options, name: options.name ?? "relavium-tools" }).pipe(
    Effect.mapError((e) => new NatsRouterError({ message: e.message, cause: e.cause }))
  )

export interface RouterOptions {
  /** The daemon the tool calls go to (its `--name`; default `default`). */
  readonly daemon?: string | undefined
  readonly subjectPrefix?: string | undefined
  /** How long to wait for a gateway to acknowledge a call (default 3 s). */
  readonly ackTimeout?: Duration.DurationInput | undefined
  /** How long a running call may go without a heartbeat (default 15 s). */
  readonly silenceTimeout?: Duration.DurationInput | undefined
}

const NO_RESPONDERS = "no responders"

const unavailable = (message: string) => new ToolError({ code: "tool_unavailable", message })

/** The worker side, over an open connection. */
export const makeRouter = (nc: NatsConnection, options: RouterOptions = {}): DaemonRouter["Type"] => {
  const prefix = options.subjectPrefix ?? "relavium"
  const daemon = options.daemon ?? "default"
  const ackMs = Duration.toMillis(Duration.decode(options.ackTimeout ?? "3 seconds"))
  const silenceMs = Duration.toMillis(Duration.decode(options.silenceTimeout ?? "15 seconds"))

  const notConnected = unavailable(
    `no tools daemon named '${daemon}' is connected to a gateway; start one with \`relavium daemon start --gateway URL --token T --name ${daemon}\``
  )

  /** Sends one request; returns its final reply (anything but ack, beat and output, which goes to `onOutput`). */
  const exchange = (request: Request, callId: string | undefined, onOutput?: ExecuteOptions["onOutput"]): Effect.Effect<Reply, ToolError> =>
    Effect.scoped(
      Effect.gen(function* () {
        if (nc.isClosed()) return yield* unavailable("the connection to NATS is closed; tool calls cannot reach the gateway")
        const replies = yield* Effect.acquireRelease(Queue.unbounded<Either.Either<Reply, string>>(), Queue.shutdown)
        const inbox = createInbox(`${prefix}.inbox`)
        yield* Effect.acquireRelease(
          Effect.sync(
            (): Subscription =>
              nc.subscribe(inbox, {
                callback: (error, msg) => {
                  if (error !== null) return
                  // The server's "no responders" status: nothing subscribes to the daemon's subject.
                  if (msg.headers?.code === 503) return replies.unsafeOffer(Either.left(NO_RESPONDERS))
                  const decoded = decodeReply(msg.string())
                  replies.unsafeOffer(Either.mapLeft(decoded, (e) => e.message))
                }
              })
          ),
          (subscription) => Effect.sync(() => subscription.unsubscribe())
        )
        const traceparent = yield* Tracing.currentTraceparent
        yield* Effect.try({
          try: () => {
            let headers: ReturnType<typeof natsHeaders> | undefined
            if (traceparent !== undefined) {
              headers = natsHeaders()
              headers.set(TRACEPARENT_HEADER, traceparent)
            }
            nc.publish(callSubject(prefix, daemon), encodeRequest(request), { reply: inbox, ...(headers === undefined ? {} : { headers }) })
          },
          catch: (e) => unavailable(`cannot send the tool call over NATS: ${e instanceof Error ? e.message : String(e)}`)
        })
        let acked = false
        for (;;) {
          const next = yield* Queue.take(replies).pipe(
            Effect.timeoutFail({
              duration: Duration.millis(acked ? silenceMs : ackMs),
              onTimeout: () =>
                acked
                  ? unavailable(`the gateway holding tools daemon '${daemon}' stopped answering during the call`)
                  : notConnected
            })
          )
          if (Either.isLeft(next) && next.left === NO_RESPONDERS) return yield* notConnected
          if (Either.isLeft(next)) {
            return yield* new ToolError({ code: "tool_failed", message: `a malformed reply from the gateway: ${next.left}` })
          }
          const reply = next.right
          if (reply.t === "ack" || reply.t === "beat") {
            acked = true
            continue
          }
          if (reply.t === "output") {
            acked = true
            if (onOutput !== undefined) yield* onOutput({ stream: reply.stream, text: reply.text })
            continue
          }
          return reply
        }
      })
    ).pipe(
      Effect.onInterrupt(() =>
        callId === undefined || nc.isClosed()
          ? Effect.void
          : Effect.sync(() => nc.publish(cancelSubject(prefix, daemon), JSON.stringify({ callId })))
      )
    )

  const failOn = (reply: Reply): Effect.Effect<never, ToolError> =>
    reply.t === "error"
      ? Effect.fail(new ToolError({ code: reply.code, message: reply.message }))
      : Effect.fail(new ToolError({ code: "tool_failed", message: `an unexpected reply from the gateway: ${reply.t}` }))

  return DaemonRouter.of({
    tools: (names) =>
      Effect.flatMap(exchange({ kind: "tools", names: [...names] }, undefined), (reply) =>
        reply.t === "tools" ? Effect.succeed(reply.tools) : failOn(reply)
      ),
    execute: (call, executeOptions) =>
      Effect.flatMap(exchange({ kind: "execute", call: call as typeof CallSchema.Type }, call.callId, executeOptions?.onOutput), (reply) =>
        reply.t === "result" ? Effect.succeed<ToolResult>({ output: reply.output, isError: reply.isError }) : failOn(reply)
      )
  })
}

/** `DaemonRouter` over NATS: tool calls go to the gateway that holds the named daemon. */
export const layerRouter = (options: ConnectOptions & RouterOptions): Layer.Layer<DaemonRouter, NatsRouterError> =>
  Layer.scoped(
    DaemonRouter,
    Effect.map(acquireConnection({ ...options, name: options.name ?? "relavium-worker-tools" }), (nc) => makeRouter(nc, options))
  )

export interface ServeOptions {
  readonly daemon: string
  readonly subjectPrefix?: string | undefined
  /** Beat interval while a call runs (default 2 s). */
  readonly heartbeat?: Duration.DurationInput | undefined
}

/**
 * The gateway side: answers the calls for one daemon with `router` (the
 * connection to that daemon) while the scope is open. Open it when the
 * daemon connects, close it when it goes.
 */
export const serveDaemon = (
  nc: NatsConnection,
  router: DaemonRouter["Type"],
  options: ServeOptions
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const prefix = options.subjectPrefix ?? "relavium"
    const beatMs = Duration.toMillis(Duration.decode(options.heartbeat ?? "2 seconds"))
    const runtime = yield* Effect.runtime<never>()
    const running = new Map<string, Fiber.RuntimeFiber<void>>()

    const send = (msg: Msg, reply: Reply) =>
      Effect.sync(() => {
        if (msg.reply === undefined || nc.isClosed()) return
        let data: string
        try {
          data = encodeReply(reply)
        } catch (e) {
          // A tool definition or result that does not fit the wire shape is the call's failure, not silence.
          data = encodeReply({ t: "error", code: "tool_failed", message: `the gateway cannot send the reply: ${e instanceof Error ? e.message : String(e)}` })
        }
        nc.publish(msg.reply, data)
      })

    const handle = (msg: Msg, request: Request): Effect.Effect<void> => {
      const work: Effect.Effect<Reply, ToolError> =
        request.kind === "tools"
          ? Effect.map(router.tools(request.names), (tools): Reply => ({ t: "tools", tools: [...tools] }))
          : Effect.map(
              router.execute(request.call as ToolCall, {
                onOutput: (chunk) => send(msg, { t: "output", stream: chunk.stream, text: chunk.text })
              }),
              (r): Reply => ({ t: "result", output: r.output, isError: r.isError ?? false }))
      const traced = Effect.gen(function* () {
        yield* send(msg, { t: "ack" })
        const beats = yield* send(msg, { t: "beat" }).pipe(
          Effect.delay(Duration.millis(beatMs)),
          Effect.forever,
          Effect.fork
        )
        const exit = yield* Effect.exit(work)
        yield* Fiber.interrupt(beats)
        if (Exit.isSuccess(exit)) return yield* send(msg, exit.value)
        if (Cause.isInterruptedOnly(exit.cause)) return
        const failure = Cause.failureOption(exit.cause)
        yield* send(
          msg,
          Option.isSome(failure)
            ? { t: "error", code: failure.value.code, message: failure.value.message }
            : { t: "error", code: "tool_failed", message: `the gateway failed the call: ${Cause.pretty(exit.cause)}` }
        )
      })
      // A child of the worker's span when the call carries its traceparent; the tool's name only, never its arguments.
      return traced.pipe(
        Effect.withSpan("gateway.tool_call", {
          kind: "server",
          attributes: {
            "relavium.daemon": options.daemon,
            "relavium.request": request.kind,
            ...(request.kind === "execute" ? { "gen_ai.tool.name": request.call.name } : {})
          }
        }),
        Tracing.withRemoteParent(msg.headers?.get(TRACEPARENT_HEADER) || undefined)
      )
    }

    yield* Effect.acquireRelease(
      Effect.sync((): Array<Subscription> => [
        nc.subscribe(callSubject(prefix, options.daemon), {
          queue: "gateway",
          callback: (error, msg) => {
            if (error !== null) return
            const decoded = decodeRequest(msg.string())
            if (Either.isLeft(decoded)) return
            const request = decoded.right
            const callId = request.kind === "execute" ? request.call.callId : undefined
            const fiber = Runtime.runFork(runtime)(
              handle(msg, request).pipe(Effect.ensuring(Effect.sync(() => callId !== undefined && running.delete(callId))))
            )
            if (callId !== undefined) running.set(callId, fiber)
          }
        }),
        nc.subscribe(cancelSubject(prefix, options.daemon), {
          callback: (error, msg) => {
            if (error !== null) return
            const decoded = decodeCancel(msg.string())
            if (Either.isRight(decoded)) running.get(decoded.right.callId)?.unsafeInterruptAsFork(FiberId.none)
          }
        })
      ]),
      (subscriptions) =>
        Effect.gen(function* () {
          for (const s of subscriptions) s.unsubscribe()
          yield* Fiber.interruptAll(running.values())
        })
    )
    // Registered at the server once a round trip has completed.
    yield* Effect.promise(() => nc.flush().catch(() => undefined))
  })

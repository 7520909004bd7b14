/**
 * Turns: `send` stores the user message and `resume` continues a turn; both
 * claim the chat and start the shared `AgentLoop` in the background with the
 * chat's hooks — a model call, then the tool calls it asked for, until an
 * answer without tool calls, a pause for approval, a failure or the per-turn
 * model-call limit.
 */
import { Cause, Effect, Either, Exit, Fiber, Option, Schedule, Stream } from "effect"
import { AgentLoop } from "@relavium/core"
import type { ChatTurnJob } from "@relavium/ports"
import { type ChatEvent, isRest } from "./ChatEvent.js"
import {
  ApprovalRequired,
  type ChatError,
  ChatStorageError,
  DaemonNotConnected,
  InvalidChatInput,
  NothingToResume,
  UnknownChat,
  WorktreeRemoved
} from "./ChatError.js"
import { type ChatMessage, modelCallsInTurn, nextStep, textOf } from "./Conversation.js"
import { freshMessage } from "./Blocks.js"
import { type ChatContext, clockNow, Continue, HEARTBEAT, type Loaded, now, outcomeOf, storage } from "./ChatContext.js"
import type { Turn, TurnOutcome } from "./ChatService.js"
import type { Follow } from "./Follow.js"
import { makeModelStep, type PreparedModelCall } from "./ModelStep.js"
import type { Recovery } from "./Recovery.js"
import { type ChatToolCall, makeToolRunner } from "./ToolRunner.js"
import { pendingOf, type Views } from "./Views.js"

/** What a chat's stored messages used and cost. */
const costOf = (messages: ReadonlyArray<ChatMessage>): AgentLoop.Totals =>
  messages.reduce(
    (sum, m) => ({
      inputTokens: sum.inputTokens + m.inputTokens,
      outputTokens: sum.outputTokens + m.outputTokens,
      costMicrocents: sum.costMicrocents + m.costMicrocents
    }),
    { inputTokens: 0, outputTokens: 0, costMicrocents: 0 }
  )

const titleOf = (text: string): string => {
  const line = text.trim().split("\n")[0] ?? ""
  return line.length > 60 ? `${line.slice(0, 59)}…` : line
}

export const makeTurns = (ctx: ChatContext, views: Views, { claim, release, settle }: Recovery, { follow }: Follow) => {
  const { cancels, commit, llm, options, owner, pricing, serviceScope, store, tools, turnQueue } = ctx
  const { load, loadMessages } = views
  const { prepareCall } = makeModelStep(ctx)
  const { approve, deny, runTool } = makeToolRunner(ctx, views)
  const maxModelCalls = options.maxModelCallsPerTurn ?? 50
  /** The turns this process runs, by chat (for `cancel`). */
  const running = new Map<string, Fiber.RuntimeFiber<TurnOutcome, UnknownChat | ChatStorageError>>()

  const failTurn = (chatId: string, code: string, message: string) =>
    commit(chatId, { turnStatus: "failed", events: [{ type: "turn:failed", code, message }] }).pipe(
      Effect.as(outcomeOf(chatId, "failed", { error: { code, message } }))
    )

  /** Runs the chat's turn until it rests. The caller holds the claim. */
  const runTurn = (chatId: string): Effect.Effect<TurnOutcome, UnknownChat | ChatStorageError> =>
    Effect.scoped(
      Effect.gen(function* () {
        // Each beat writes the time of that beat, so a claim stays fresh for as long as the turn runs.
        yield* Effect.flatMap(clockNow, (at) => store.heartbeat(chatId, owner, at)).pipe(
          Effect.ignore,
          Effect.repeat(Schedule.spaced(HEARTBEAT)),
          Effect.interruptible,
          Effect.forkScoped
        )
        const loaded = yield* load(chatId)
        const router = yield* tools.router({ workspace: loaded.workspace, daemon: loaded.project.daemon })
        const toolDefs = yield* router.tools(loaded.settings.tools).pipe(Effect.either)
        if (Either.isLeft(toolDefs)) return yield* failTurn(chatId, toolDefs.left.code, toolDefs.left.message)
        let messages: ReadonlyArray<ChatMessage> = []
        let prepared: PreparedModelCall | undefined
        // A project's daemon that went away during the turn: the turn stops before the model is asked again.
        let daemonGone: string | undefined
        const daemon = loaded.project.daemon
        return yield* AgentLoop.run<ChatToolCall, ChatMessage | undefined, TurnOutcome, UnknownChat | ChatStorageError, never>({
          llm,
          // The chat's cost so far is what its stored messages cost; the loop adds each call to it.
          metering: {
            pricing,
            provider: loaded.settings.provider,
            model: loaded.settings.model,
            from: Effect.map(loadMessages(chatId), costOf)
          },
          turnLimit: { modelCalls: maxModelCalls, runToolsOfLastCall: true },
          // The stored messages say where the turn stands; a tools step settles its first call, then they are read again.
          position: Effect.map(loadMessages(chatId), (stored): AgentLoop.Position<ChatToolCall, ChatMessage | undefined> => {
            messages = stored
            const step = nextStep(stored)
            switch (step._tag) {
              case "Done":
                return { _tag: "Answered", answer: step.answer }
              case "CallModel":
                return { _tag: "CallModel", turn: modelCallsInTurn(stored) }
              case "Tools":
                return { _tag: "Tools", turn: modelCallsInTurn(stored) - 1, calls: [{ step, call: step.calls[0]! }] }
            }
          }),
          prepareCall: () =>
            daemon !== undefined && daemonGone !== undefined
              ? Effect.map(
                failTurn(
                  chatId,
                  "tool_unavailable",
                  `tools daemon '${daemon}' of this chat's project went away during the turn (${daemonGone}); resume the turn once it is connected again`
                ),
                Either.left
              )
              : Effect.map(prepareCall(loaded, messages, toolDefs.right), (call) => {
              prepared = call
              return Either.right(call)
            }),
          completeCall: (_turn, streamed, charge) =>
            Effect.map(prepared!.complete(streamed, charge), (result) => (result === Continue ? Option.none() : Option.some(result as TurnOutcome))),
          approve: (call) => approve(loaded, call),
          deny: (call) => deny(loaded, call),
          runTool: (call) =>
            Effect.map(runTool(loaded, call, router), (unavailable) => {
              daemonGone = daemonGone ?? unavailable
            }),
          // Each result is stored as it comes: the stored conversation is the turn's checkpoint.
          checkpoint: () => Effect.void,
          answered: (answer) =>
            commit(chatId, { turnStatus: "idle", events: [{ type: "turn:completed", messageId: answer?.messageId }] }).pipe(
              Effect.as(outcomeOf(chatId, "completed", { answer: answer === undefined ? undefined : textOf(answer) }))
            ),
          turnLimitReached: Effect.suspend(() =>
            failTurn(chatId, "turn_limit", `the agent made ${maxModelCalls} model calls in this turn without finishing; send a message to go on`)
          )
        })
      })
    )

  /** Starts the claimed turn in the background of this process (the claim is released when it rests). */
  const start = (chatId: string) =>
    Effect.gen(function* () {
      const fiber = yield* runTurn(chatId).pipe(
        Effect.catchAllDefect((defect) => failTurn(chatId, "internal", `the turn stopped on an internal error: ${Cause.pretty(Cause.die(defect))}`)),
        Effect.onInterrupt(() => settle(chatId, "the turn was cancelled").pipe(Effect.ignore)),
        Effect.ensuring(release(chatId)),
        Effect.forkIn(serviceScope)
      )
      running.set(chatId, fiber)
      return fiber
    })

  /** Runs the claimed turn here, or hands it to a worker when there is a turn queue; gives back its events and outcome. */
  const drive = (chatId: string, afterSeq: number): Effect.Effect<Turn, ChatStorageError> =>
    Option.match(turnQueue, {
      onNone: () => driveHere(chatId, afterSeq),
      onSome: (queue) =>
        queue.offer({ chatId, turn: afterSeq + 1, claimedBy: owner }).pipe(
          Effect.retry({ times: 3, schedule: Schedule.exponential("200 millis") }),
          Effect.catchAll((e) =>
            // Nothing will run the turn: it rests as interrupted (`resume` goes on) and the caller is told.
            settle(chatId, `the turn could not be handed to a worker: ${e.message}`).pipe(
              Effect.ignore,
              Effect.zipRight(release(chatId)),
              Effect.zipRight(Effect.fail(new ChatStorageError({ message: `cannot queue the turn of chat ${chatId}: ${e.message}` })))
            )
          ),
          Effect.as(followTurn(chatId, afterSeq))
        )
    })

  /** The turn's outcome as its rest event tells it. */
  const outcomeOfRest = (chatId: string, rest: ChatEvent | undefined): Effect.Effect<TurnOutcome, ChatStorageError> =>
    Effect.gen(function* () {
      switch (rest?.type) {
        case "turn:completed": {
          const messages = yield* loadMessages(chatId)
          const answer = messages.find((m) => m.messageId === rest.messageId)
          return outcomeOf(chatId, "completed", { answer: answer === undefined ? undefined : textOf(answer) })
        }
        case "turn:paused":
          return outcomeOf(chatId, "awaiting_approval", { pending: pendingOf(chatId, yield* loadMessages(chatId)) })
        case "turn:failed":
          return outcomeOf(chatId, "failed", { error: { code: rest.code, message: rest.message } })
        default:
          return outcomeOf(chatId, "interrupted")
      }
    })

  /** A turn another process runs: its events from the log (and the hub), its outcome from its rest event. */
  const followTurn = (chatId: string, afterSeq: number): Turn => {
    const events = follow(chatId, afterSeq).pipe(Stream.takeUntil(isRest))
    const outcome = events.pipe(
      Stream.runLast,
      Effect.flatMap((last) => outcomeOfRest(chatId, Option.getOrUndefined(last))),
      Effect.catchTag("UnknownChat", (e) => Effect.fail(new ChatStorageError({ message: e.message })))
    )
    return { chatId, afterSeq, events, outcome }
  }

  /**
   * A worker's `ChatTurn` job: takes the claim over from the process that handed the turn on, and
   * runs the turn until it rests. A claim that moved on (the turn was settled by a sweep, or the job
   * came again after its worker died) means the job is done.
   */
  const runTurnJob = (job: ChatTurnJob): Effect.Effect<void> =>
    Effect.gen(function* () {
      const claimed = yield* storage(store.claimTurn(job.chatId, { owner, expectedOwner: job.claimedBy, at: yield* clockNow }))
      if (!claimed) {
        return yield* Effect.logInfo(`chat ${job.chatId}: its turn (from seq ${job.turn}) was settled or taken over before this worker took it`)
      }
      const fiber = yield* start(job.chatId)
      yield* Fiber.await(fiber).pipe(Effect.onInterrupt(() => Fiber.interrupt(fiber)))
    }).pipe(Effect.catchAll((e) => Effect.logError(`chat ${job.chatId}: the turn job failed: ${e.message}`)))

  /** Starts the claimed turn in this process and hands back its events and outcome. */
  const driveHere = (chatId: string, afterSeq: number): Effect.Effect<Turn> =>
    Effect.gen(function* () {
      const fiber = yield* start(chatId)
      const outcome = Fiber.await(fiber).pipe(
        Effect.flatMap((exit) =>
          Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause) ? Effect.succeed(outcomeOf(chatId, "interrupted")) : exit
        )
      )
      const events = follow(chatId, afterSeq).pipe(
        Stream.takeUntil(isRest),
        // A turn that fails before its rest event is stored ends the stream with its error.
        Stream.interruptWhen(Effect.zipRight(outcome, Effect.never))
      )
      return { chatId, afterSeq, events, outcome }
    })

  const ensureUsable = (loaded: Loaded) =>
    loaded.worktree !== undefined && loaded.worktree.status === "removed"
      ? Effect.fail(WorktreeRemoved.of(loaded.record.chatId, loaded.worktree.path))
      : Effect.void

  /** A project bound to a dialed-in daemon takes turns only while that daemon is connected. */
  const ensureDaemon = (loaded: Loaded): Effect.Effect<void, DaemonNotConnected> => {
    const daemon = loaded.project.daemon
    if (daemon === undefined) return Effect.void
    return Effect.scoped(
      Effect.flatMap(tools.router({ workspace: loaded.workspace, daemon }), (router) => router.tools(loaded.settings.tools))
    ).pipe(
      Effect.asVoid,
      Effect.catchAll((e) =>
        // Other tool errors (a tool the daemon does not offer) fail the turn itself, as they do locally.
        e.code === "tool_unavailable" ? Effect.fail(DaemonNotConnected.of(loaded.record.chatId, daemon, e.message)) : Effect.void
      )
    )
  }

  /**
   * Claims the chat's turn and runs `start` on its stored messages, unless approvals are pending;
   * the claim is released if starting fails.
   */
  const withTurn = (
    chatId: string,
    start: (loaded: Effect.Effect.Success<ReturnType<typeof load>>, messages: Effect.Effect.Success<ReturnType<typeof loadMessages>>) => Effect.Effect<Turn, ChatError>
  ): Effect.Effect<Turn, ChatError> =>
    Effect.gen(function* () {
      const loaded = yield* load(chatId)
      yield* ensureUsable(loaded)
      yield* ensureDaemon(loaded)
      yield* claim(loaded.record)
      return yield* Effect.gen(function* () {
        const messages = yield* loadMessages(chatId)
        const pending = pendingOf(chatId, messages)
        if (pending.length > 0) return yield* ApprovalRequired.of(chatId, pending)
        return yield* start(loaded, messages)
      }).pipe(Effect.onError(() => release(chatId)))
    })

  const send = (chatId: string, text: string): Effect.Effect<Turn, ChatError> =>
    text.trim() === ""
      ? Effect.fail(new InvalidChatInput({ message: "the message is empty" }))
      : withTurn(chatId, (loaded, messages) =>
      Effect.gen(function* () {
        const timestamp = now()
        const message = freshMessage(chatId, (messages.at(-1)?.seq ?? -1) + 1, "user", "completed", timestamp)
        const started = yield* commit(chatId, {
          turnStatus: "running",
          title: loaded.record.title === "" ? titleOf(text) : undefined,
          messages: [message],
          blocks: [
            {
              blockId: crypto.randomUUID(),
              messageId: message.messageId,
              position: 0,
              kind: "text",
              callId: undefined,
              status: "done",
              content: { text },
              createdAt: timestamp
            }
          ],
          events: [{ type: "turn:started", turnId: crypto.randomUUID(), messageId: message.messageId, text }]
        })
        return yield* drive(chatId, started[0]!.seq - 1)
      })
    )

  const resume = (chatId: string): Effect.Effect<Turn, ChatError> =>
    withTurn(chatId, (_loaded, messages) =>
      Effect.gen(function* () {
        const step = nextStep(messages)
        if (step._tag === "Done") {
          return yield* new NothingToResume({
            chatId,
            message: `chat ${chatId} has nothing to continue: ${step.answer === undefined ? "it has no messages" : "its last answer is complete"}; send a message`
          })
        }
        const started = yield* commit(chatId, { turnStatus: "running", events: [{ type: "turn:resumed", turnId: crypto.randomUUID() }] })
        return yield* drive(chatId, started[0]!.seq - 1)
      })
    )

  /** Stops the chat's turn if this process runs it. */
  const cancelHere = (chatId: string): Effect.Effect<boolean> =>
    Effect.suspend(() => {
      const fiber = running.get(chatId)
      if (fiber === undefined || fiber.unsafePoll() !== null) {
        running.delete(chatId)
        return Effect.succeed(false)
      }
      return Effect.as(Fiber.interrupt(fiber), true)
    })

  /**
   * Stops the chat's turn: here if this process runs it; else, with `ChatCancels`, the process
   * whose claim holds the running turn is asked to (true once asked).
   */
  const cancel = (chatId: string): Effect.Effect<boolean> =>
    Effect.flatMap(cancelHere(chatId), (stopped) =>
      stopped || Option.isNone(cancels)
        ? Effect.succeed(stopped)
        : store.getChat(chatId).pipe(
          Effect.map(Option.filter((record) => record.turnStatus === "running" && record.turnOwner !== undefined && record.turnOwner !== owner)),
          Effect.flatMap(Option.match({ onNone: () => Effect.succeed(false), onSome: () => Effect.as(cancels.value.request(chatId), true) })),
          Effect.orElseSucceed(() => false)
        )
    )

  /** With `ChatCancels`: stops the turns this process runs when another process asks, for the service's life. */
  const listen: Effect.Effect<void> = Option.match(cancels, {
    onNone: () => Effect.void,
    onSome: (c) =>
      Effect.asVoid(
        Effect.forkIn(
          Effect.scoped(Effect.flatMap(c.requests, (requests) => Stream.runForEach(requests, (chatId) => cancelHere(chatId)))),
          serviceScope
        )
      )
  })

  return { send, resume, cancel, runTurnJob, listen }
}

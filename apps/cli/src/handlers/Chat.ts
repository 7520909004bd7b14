/**
 * What the `relavium chat` commands do (their flags are in commands/Chat.ts): on the local chat
 * service of runtime/LocalChat.ts; exit codes of chat errors are in ExitCodes.ts.
 */
import { Console, Effect, Option, Stream } from "effect"
import { writeFileSync } from "node:fs"
import { ChatStore, KeyStore } from "@relavium/ports"
import { Cost } from "@relavium/domain"
import { type ApprovalMode, ChatService, ChatSettings, isRest, type TurnOutcome } from "@relavium/chat"
import type { ChatEvent, ChatSummary, Turn } from "@relavium/chat"
import { KeyStores } from "@relavium/keys"
import { Providers } from "@relavium/llm"
import * as ChatRepl from "../ChatRepl.js"
import { chatErrors, endingOf, ExitCode } from "../ExitCodes.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"
import { type LocalFlags, toUsageProblem, withStore } from "../runtime/Local.js"
import { withChatService } from "../runtime/LocalChat.js"
import type { ChatArgs } from "../commands/Chat.js"

// ---------------------------------------------------------------------------
// Running on the local chat service

/** How many model calls the chat has made (its answers, finished or not); 0 for an unknown chat. */
const modelCallsOf = (chatId: string, dataDir: string | undefined) =>
  withStore(
    Effect.flatMap(ChatStore, (store) => store.messages(chatId)).pipe(Effect.map((messages) => messages.filter((m) => m.role === "assistant").length)),
    dataDir
  ).pipe(Effect.orElseSucceed(() => 0))

/** The most recently used chat of the data directory, if any. */
const mostRecentChat = (dataDir: string | undefined) =>
  withStore(
    Effect.flatMap(ChatStore, (store) => store.listChats({ limit: 1 })).pipe(Effect.map((chats) => Option.fromNullable(chats[0]?.chatId))),
    dataDir
  ).pipe(Effect.orElseSucceed(() => Option.none<string>()))

/**
 * Runs `effect` on the local chat service (with a cassette, call N of the chat replays `calls[N]`,
 * counting the `skipCalls` made in earlier processes); errors end the command as ExitCodes.ts says.
 */
const withChat = <A, E, R>(effect: Effect.Effect<A, E, R>, options: LocalFlags & { readonly json: boolean }) =>
  withChatService(effect, options).pipe(
    Effect.catchAll((e: unknown) => {
      if (isUsageProblem(e)) return Effect.fail(e)
      const ending = endingOf(chatErrors, e)
      const message = String((e as { readonly message?: unknown }).message)
      if (ending?.exit === ExitCode.paused) {
        return Effect.sync(() => {
          process.stderr.write(options.json ? `${JSON.stringify({ type: "error", code: ending.code, message })}\n` : `relavium: ${message}\n`)
          process.exitCode = ending.exit
        })
      }
      if (ending !== undefined) return Effect.fail(new UsageProblem(message, ending.code))
      const problem = toUsageProblem(e)
      return isUsageProblem(problem) ? Effect.fail(problem) : Effect.die(e)
    }),
    Effect.catchIf(isUsageProblem, report(options.json))
  )

// ---------------------------------------------------------------------------
// Printing

const usd = (microcents: number) => Cost.formatUsd(microcents)

const firstLine = (text: string, max = 160) => {
  const line = text.split("\n").find((l) => l.trim() !== "") ?? ""
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

/** Renders a turn's events as text: the answer as it streams, one line per tool call, result and patch. */
const makeRenderer = (chatId: string) => {
  let atLineStart = true
  let cost: { model: string; turn: number; chat: number } | undefined
  const line = (text: string) => {
    const out = `${atLineStart ? "" : "\n"}${text}\n`
    atLineStart = true
    return out
  }
  return (event: ChatEvent): string => {
    switch (event.type) {
      case "message:delta":
        if (event.text === "") return ""
        atLineStart = event.text.endsWith("\n")
        return event.text
      case "tool:call":
        return line(`▸ ${event.name}${event.approval === "required" ? " (needs approval)" : ""}: ${firstLine(JSON.stringify(event.args))}`)
      case "tool:result":
        return line(`  ${event.outcome === "ok" ? "✓" : "✗"} ${event.outcome}${event.output.trim() === "" ? "" : `: ${firstLine(event.output)}`}`)
      case "file:patch":
        return line(`  ✎ ${event.operation} ${event.path}`)
      case "cost:updated":
        cost = { model: event.model, turn: (cost?.turn ?? 0) + event.costMicrocents, chat: event.chatCostMicrocents }
        return ""
      case "turn:paused":
        return line(
          [
            `⏸ waiting for approval of ${event.pending.length === 1 ? "a tool call" : `${event.pending.length} tool calls`}:`,
            ...event.pending.map((p) => `  relavium chat approve ${chatId} ${p.toolCallId} --allow|--deny   (${p.name})`),
            `then continue: relavium chat resume ${chatId}`
          ].join("\n")
        )
      case "turn:failed":
        return line(`✗ failed: ${event.code}: ${event.message}`)
      case "turn:interrupted":
        return line(`⚠ interrupted: ${event.reason}; continue with: relavium chat resume ${chatId}`)
      case "turn:completed":
        return line(cost === undefined ? "" : `[${cost.model} · ${usd(cost.turn)} · chat total ${usd(cost.chat)}]`)
      default:
        return ""
    }
  }
}

const exitCodeOf = (outcome: TurnOutcome): number =>
  outcome.status === "completed" ? ExitCode.ok : outcome.status === "awaiting_approval" ? ExitCode.paused : ExitCode.failed

/** Prints the turn's events until it rests and returns the exit code. */
const printTurn = (turn: Turn, json: boolean) =>
  Effect.gen(function* () {
    const render = makeRenderer(turn.chatId)
    yield* turn.events.pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          process.stdout.write(json ? `${JSON.stringify(event)}\n` : render(event))
        })
      )
    )
    return exitCodeOf(yield* turn.outcome)
  })

/** Before a live model is called: its provider has a key, or the user is told how to set one. */
const checkKey = (provider: string, cassette: string | undefined) =>
  Effect.gen(function* () {
    if (cassette !== undefined || Providers.builtinProviders[provider]?.keyRequired === false) return
    const keys = yield* KeyStore
    const key = yield* keys.get(provider).pipe(Effect.orElseSucceed(() => Option.none()))
    if (Option.isNone(key)) {
      return yield* Effect.fail(new UsageProblem(`no API key for ${provider}: ${KeyStores.howToSet(provider)} — or pass --cassette FILE to replay a recorded model`, "provider_auth"))
    }
  })

const summaryLine = (c: ChatSummary) =>
  [
    `${c.chatId}  ${c.turnStatus}${c.pendingApprovals > 0 ? ` (${c.pendingApprovals} waiting for approval)` : ""}  ${c.provider}/${c.model}  ${c.approvalMode}  ${usd(c.costMicrocents)}`,
    `  ${c.title === "" ? "(no messages yet)" : c.title}`,
    `  ${c.projectPath}${c.worktree !== undefined ? `  worktree ${c.worktree.path} (${c.worktree.branch}${c.worktree.status === "removed" ? ", removed" : ""})` : ""}`
  ].join("\n")

// ---------------------------------------------------------------------------
// Commands (flags in commands/Chat.ts)

export const list = ({ dataDir, json, limit }: ChatArgs["list"]) =>
    withChat(
      Effect.gen(function* () {
        const chat = yield* ChatService
        const chats = yield* chat.list({ limit })
        if (json) return yield* Console.log(JSON.stringify(chats))
        if (chats.length === 0) return yield* Console.log("no chats yet: relavium chat send --project DIR \"message\"")
        for (const c of chats) yield* Console.log(summaryLine(c))
      }),
      { dataDir: Option.getOrUndefined(dataDir), json }
    )

export const exportCommand = ({ chatId, dataDir, format, output }: ChatArgs["exportCommand"]) =>
    withChat(
      Effect.gen(function* () {
        const chat = yield* ChatService
        const text = format === "yaml" ? yield* chat.exportWorkflowYaml(chatId) : yield* chat.exportMarkdown(chatId)
        if (Option.isSome(output)) {
          yield* Effect.try({
            try: () => writeFileSync(output.value, text),
            catch: (e) => new UsageProblem(`cannot write ${output.value}: ${String(e)}`)
          })
          return yield* Console.error(`wrote ${output.value}`)
        }
        process.stdout.write(text)
      }),
      { dataDir: Option.getOrUndefined(dataDir), json: false }
    )

export const send = ({ approvalMode, cassette, dataDir, first, json, message, model, project, tokenDelayMs, worktree }: ChatArgs["send"]) => {
    const cassetteFile = Option.getOrUndefined(cassette)
    const skip = cassetteFile === undefined || Option.isSome(project) ? Effect.succeed(0) : modelCallsOf(first, Option.getOrUndefined(dataDir))
    return Effect.flatMap(skip, (cassetteSkip) => withChat(
      Effect.gen(function* () {
        const chat = yield* ChatService
        yield* chat.recover()
        const mode = Option.getOrUndefined(approvalMode)
        let chatId: string
        let text: string
        let afterSeq: number | undefined
        if (Option.isSome(project)) {
          if (Option.isSome(message)) return yield* Effect.fail(new UsageProblem("with --project, give only the message: relavium chat send --project DIR \"message\""))
          text = first
          const created = yield* chat.createProject(project.value).pipe(
            Effect.flatMap((p) =>
              chat.createChat({ projectId: p.projectId, worktree, model: Option.getOrUndefined(model), approvalMode: mode })
            )
          )
          chatId = created.chatId
          afterSeq = -1
          if (!json) {
            yield* Console.log(
              `chat ${chatId} · ${created.provider}/${created.model} · ${created.approvalMode}${created.worktree !== undefined ? ` · worktree ${created.worktree.path} (${created.worktree.branch})` : ""}`
            )
          }
        } else {
          if (Option.isNone(message)) return yield* Effect.fail(new UsageProblem("say what to send: relavium chat send CHAT \"message\" (or --project DIR \"message\" for a new chat)"))
          if (worktree || Option.isSome(model)) return yield* Effect.fail(new UsageProblem("--worktree and --model apply to a new chat (--project DIR)"))
          chatId = first
          text = message.value
          if (mode !== undefined) yield* chat.setApprovalMode(chatId, mode)
        }
        const detail = yield* chat.get(chatId)
        yield* checkKey(detail.provider, cassetteFile)
        const turn = yield* chat.send(chatId, text)
        // A new chat's stream starts at its creation (the `chat:created` event names its id).
        const shown = afterSeq === undefined
          ? turn
          : { ...turn, events: chat.events(chatId, afterSeq).pipe(Stream.takeUntil(isRest), Stream.interruptWhen(Effect.zipRight(turn.outcome, Effect.never))) }
        process.exitCode = yield* printTurn(shown, json)
      }),
      { dataDir: Option.getOrUndefined(dataDir), cassette: cassetteFile, skipCalls: cassetteSkip, tokenDelayMs, json }
    ))
  }

export const approve = ({ allow, callId, chatId, dataDir, deny, json }: ChatArgs["approve"]) =>
    withChat(
      Effect.gen(function* () {
        if (allow === deny) return yield* Effect.fail(new UsageProblem("say exactly one of --allow or --deny"))
        const chat = yield* ChatService
        yield* chat.recover()
        const decision = allow ? ("allow" as const) : ("deny" as const)
        const { pending } = yield* chat.approve(chatId, callId, decision, { decidedBy: "cli" })
        if (json) return yield* Console.log(JSON.stringify({ chatId, toolCallId: callId, decision, pending }))
        yield* Console.log(`${decision === "allow" ? "allowed" : "denied"} ${callId} in chat ${chatId}`)
        if (pending.length > 0) {
          yield* Console.log(`still waiting:\n${pending.map((p) => `  relavium chat approve ${chatId} ${p.toolCallId} --allow|--deny   (${p.preview})`).join("\n")}`)
        } else {
          yield* Console.log(`continue: relavium chat resume ${chatId}`)
        }
      }),
      { dataDir: Option.getOrUndefined(dataDir), json }
    )

export const resume = ({ cassette, chatId: chatIdArg, dataDir, json, tokenDelayMs }: ChatArgs["resume"]) => {
    const cassetteFile = Option.getOrUndefined(cassette)
    if (Option.isNone(chatIdArg)) {
      if (json) return report(json)(new UsageProblem("--json needs the chat's id: relavium chat resume CHAT --json"))
      return Effect.flatMap(mostRecentChat(Option.getOrUndefined(dataDir)), (recent) =>
        Option.isNone(recent)
          ? report(false)(new UsageProblem("no chats yet: start one with relavium chat --project DIR"))
          : interactive({ chatId: recent.value, cassette: cassetteFile, tokenDelayMs, dataDir: Option.getOrUndefined(dataDir) })
      )
    }
    const chatId = chatIdArg.value
    const skip = cassetteFile === undefined ? Effect.succeed(0) : modelCallsOf(chatId, Option.getOrUndefined(dataDir))
    return Effect.flatMap(skip, (cassetteSkip) => withChat(
      Effect.gen(function* () {
        const chat = yield* ChatService
        const recovered = yield* chat.recover()
        const mine = recovered.chats.find((c) => c.chatId === chatId)
        if (mine !== undefined && !json) {
          yield* Console.log(
            `recovered chat ${chatId}: ${mine.interruptedMessages} interrupted answer${mine.interruptedMessages === 1 ? "" : "s"} kept, ${mine.interruptedToolCalls} interrupted tool call${mine.interruptedToolCalls === 1 ? "" : "s"}`
          )
        }
        const detail = yield* chat.get(chatId)
        yield* checkKey(detail.provider, cassetteFile)
        yield* chat.resume(chatId).pipe(
          Effect.flatMap((turn) => printTurn(turn, json)),
          Effect.flatMap((code) => Effect.sync(() => void (process.exitCode = code))),
          Effect.catchTag("NothingToResume", (e) =>
            Console.log(json ? JSON.stringify({ chatId, resumed: false, message: e.message }) : e.message)
          )
        )
      }),
      { dataDir: Option.getOrUndefined(dataDir), cassette: cassetteFile, skipCalls: cassetteSkip, tokenDelayMs, json }
    ))
  }

// ---------------------------------------------------------------------------
// Interactive

interface InteractiveOptions {
  /** Continue this chat; else a new one in `project`. */
  readonly chatId?: string | undefined
  readonly project?: string | undefined
  readonly worktree?: boolean | undefined
  readonly model?: string | undefined
  readonly approvalMode?: ApprovalMode | undefined
  readonly cassette: string | undefined
  readonly tokenDelayMs: number
  readonly dataDir: string | undefined
}

/** The terminal conversation with a new chat, or a chat continued (chats interrupted by a crash are recovered first). */
const interactive = (options: InteractiveOptions) => {
  const existing = options.chatId
  const skip = options.cassette === undefined || existing === undefined ? Effect.succeed(0) : modelCallsOf(existing, options.dataDir)
  return Effect.flatMap(skip, (cassetteSkip) =>
    withChat(
      Effect.scoped(
        Effect.gen(function* () {
          const chat = yield* ChatService
          const recovered = yield* chat.recover()
          let chatId: string
          if (existing !== undefined) {
            if (options.project !== undefined || options.worktree === true || options.model !== undefined) {
              return yield* Effect.fail(new UsageProblem("--project, --worktree and --model apply to a new chat; give either them or a chat's id"))
            }
            chatId = existing
            const mine = recovered.chats.find((c) => c.chatId === chatId)
            if (mine !== undefined) {
              yield* Console.log(
                `recovered chat ${chatId}: ${mine.interruptedMessages} interrupted answer${mine.interruptedMessages === 1 ? "" : "s"} kept, ${mine.interruptedToolCalls} interrupted tool call${mine.interruptedToolCalls === 1 ? "" : "s"}`
              )
            }
            if (options.approvalMode !== undefined) yield* chat.setApprovalMode(chatId, options.approvalMode)
            yield* checkKey((yield* chat.get(chatId)).provider, options.cassette)
          } else {
            // The key is checked before anything is created, so a missing key leaves no empty chat behind.
            const model = ChatSettings.parseModel(options.model ?? ChatSettings.defaultModel)
            if (model._tag === "Right") yield* checkKey(model.right.provider, options.cassette)
            const project = yield* chat.createProject(options.project ?? process.cwd())
            const created = yield* chat.createChat({
              projectId: project.projectId,
              worktree: options.worktree,
              model: options.model,
              approvalMode: options.approvalMode
            })
            chatId = created.chatId
          }
          yield* ChatRepl.run(chatId)
        })
      ),
      { dataDir: options.dataDir, cassette: options.cassette, skipCalls: cassetteSkip, tokenDelayMs: options.tokenDelayMs, json: false }
    )
  )
}

export const chat = ({ approvalMode, cassette, chatId, dataDir, model, project, tokenDelayMs, worktree }: ChatArgs["chat"]) =>
    interactive({
      chatId: Option.getOrUndefined(chatId),
      project: Option.getOrUndefined(project),
      worktree,
      model: Option.getOrUndefined(model),
      approvalMode: Option.getOrUndefined(approvalMode),
      cassette: Option.getOrUndefined(cassette),
      tokenDelayMs,
      dataDir: Option.getOrUndefined(dataDir)
    })

/**
 * The interactive `relavium chat`: a line-based terminal conversation with one
 * chat. Each line the user types is sent; the answer streams to the screen as
 * it arrives, with one line per tool call and a bounded view of each tool's
 * output. When tool calls wait for approval it asks `allow? [y/N]` for each,
 * inline (fail-closed: only `y` or `yes` allows), and the turn goes on.
 *
 * Keys: Ctrl-C stops a running turn (what arrived is kept; `/resume` goes
 * on), Ctrl-D or `/exit` quits. Lines typed while the agent works are kept
 * and read in order, so piped input (`printf 'fix it\ny\n' | relavium chat`)
 * works the same way; without a terminal, Ctrl-C is the usual signal and ends
 * the program.
 */
import { Effect, Fiber, Option, Queue, type Scope, Stream } from "effect"
import * as Readline from "node:readline"
import {
  type ChatError,
  type ChatEvent,
  ChatService,
  ChatSettings,
  type ChatSummary,
  Conversation,
  type PendingApproval,
  previewOf,
  type Turn,
  type TurnOutcome
} from "@relavium/chat"
import { Cost } from "@relavium/domain"

/** How much of a tool's output is shown: the model sees all of it (bounded by the service). */
const OUTPUT_LINES = 12
const OUTPUT_LINE_CHARS = 200

type Input = { readonly _tag: "Line"; readonly text: string } | { readonly _tag: "End" } | { readonly _tag: "Interrupt" }

const help = [
  "  type a message and press Enter to send it",
  "  /mode ask|accept-edits|auto   which tool calls wait for your approval",
  "  /approve                      decide the tool calls that wait",
  "  /resume                       continue a turn that was interrupted or failed",
  "  /exit (or Ctrl-D)             quit; Ctrl-C stops a running turn"
].join("\n")

const clip = (line: string, max: number) => (line.length > max ? `${line.slice(0, max - 1)}…` : line)

/** A tool's output as the user sees it: at most {@link OUTPUT_LINES} lines, each cut at {@link OUTPUT_LINE_CHARS}. */
export const boundedOutput = (output: string): ReadonlyArray<string> => {
  const lines = output.replace(/\s+$/, "").split("\n")
  if (lines.length === 1 && lines[0] === "") return []
  const shown = lines.slice(0, OUTPUT_LINES).map((l) => `  │ ${clip(l, OUTPUT_LINE_CHARS)}`)
  return lines.length > OUTPUT_LINES ? [...shown, `  │ … ${lines.length - OUTPUT_LINES} more lines`] : shown
}

/** The screen: text written so far ends mid-line or not (a prompt must start on its own line). */
const makeScreen = (output: NodeJS.WriteStream) => {
  let atLineStart = true
  const write = (text: string) => {
    if (text === "") return
    output.write(text)
    atLineStart = text.endsWith("\n")
  }
  return {
    write,
    /** Writes `text` as whole lines, after ending the current one. */
    line: (text: string) => write(`${atLineStart ? "" : "\n"}${text}\n`),
    endLine: () => {
      if (!atLineStart) write("\n")
    }
  }
}

type Screen = ReturnType<typeof makeScreen>

/** Renders one turn's events: streamed text as it arrives, a line per tool call, result and patch. */
const makeRenderer = (screen: Screen) => {
  let cost: { model: string; turn: number; chat: number } | undefined
  return (event: ChatEvent): void => {
    switch (event.type) {
      case "message:delta":
        return screen.write(event.text)
      case "tool:call":
        return screen.line(`▸ ${previewOf(event.name, event.args)}${event.approval === "required" ? "  (needs your approval)" : ""}`)
      case "tool:result": {
        const mark = event.outcome === "ok" ? "✓" : "✗"
        return screen.line([`  ${mark} ${event.name}: ${event.outcome}`, ...boundedOutput(event.output)].join("\n"))
      }
      case "file:patch":
        return screen.line(`  ✎ ${event.operation} ${event.path}`)
      case "cost:updated":
        cost = { model: event.model, turn: (cost?.turn ?? 0) + event.costMicrocents, chat: event.chatCostMicrocents }
        return
      case "turn:failed":
        return screen.line(`✗ failed: ${event.code}: ${event.message}\n  /resume tries again`)
      case "turn:interrupted":
        return screen.line(`⚠ interrupted: ${event.reason}\n  /resume continues the turn`)
      case "turn:completed":
        return cost === undefined ? screen.endLine() : screen.line(`[${cost.model} · ${Cost.formatUsd(cost.turn)} · chat total ${Cost.formatUsd(cost.chat)}]`)
      default:
        return
    }
  }
}

/** The header printed when the conversation starts. */
const headerOf = (chat: ChatSummary) =>
  [
    `chat ${chat.chatId} · ${chat.provider}/${chat.model} · ${chat.approvalMode}`,
    `  working in ${chat.workspace}${chat.worktree !== undefined ? ` (worktree, branch ${chat.worktree.branch})` : ""}`,
    "  type a message; /help for commands, /exit or Ctrl-D to quit"
  ].join("\n")

/**
 * Talks with `chatId` on the terminal (or whatever `input` is) until the user quits. Chat errors
 * are shown and the conversation goes on; only a chat that cannot be read at the start fails.
 */
export const run = (
  chatId: string,
  options: { readonly input?: NodeJS.ReadStream | undefined; readonly output?: NodeJS.WriteStream | undefined } = {}
): Effect.Effect<void, ChatError, ChatService | Scope.Scope> =>
  Effect.gen(function* () {
    const chats = yield* ChatService
    const input = options.input ?? process.stdin
    const output = options.output ?? process.stdout
    const terminal = input.isTTY === true && output.isTTY === true
    const screen = makeScreen(output)
    const lines = yield* Queue.unbounded<Input>()
    const interrupts = yield* Queue.unbounded<void>()
    /** What Ctrl-C means right now. */
    let waitingFor: "message" | "turn" | "answer" = "message"

    const rl = yield* Effect.acquireRelease(
      Effect.sync(() => Readline.createInterface({ input, output, terminal, historySize: terminal ? 100 : 0 })),
      (rl) => Effect.sync(() => rl.close())
    )
    rl.on("line", (text) => Queue.unsafeOffer(lines, { _tag: "Line", text }))
    rl.on("close", () => Queue.unsafeOffer(lines, { _tag: "End" }))
    rl.on("SIGINT", () => {
      switch (waitingFor) {
        case "turn":
          return void Queue.unsafeOffer(interrupts, undefined)
        case "answer":
          return void Queue.unsafeOffer(lines, { _tag: "Interrupt" })
        case "message":
          // Ctrl-C at the prompt drops what was typed; quitting is Ctrl-D or /exit.
          rl.write(null, { ctrl: true, name: "u" })
          screen.write("^C  (/exit or Ctrl-D to quit)\n")
          rl.prompt()
      }
    })

    /** The next line (or the end of input); `prompt` is shown first, and echoed with the line without a terminal. */
    const read = (prompt: string) =>
      Effect.gen(function* () {
        screen.endLine()
        rl.setPrompt(prompt)
        if (terminal) rl.prompt()
        const next = yield* Queue.take(lines)
        // Ctrl-D leaves the cursor after the prompt: what follows starts on a line of its own.
        if (terminal && next._tag === "End") screen.write("\n")
        if (!terminal) screen.write(next._tag === "Line" ? `${prompt}${next.text}\n` : prompt === "> " ? "" : `${prompt}\n`)
        return next
      })

    const showError = (e: ChatError) => Effect.sync(() => screen.line(`✗ ${e.message}`))

    /** Shows the turn until it rests; Ctrl-C meanwhile stops it. */
    const follow = (turn: Turn, render: (event: ChatEvent) => void) =>
      Effect.gen(function* () {
        yield* Queue.takeAll(interrupts)
        waitingFor = "turn"
        const canceller = yield* Queue.take(interrupts).pipe(
          Effect.tap(() => Effect.sync(() => screen.line("^C stopping the turn…"))),
          Effect.zipRight(chats.cancel(chatId)),
          Effect.forever,
          Effect.fork
        )
        const shown = yield* turn.events.pipe(
          Stream.runForEach((event) => Effect.sync(() => render(event))),
          Effect.zipRight(turn.outcome),
          Effect.either
        )
        yield* Fiber.interrupt(canceller)
        waitingFor = "message"
        screen.endLine()
        if (shown._tag === "Left") {
          yield* showError(shown.left)
          return Option.none<TurnOutcome>()
        }
        return Option.some(shown.right)
      })

    /**
     * Asks about each waiting call; true when all were decided. Anything but y/yes denies.
     * Ctrl-C or the end of input leaves the rest undecided (the chat keeps waiting).
     */
    const decide = (pending: ReadonlyArray<PendingApproval>) =>
      Effect.gen(function* () {
        for (const call of pending) {
          screen.line(`? ${call.preview}`)
          waitingFor = "answer"
          const answer = yield* read("  allow? [y/N] ")
          waitingFor = "message"
          if (answer._tag !== "Line") {
            screen.line(`  left undecided: the chat waits for a decision (/approve asks again)`)
            // The end of input still ends the conversation once this turn is put aside.
            if (answer._tag === "End") yield* Queue.offer(lines, answer)
            return false
          }
          const decision = /^\s*(y|yes)\s*$/i.test(answer.text) ? ("allow" as const) : ("deny" as const)
          const decided = yield* chats.approve(chatId, call.toolCallId, decision, { decidedBy: "cli" }).pipe(Effect.either)
          if (decided._tag === "Left") {
            yield* showError(decided.left)
            return false
          }
          screen.line(decision === "allow" ? "  allowed" : "  denied: it will not run, the agent is told")
        }
        return true
      })

    /** Runs a turn (sent or resumed) until it rests, asking for approvals and continuing after them. */
    const converse = (start: Effect.Effect<Turn, ChatError>) =>
      Effect.gen(function* () {
        const render = makeRenderer(screen)
        let next: Effect.Effect<Turn, ChatError> | undefined = start
        while (next !== undefined) {
          const turn = yield* next.pipe(Effect.either)
          next = undefined
          if (turn._tag === "Left") {
            if (turn.left._tag === "ApprovalRequired") {
              const waiting = yield* chats.pendingApprovals(chatId).pipe(Effect.orElseSucceed(() => []))
              screen.line(`the chat waits for a decision on ${waiting.length === 1 ? "a tool call" : `${waiting.length} tool calls`} first:`)
              if (yield* decide(waiting)) next = chats.resume(chatId)
              continue
            }
            yield* showError(turn.left)
            continue
          }
          const outcome = yield* follow(turn.right, render)
          if (Option.isSome(outcome) && outcome.value.status === "awaiting_approval" && (yield* decide(outcome.value.pending))) {
            next = chats.resume(chatId)
          }
        }
      })

    /** A slash command; true to quit. */
    const command = (text: string) =>
      Effect.gen(function* () {
        const [name, ...args] = text.slice(1).trim().split(/\s+/)
        switch (name) {
          case "exit":
          case "quit":
            return true
          case "help":
            screen.line(help)
            return false
          case "mode": {
            const mode = ChatSettings.parseApprovalMode(args[0] ?? "")
            if (mode._tag === "Left") {
              const current = yield* chats.get(chatId).pipe(Effect.map((c) => c.approvalMode), Effect.option)
              screen.line(`${args[0] === undefined ? "" : `${mode.left.message}; `}usage: /mode ask|accept-edits|auto${Option.isSome(current) ? ` (now: ${current.value})` : ""}`)
              return false
            }
            yield* chats.setApprovalMode(chatId, mode.right).pipe(
              Effect.matchEffect({
                onFailure: showError,
                onSuccess: () => Effect.sync(() => screen.line(`approval mode: ${mode.right}`))
              })
            )
            return false
          }
          case "approve": {
            const waiting = yield* chats.pendingApprovals(chatId).pipe(Effect.either)
            if (waiting._tag === "Left") yield* showError(waiting.left)
            else if (waiting.right.length === 0) screen.line("no tool call waits for a decision")
            else if (yield* decide(waiting.right)) yield* converse(chats.resume(chatId))
            return false
          }
          case "resume":
            yield* converse(chats.resume(chatId))
            return false
          default:
            screen.line(`unknown command /${name ?? ""}; /help lists the commands`)
            return false
        }
      })

    // The start: where the chat stands, and a decision it waits for.
    const detail = yield* chats.get(chatId)
    screen.line(headerOf(detail))
    const said = detail.messages.filter((m) => m.role !== "tool")
    if (said.length > 0) {
      screen.line(`  ${said.length} message${said.length === 1 ? "" : "s"} so far${detail.title === "" ? "" : `: ${detail.title}`}`)
      const last = said.at(-1)!
      const text = Conversation.textOf(last).trim()
      if (text !== "") screen.line(`  last ${last.role === "user" ? "from you" : "answer"}: ${clip(text.split("\n")[0]!, 160)}`)
    }
    if (detail.pending.length > 0) {
      screen.line(`the chat waits for a decision on ${detail.pending.length === 1 ? "a tool call" : `${detail.pending.length} tool calls`}:`)
      if (yield* decide(detail.pending)) yield* converse(chats.resume(chatId))
    } else if (detail.turnStatus === "interrupted" || detail.turnStatus === "failed") {
      screen.line(`  its last turn ${detail.turnStatus === "failed" ? "failed" : "was interrupted"}: /resume continues it`)
    }

    while (true) {
      const next = yield* read("> ")
      if (next._tag === "End") break
      if (next._tag === "Interrupt") continue
      const text = next.text.trim()
      if (text === "") continue
      if (/^\/[a-z-]*(\s|$)/i.test(text)) {
        if (yield* command(text)) break
        continue
      }
      yield* converse(chats.send(chatId, next.text))
    }
    screen.endLine()
    screen.write(`chat ${chatId} is saved; continue it with: relavium chat ${chatId}\n`)
  })

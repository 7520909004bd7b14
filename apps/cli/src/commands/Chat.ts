/**
 * `relavium chat [CHAT]`: the interactive coding-agent chat in the terminal
 * (ChatRepl.ts) — a new chat in `--project DIR` (default: the current
 * directory), or the chat CHAT continued; `relavium chat resume` without an id
 * reopens the most recent chat.
 *
 * `relavium chat list|send|approve|resume|export`: the same chats
 * without a terminal UI. Chats live in the local database (the data
 * directory's SQLite file), worktrees under `<data dir>/worktrees`, and the
 * tools daemon runs in this process, confined to the chat's directory.
 *
 * `send` and `resume` stream the answer and stop when the turn rests: exit 0
 * when it answered, 3 when a tool call waits for approval (decide with
 * `chat approve`, then `chat resume`), 1 when it failed or was interrupted,
 * 2 for bad input. Both first recover chats whose process died mid-turn.
 *
 * With `--cassette FILE`, call N of the chat replays `calls[N]` of the file,
 * counting the calls made by earlier `send`/`resume` processes of the chat.
 *
 * The chat service these commands run on is composed in runtime/LocalChat.ts
 * (`chatLayer`); exit codes of chat errors are in ExitCodes.ts.
 */
import { Args, Command, Options } from "@effect/cli"
import { ChatSettings } from "@relavium/chat"
import { lazy } from "../Lazy.js"
import { cassetteOption, dataDirOption, tokenDelayOption } from "./Flags.js"

const jsonOption = Options.boolean("json").pipe(Options.withDescription("print chat events (or the result) as JSON, one object per line"))
const chatArg = Args.text({ name: "chat" }).pipe(Args.withDescription("the chat's id (see `relavium chat list`)"))

const listConfig = {
  json: jsonOption,
  dataDir: dataDirOption,
  limit: Options.integer("limit").pipe(Options.withDefault(20), Options.withDescription("show at most this many chats, most recent first"))
}

const list = Command.make("list", listConfig, lazy(() => import("../handlers/Chat.js"), (m) => m.list)).pipe(Command.withDescription("List chats, most recent first"))

const exportCommandConfig = {
  chatId: chatArg,
  format: Options.choice("format", ["markdown", "yaml"]).pipe(Options.withDefault("markdown" as const), Options.withDescription("markdown (for people) or yaml (a workflow that reproduces the chat)")),
  output: Options.file("output").pipe(Options.withAlias("o"), Options.optional, Options.withDescription("write to this file instead of stdout")),
  dataDir: dataDirOption
}

const exportCommand = Command.make("export", exportCommandConfig, lazy(() => import("../handlers/Chat.js"), (m) => m.exportCommand)).pipe(Command.withDescription("Export a chat as Markdown, or as a workflow YAML that reproduces it"))

const approvalModeOption = Options.choice("approval-mode", ["ask", "accept-edits", "auto"]).pipe(
  Options.optional,
  Options.withDescription("ask (default: every change waits for approval), accept-edits (file edits run, commands ask) or auto (everything runs)")
)

const sendConfig = {
  first: Args.text({ name: "chat" }).pipe(Args.withDescription("the chat's id, or (with --project) the message")),
  message: Args.text({ name: "message" }).pipe(Args.optional, Args.withDescription("what to ask")),
  project: Options.directory("project", { exists: "either" }).pipe(Options.optional, Options.withDescription("start a new chat in this project directory")),
  worktree: Options.boolean("worktree").pipe(Options.withDescription("with --project: work in a new git worktree on its own branch")),
  model: Options.text("model").pipe(Options.optional, Options.withDescription(`with --project: provider/model (default ${ChatSettings.defaultModel})`)),
  approvalMode: approvalModeOption,
  json: jsonOption,
  cassette: cassetteOption,
  tokenDelayMs: tokenDelayOption,
  dataDir: dataDirOption
}

const send = Command.make("send", sendConfig, lazy(() => import("../handlers/Chat.js"), (m) => m.send)).pipe(Command.withDescription("Send a message to a chat (or start one with --project DIR) and stream the answer"))

const approveConfig = {
  chatId: chatArg,
  callId: Args.text({ name: "call" }).pipe(Args.withDescription("the tool call's id (as printed when the chat paused)")),
  allow: Options.boolean("allow").pipe(Options.withDescription("let the tool call run")),
  deny: Options.boolean("deny").pipe(Options.withDescription("do not run it; the agent is told it was denied")),
  json: jsonOption,
  dataDir: dataDirOption
}

const approve = Command.make("approve", approveConfig, lazy(() => import("../handlers/Chat.js"), (m) => m.approve)).pipe(Command.withDescription("Allow or deny a tool call a chat waits for (then `chat resume` continues)"))

const resumeConfig = {
  chatId: chatArg.pipe(Args.optional, Args.withDescription("the chat's id (see `relavium chat list`); without it, the most recent chat opens interactively")),
  json: jsonOption,
  cassette: cassetteOption,
  tokenDelayMs: tokenDelayOption,
  dataDir: dataDirOption
}

const resume = Command.make("resume", resumeConfig, lazy(() => import("../handlers/Chat.js"), (m) => m.resume)).pipe(Command.withDescription("Continue a chat's turn after approvals, an interruption or a crash"))

const chatConfig = {
  chatId: Args.text({ name: "chat" }).pipe(Args.optional, Args.withDescription("continue this chat (see `relavium chat list`); without it, a new chat")),
  project: Options.directory("project", { exists: "either" }).pipe(
    Options.optional,
    Options.withDescription("a new chat in this project directory (default: the current directory)")
  ),
  worktree: Options.boolean("worktree").pipe(Options.withDescription("a new chat works in its own git worktree, on its own branch")),
  model: Options.text("model").pipe(Options.optional, Options.withDescription(`a new chat's provider/model (default ${ChatSettings.defaultModel})`)),
  approvalMode: approvalModeOption,
  cassette: cassetteOption,
  tokenDelayMs: tokenDelayOption,
  dataDir: dataDirOption
}

export const chat = Command.make("chat", chatConfig, lazy(() => import("../handlers/Chat.js"), (m) => m.chat)).pipe(
  Command.withDescription(
    "Talk with the coding agent in a project directory: streamed answers, tool calls and inline approvals (Ctrl-C stops a turn, Ctrl-D or /exit quits); or list, send, approve, resume, export"
  ),
  Command.withSubcommands([list, send, approve, resume, exportCommand])
)

/** What each command's handler gets (handlers/Chat.ts). */
export interface ChatArgs {
  readonly list: Command.Command.ParseConfig<typeof listConfig>
  readonly exportCommand: Command.Command.ParseConfig<typeof exportCommandConfig>
  readonly send: Command.Command.ParseConfig<typeof sendConfig>
  readonly approve: Command.Command.ParseConfig<typeof approveConfig>
  readonly resume: Command.Command.ParseConfig<typeof resumeConfig>
  readonly chat: Command.Command.ParseConfig<typeof chatConfig>
}

/**
 * A chat's settings, stored with it as JSON: which model answers, the
 * approval mode, the tools offered and the system prompt. Decoded with a
 * Schema whenever a chat is read, so a bad value in the store is a located
 * error, not a surprise later.
 */
import { Either, ParseResult, Schema } from "effect"
import { Workflow } from "@relavium/domain"
import { ApprovalMode } from "./ChatEvent.js"
import { InvalidChatInput } from "./ChatError.js"

export const ChatSettings = Schema.Struct({
  provider: Workflow.ProviderName,
  model: Schema.String.pipe(Schema.minLength(1)),
  approvalMode: ApprovalMode,
  tools: Schema.Array(Schema.String),
  systemPrompt: Schema.String,
  /** In a worktree: where the project is inside its repository (when not at its top). */
  subdirectory: Schema.optional(Schema.String)
})
export type ChatSettings = typeof ChatSettings.Type

export const decodeSettings = Schema.decodeUnknownEither(ChatSettings)

export const defaultModel = "anthropic/claude-sonnet-4"

/** `provider/model` (e.g. `anthropic/claude-sonnet-4`) into its parts, or a clear error. */
export const parseModel = (spec: string): Either.Either<{ readonly provider: Workflow.ProviderName; readonly model: string }, InvalidChatInput> => {
  const slash = spec.indexOf("/")
  const providers = Workflow.ProviderName.literals
  if (slash <= 0 || slash === spec.length - 1) {
    return Either.left(
      new InvalidChatInput({ message: `model '${spec}' must be provider/model, e.g. ${defaultModel} (providers: ${providers.join(", ")})` })
    )
  }
  const provider = spec.slice(0, slash)
  const model = spec.slice(slash + 1)
  return Either.mapLeft(
    Schema.decodeUnknownEither(Workflow.ProviderName)(provider),
    (e: ParseResult.ParseError) =>
      new InvalidChatInput({ message: `model '${spec}': unknown provider '${provider}' (${providers.join(", ")}): ${e.message.split("\n")[0]}` })
  ).pipe(Either.map((p) => ({ provider: p, model })))
}

export const parseApprovalMode = (mode: string): Either.Either<ApprovalMode, InvalidChatInput> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(ApprovalMode)(mode),
    () => new InvalidChatInput({ message: `approval mode '${mode}' is not one of ask, accept-edits, auto` })
  )

/** What the agent is told about its job unless the chat is created with its own prompt. */
export const defaultSystemPrompt = [
  "You are a coding agent working in a project directory on the user's machine.",
  "Use the tools to look at files, change them and run commands; paths are relative to the project root.",
  "Some tool calls wait for the user's approval; a call the user denies is not run, and you should not retry it unchanged.",
  "When you are done, say briefly what you changed."
].join(" ")

/**
 * A chat exported for people (Markdown: every message, tool call, result and
 * file patch) and for the engine (a `schema_version: '1.0'` workflow whose one
 * agent node does what the chat was asked, with the chat's model, system
 * prompt and tools, and the commands the chat ran as its allowlist).
 *
 * The user's messages go into the workflow as input defaults, not into the
 * prompt text, so `{{ … }}` in them is never read as a template. Anything
 * shaped like a credential (provider keys, tokens, private keys) is replaced
 * by `[redacted]` in the exported workflow.
 */
import { stringify } from "yaml"
import { CommandPattern, Cost } from "@relavium/domain"
import type { ChatDetail } from "./ChatService.js"
import { type ChatMessage, textOf, toolCallsOf } from "./Conversation.js"

/** A fence longer than any run of backticks in `text`. */
const fence = (text: string, info = ""): string => {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length))
  const marks = "`".repeat(longest + 1)
  return `${marks}${info}\n${text}${text.endsWith("\n") ? "" : "\n"}${marks}`
}

const roleTitle = (message: ChatMessage): string => {
  switch (message.role) {
    case "user":
      return "You"
    case "assistant":
      return `Assistant${message.model ? ` (${message.model})` : ""}${message.status === "completed" ? "" : ` — ${message.status}`}`
    case "tool":
      return "Tool results"
  }
}

export const markdown = (chat: ChatDetail): string => {
  const lines: Array<string> = [`# ${chat.title === "" ? "Untitled chat" : chat.title}`, ""]
  lines.push(`- Chat: \`${chat.chatId}\``)
  lines.push(`- Project: ${chat.projectPath}`)
  if (chat.worktree !== undefined) {
    lines.push(`- Worktree: ${chat.worktree.path} on branch \`${chat.worktree.branch}\`${chat.worktree.status === "removed" ? " (removed)" : ""}`)
  }
  lines.push(`- Model: ${chat.provider}/${chat.model} · approval mode: ${chat.approvalMode}`)
  const input = chat.usage.reduce((n, u) => n + u.inputTokens, 0)
  const output = chat.usage.reduce((n, u) => n + u.outputTokens, 0)
  lines.push(`- Cost: ${Cost.formatUsd(chat.costMicrocents)} (${input} input / ${output} output tokens)`)
  for (const u of chat.usage) lines.push(`  - ${u.model}: ${Cost.formatUsd(u.costMicrocents)} over ${u.calls} call${u.calls === 1 ? "" : "s"}`)
  lines.push("")
  for (const message of chat.messages) {
    lines.push(`## ${roleTitle(message)}`, "")
    for (const block of message.blocks) {
      switch (block.kind) {
        case "text":
          if (block.text.length > 0) lines.push(block.text, "")
          break
        case "reasoning":
          if (block.text.length > 0) lines.push(...block.text.split("\n").map((l) => `> ${l}`), "")
          break
        case "tool_call": {
          const decision =
            block.decision === "allow" ? `, allowed by ${block.decidedBy ?? "the user"}` : block.decision === "deny" ? `, denied by ${block.decidedBy ?? "the user"}` : ""
          lines.push(`**Tool call** \`${block.name}\` (\`${block.toolCallId}\`: ${block.status}${decision})`, "")
          lines.push(fence(JSON.stringify(block.args, null, 2), "json"), "")
          break
        }
        case "tool_result":
          lines.push(`**Result of** \`${block.name}\` (\`${block.toolCallId}\`): ${block.outcome}`, "")
          lines.push(fence(block.output), "")
          break
        case "file_patch":
          lines.push(`**File ${block.operation}** \`${block.path}\``, "")
          if (block.operation === "edit") {
            const diff = [...(block.oldString ?? "").split("\n").map((l) => `-${l}`), ...(block.newString ?? "").split("\n").map((l) => `+${l}`)]
            lines.push(fence(diff.join("\n"), "diff"), "")
          } else {
            lines.push(fence(block.content ?? ""), "")
          }
          break
      }
    }
  }
  return `${lines.join("\n").trimEnd()}\n`
}

/** Credential shapes: provider keys, cloud and forge tokens, JWTs, private keys, `…KEY=value` assignments. */
const SECRET_SHAPES: ReadonlyArray<RegExp> = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /\bsk-[A-Za-z0-9_\-]{8,}/g,
  /\bAIza[0-9A-Za-z_\-]{20,}/g,
  /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g,
  /\bgh[pousr]_[A-Za-z0-9]{20,}/g,
  /\bgithub_pat_[A-Za-z0-9_]{20,}/g,
  /\bxox[abprs]-[A-Za-z0-9-]{10,}/g,
  /\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/g,
  /\bBearer\s+[A-Za-z0-9_\-.~+/]{12,}=*/g,
  /\b([A-Z][A-Z0-9_]*(?:API_KEY|TOKEN|SECRET|PASSWORD))\s*=\s*\S+/g
]

export const redactSecrets = (text: string): string =>
  SECRET_SHAPES.reduce(
    (out, shape) => out.replace(shape, (match, name?: unknown) => (typeof name === "string" && match.includes("=") ? `${name}=[redacted]` : "[redacted]")),
    text
  )

export const workflowYaml = (chat: ChatDetail): string => {
  const requests = chat.messages.filter((m) => m.role === "user").map((m) => redactSecrets(textOf(m)))
  const commands = new Set<string>()
  for (const message of chat.messages) {
    for (const call of toolCallsOf(message)) {
      if (call.name !== "run_command" || call.status !== "done" || typeof call.args !== "object" || call.args === null) continue
      const args = call.args as { readonly command?: unknown; readonly args?: unknown }
      if (typeof args.command !== "string") continue
      const argv = Array.isArray(args.args) ? args.args.map(String) : []
      commands.add(redactSecrets(CommandPattern.exactLine(args.command, argv)))
    }
  }
  const prompt =
    requests.length <= 1
      ? "{{ inputs.message_1 }}"
      : [
          "Do what these requests ask, in order:",
          ...requests.map((_, i) => `${i + 1}. {{ inputs.message_${i + 1} }}`)
        ].join("\n\n")
  const title = chat.title === "" ? "Untitled chat" : redactSecrets(chat.title)
  const document = {
    schema_version: "1.0",
    workflow: {
      id: `chat-${chat.chatId.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, 12)}`,
      name: title,
      description: `Exported from the Relavium chat ${chat.chatId} (project ${chat.projectPath.split(/[\\/]/).pop() ?? ""}): one agent node that does what the chat was asked.`,
      inputs: (requests.length === 0 ? [""] : requests).map((text, i) => ({
        name: `message_${i + 1}`,
        type: "string",
        description: `message ${i + 1} of the chat`,
        default: text
      })),
      ...(commands.size > 0 ? { tools: { allowedCommands: [...commands] } } : {}),
      agents: [
        {
          id: "coder",
          provider: chat.provider,
          model: chat.model,
          system_prompt: redactSecrets(chat.systemPrompt),
          ...(chat.tools.length > 0 ? { tools: [...chat.tools] } : {})
        }
      ],
      nodes: [
        { id: "chat", type: "agent", agent_ref: "coder", prompt_template: prompt },
        { id: "answer", type: "output" }
      ],
      edges: [{ from: "chat", to: "answer" }]
    }
  }
  return stringify(document, { aliasDuplicateObjects: false, lineWidth: 0 })
}

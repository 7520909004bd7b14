/**
 * Human-readable live progress for a terminal: one line per lifecycle event,
 * agent tokens streamed as they arrive, and the outputs at the end.
 */
import { Cost, type RunEvent as RE } from "@relavium/domain"

export interface Style {
  readonly bold: (s: string) => string
  readonly dim: (s: string) => string
  readonly green: (s: string) => string
  readonly red: (s: string) => string
  readonly yellow: (s: string) => string
  readonly cyan: (s: string) => string
}

const ansi = (code: number) => (s: string) => `\u001b[${code}m${s}\u001b[0m`
export const colors: Style = { bold: ansi(1), dim: ansi(2), green: ansi(32), red: ansi(31), yellow: ansi(33), cyan: ansi(36) }
const id = (s: string) => s
export const plain: Style = { bold: id, dim: id, green: id, red: id, yellow: id, cyan: id }

const preview = (value: unknown, max = 80): string => {
  const text = typeof value === "string" ? value : JSON.stringify(value)
  if (text === undefined) return ""
  const line = text.replace(/\s+/g, " ").trim()
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

/** Returns a function that renders one event to text (possibly empty), keeping token-stream state. */
export const makeRenderer = (style: Style, workflowName: string) => {
  let streaming: string | undefined
  /** Whether a line of live tool output was started and not ended. */
  let toolLineOpen = false
  const endStream = () => {
    if (streaming === undefined && !toolLineOpen) return ""
    streaming = undefined
    toolLineOpen = false
    return "\n"
  }
  const toolPrefix = `  ${style.dim("│")} `
  return (event: RE.RunEvent): string => {
    switch (event.type) {
      case "run:started":
        return `${style.bold(`Running ${workflowName}`)} ${style.dim(`run ${event.runId}`)}\n`
      case "node:started":
        return `${endStream()}${style.cyan("▸")} ${event.nodeId} ${style.dim(`(${event.nodeType}${(event.attemptNumber ?? 1) > 1 ? `, attempt ${event.attemptNumber}` : ""})`)}\n`
      case "agent:token": {
        const prefix = streaming === event.nodeId ? "" : `${endStream()}  ${style.dim(`${event.nodeId} │`)} `
        streaming = event.nodeId
        return prefix + event.token.replace(/\n/g, `\n  ${style.dim(`${event.nodeId} │`)} `)
      }
      case "agent:reasoning":
        return ""
      case "agent:tool_call":
        return `${endStream()}  ${style.yellow("⚙")} ${event.toolName ?? "tool"} ${style.dim(preview(event.toolInput))}\n`
      case "tool:output": {
        // What a running command prints, line by line under its call (chunks may end mid-line).
        let out = toolLineOpen ? "" : endStream()
        event.text.split("\n").forEach((part, i) => {
          if (i > 0) {
            out += "\n"
            toolLineOpen = false
          }
          if (part === "") return
          if (!toolLineOpen) out += toolPrefix
          toolLineOpen = true
          out += style.dim(part)
        })
        return out
      }
      case "agent:tool_result":
        return `${endStream()}  ${event.success ? style.green("↳") : style.red("↳")} ${style.dim(preview(event.outputSummary))}\n`
      case "cost:updated":
        return `${endStream()}  ${style.dim(`${event.model}: ${event.inputTokens} in / ${event.outputTokens} out tokens${event.priced === false ? " (unpriced)" : `, ${Cost.formatUsd(event.costMicrocents)}`}`)}\n`
      case "node:completed": {
        const out = event.selected !== undefined ? `→ ${event.selected.join(", ")}` : preview(event.output, 60)
        const took = event.reusedFrom === undefined ? `${event.durationMs} ms` : `reused from run ${event.reusedFrom}`
        return `${endStream()}${style.green("✓")} ${event.nodeId} ${style.dim(took)}${out ? `  ${style.dim(out)}` : ""}\n`
      }
      case "node:skipped":
        return `${endStream()}${style.dim(`– ${event.nodeId} skipped (${event.reason.replace(/_/g, " ")})`)}\n`
      case "node:retrying":
        return `${endStream()}${style.yellow("↻")} ${event.nodeId} ${style.dim(`attempt ${event.attemptNumber} in ${event.delayMs} ms after ${event.error.code}: ${event.error.message}`)}\n`
      case "node:failed":
        return `${endStream()}${style.red("✗")} ${event.nodeId} ${style.red(`${event.error.code}: ${event.error.message}`)}\n`
      case "human_gate:paused":
        return `${endStream()}${style.yellow("⏸")} ${event.nodeId} ${style.dim(`${event.gateType} gate`)} ${event.message}\n`
      case "human_gate:resumed":
        return `${endStream()}${style.green("▶")} ${event.nodeId} ${event.decision} by ${event.decidedBy}\n`
      case "budget:warning":
        return `${endStream()}${style.yellow("!")} budget: ${Cost.formatUsd(event.spentMicrocents)} of ${Cost.formatUsd(event.limitMicrocents)} spent; the next call may exceed it\n`
      case "budget:paused":
        return ""
      case "run:paused":
        return `${endStream()}${style.yellow(style.bold(`Paused`))} at ${event.pendingGateCount} gate${event.pendingGateCount === 1 ? "" : "s"}: ${event.gateIds.join(", ")}\n`
      case "run:timeout":
        return `${endStream()}${style.red(`Timed out after ${event.elapsedMs} ms (timeout_ms ${event.timeoutMs})`)}\n`
      case "run:completed": {
        const summary = `${event.durationMs} ms · ${event.totalTokensUsed.input} in / ${event.totalTokensUsed.output} out tokens · ${Cost.formatUsd(event.totalCostMicrocents)}`
        const outputs = Object.entries(event.outputs)
          .map(([k, v]) => `${style.bold(k)}:\n${indent(typeof v === "string" ? v : JSON.stringify(v, null, 2))}`)
          .join("\n")
        return `${endStream()}${style.green(style.bold("Completed"))} ${style.dim(summary)}\n${outputs.length > 0 ? `${outputs}\n` : ""}`
      }
      case "run:failed":
        return `${endStream()}${style.red(style.bold("Failed"))} ${style.red(`${event.error.nodeId ? `at ${event.error.nodeId}: ` : ""}${event.error.code}: ${event.error.message}`)}\n`
      case "run:cancelled":
        return `${endStream()}${style.yellow(style.bold("Cancelled"))}${event.reason ? ` ${event.reason}` : ""}\n`
      default:
        return ""
    }
  }
}

const indent = (text: string) =>
  text
    .split("\n")
    .map((line) => `  ${line}`)
    .join("\n")

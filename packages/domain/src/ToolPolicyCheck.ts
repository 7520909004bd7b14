/**
 * What a workflow's tools decide about a call before any host is consulted:
 * the tools the agent was given (`tools:` of the agent or node) and the
 * allowlists of `workflow.tools` (docs/command-policy.md). A workflow agent
 * node applies this in its approval hook, so a call the workflow denies never
 * reaches a tools daemon; the daemon keeps enforcing the same rules (with the
 * same messages, from here) and the ones that need its host: which executable
 * a command resolves to, workspace confinement, the addresses a host resolves to.
 */
import { ToolError, type ToolPolicy } from "./Tool.js"

export const NO_COMMANDS =
  "run_command is denied: the workflow allows no commands (set tools.allowedCommands or tools.allowedCommandGlobs)"
export const NO_DOMAINS = "http_request is denied: the workflow allows no domains (set tools.allowedDomains)"

const normalizeHost = (host: string) => host.toLowerCase().replace(/\.$/, "")

/** Whether `hostname` is one of the policy's allowedDomains (exact FQDN, case and trailing dot ignored). */
export const domainAllowed = (policy: ToolPolicy, hostname: string): boolean => {
  const host = normalizeHost(hostname)
  return (policy.allowedDomains ?? []).some((domain) => normalizeHost(domain) === host)
}

/** The host of a URL as http_request checks it: IPv6 brackets and a trailing dot removed. */
export const hostOf = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "")

/** Why http_request may not fetch `url` under `policy` (scheme, credentials, allowedDomains), if it may not. */
export const httpDenial = (policy: ToolPolicy, url: URL): string | undefined => {
  if (url.protocol !== "https:") return `http_request only uses HTTPS; '${url.protocol}' URLs are refused`
  if (url.username !== "" || url.password !== "") return "http_request refuses URLs with embedded credentials"
  if ((policy.allowedDomains ?? []).length === 0) return NO_DOMAINS
  const hostname = hostOf(url)
  return domainAllowed(policy, hostname) ? undefined : `the host '${hostname}' is not in the workflow's allowedDomains`
}

/** Whether the policy allows any command line at all. */
export const allowsCommands = (policy: ToolPolicy): boolean =>
  (policy.allowedCommands ?? []).length > 0 || (policy.allowedCommandGlobs ?? []).length > 0

export interface Grant {
  /** The tools offered to the agent; a call of any other tool is refused. */
  readonly tools: ReadonlyArray<string>
  /** The workflow's allowlists; undefined when it declares none (the daemon then applies its own). */
  readonly policy: ToolPolicy | undefined
}

const parseUrl = (value: unknown): URL | undefined => {
  if (typeof value !== "string" || value === "") return undefined
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

/**
 * The refusal of a call with parsed `args`, when the grant decides it alone:
 * a tool the agent was not given (`tool_unavailable`), `run_command` when no
 * command is allowed, `http_request` to a URL the policy refuses (`tool_denied`).
 * Undefined when the call goes on to the daemon.
 */
export const denial = (grant: Grant, name: string, args: unknown): ToolError | undefined => {
  if (!grant.tools.includes(name)) {
    const given = grant.tools.length === 0 ? "it was given no tools" : `its tools are ${grant.tools.join(", ")}`
    return new ToolError({ code: "tool_unavailable", message: `no tool named '${name}' is available to this agent (${given})` })
  }
  const policy = grant.policy
  if (policy === undefined) return undefined
  if (name === "run_command" && !allowsCommands(policy)) return new ToolError({ code: "tool_denied", message: NO_COMMANDS })
  if (name === "http_request") {
    const url = parseUrl(typeof args === "object" && args !== null ? (args as Record<string, unknown>).url : undefined)
    const why = url === undefined ? undefined : httpDenial(policy, url)
    if (why !== undefined) return new ToolError({ code: "tool_denied", message: why })
  }
  return undefined
}

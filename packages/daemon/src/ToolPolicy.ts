/**
 * The workflow's tool allowlists: `allowedCommands` (exact command lines),
 * `allowedCommandGlobs` (command patterns, see CommandPolicy and
 * docs/command-policy.md), `allowedDomains` (exact FQDN, HTTPS).
 * An empty or absent list denies the tool.
 */
import { Tool } from "@relavium/domain"

/** The policy's wire shape is declared once, in @relavium/domain (`Tool.ToolPolicy`). */
export const ToolPolicy = Tool.ToolPolicy
export type ToolPolicy = Tool.ToolPolicy

const normalizeHost = (host: string) => host.toLowerCase().replace(/\.$/, "")

export const domainAllowed = (policy: ToolPolicy, hostname: string): boolean => {
  const host = normalizeHost(hostname)
  return (policy.allowedDomains ?? []).some((domain) => normalizeHost(domain) === host)
}

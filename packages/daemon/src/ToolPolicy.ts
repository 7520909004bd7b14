/**
 * The workflow's tool allowlists: `allowedCommands` (exact command lines),
 * `allowedCommandGlobs` (command patterns, see CommandPolicy and
 * docs/command-policy.md), `allowedDomains` (exact FQDN, HTTPS).
 * An empty or absent list denies the tool. What needs no host to decide is
 * declared once in @relavium/domain (`ToolPolicyCheck`), where a workflow
 * agent's approval hook applies it too.
 */
import { Tool, ToolPolicyCheck } from "@relavium/domain"

/** The policy's wire shape is declared once, in @relavium/domain (`Tool.ToolPolicy`). */
export const ToolPolicy = Tool.ToolPolicy
export type ToolPolicy = Tool.ToolPolicy

export const domainAllowed = ToolPolicyCheck.domainAllowed

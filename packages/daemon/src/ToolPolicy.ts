/**
 * The workflow's tool allowlists: `allowedCommands` (exact command lines),
 * `allowedCommandGlobs` (command patterns, see CommandPolicy and
 * docs/command-policy.md), `allowedDomains` (exact FQDN, HTTPS).
 * An empty or absent list denies the tool.
 */
import { Schema } from "effect"

export const ToolPolicy = Schema.Struct({
  allowedCommands: Schema.optional(Schema.Array(Schema.String)),
  allowedCommandGlobs: Schema.optional(Schema.Array(Schema.String)),
  allowedDomains: Schema.optional(Schema.Array(Schema.String))
})
export type ToolPolicy = typeof ToolPolicy.Type

const normalizeHost = (host: string) => host.toLowerCase().replace(/\.$/, "")

export const domainAllowed = (policy: ToolPolicy, hostname: string): boolean => {
  const host = normalizeHost(hostname)
  return (policy.allowedDomains ?? []).some((domain) => normalizeHost(domain) === host)
}

/**
 * The workflow's tool allowlists (docs/security/commands.md): `allowedCommands` (exact
 * "cmd args…"), `allowedCommandGlobs`, `allowedDomains` (exact FQDN, HTTPS).
 * An empty or absent list denies the tool.
 */
import { Schema } from "effect"
import { commandGlobMatches } from "./Glob.js"

export const ToolPolicy = Schema.Struct({
  allowedCommands: Schema.optional(Schema.Array(Schema.String)),
  allowedCommandGlobs: Schema.optional(Schema.Array(Schema.String)),
  allowedDomains: Schema.optional(Schema.Array(Schema.String))
})
export type ToolPolicy = typeof ToolPolicy.Type

/** The command line the allowlists see: the command and its arguments joined by single spaces. */
export const commandLine = (command: string, args: ReadonlyArray<string>) => [command, ...args].join(" ")

export const commandAllowed = (policy: ToolPolicy, line: string): boolean =>
  (policy.allowedCommands ?? []).includes(line) ||
  (policy.allowedCommandGlobs ?? []).some((glob) => commandGlobMatches(glob, line))

const normalizeHost = (host: string) => host.toLowerCase().replace(/\.$/, "")

export const domainAllowed = (policy: ToolPolicy, hostname: string): boolean => {
  const host = normalizeHost(hostname)
  return (policy.allowedDomains ?? []).some((domain) => normalizeHost(domain) === host)
}

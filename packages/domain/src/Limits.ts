/**
 * Size limits of the workflow format: how long identifiers and other strings may be, and how
 * deeply a workflow file may nest. They keep a hostile or broken file from exhausting the
 * loader (a 70,000-character tool name, a list nested 800 levels deep) and are far above what a
 * hand-written workflow needs. The user-facing list is in docs/workflow-format.md ("Limits").
 */
import { Schema } from "effect"

/** Node, agent, workflow and MCP server ids. */
export const MAX_ID_LENGTH = 128
/** Tool names, input names, context keys, environment variable names, MCP refs. */
export const MAX_NAME_LENGTH = 128
/** Short human text: `name`, `label`, `model`, `version`, tags, schedules, branch values. */
export const MAX_LABEL_LENGTH = 256
/** Paths, URLs, globs, regex patterns, commands and their arguments, allowlist entries. */
export const MAX_PATH_LENGTH = 4096
/** `description` fields. */
export const MAX_DESCRIPTION_LENGTH = 10_000
/** Prompts, templates and JS expressions: bounded only so that one field cannot be the whole file. */
export const MAX_TEXT_LENGTH = 256 * 1024
/** Mappings and lists inside one another, counting the top-level mapping as level 1. */
export const MAX_NESTING_DEPTH = 64

/** The annotations of a `Schema.maxLength(max, …)` check: a message naming the limit and the length. */
export const tooLong = (max: number) => ({
  message: (issue: { readonly actual: unknown }) =>
    `must be at most ${max} characters (this one has ${typeof issue.actual === "string" ? issue.actual.length : "more"})`
})

/** A non-empty string of at most `max` characters. */
export const boundedNonEmpty = (max: number) =>
  Schema.String.pipe(Schema.maxLength(max, tooLong(max)), Schema.minLength(1, { message: () => "must not be empty" }))

/** A string of at most `max` characters (possibly empty). */
export const boundedString = (max: number) => Schema.String.pipe(Schema.maxLength(max, tooLong(max)))

/**
 * A problem with what the user asked for (a bad file, flag, input or id): one
 * clear line on stderr (a JSON object with --json), exit code 2.
 */
import { Data, Effect } from "effect"
import { ExitCode } from "./ExitCodes.js"

export class UsageProblem {
  readonly _tag = "UsageProblem"
  constructor(
    readonly message: string,
    readonly code = "validation"
  ) {}
}

export const isUsageProblem = (e: unknown): e is UsageProblem => e instanceof UsageProblem

export const report = (json: boolean) => (problem: UsageProblem) =>
  Effect.sync(() => {
    process.stderr.write(
      json ? `${JSON.stringify({ type: "error", code: problem.code, message: problem.message })}\n` : `relavium: ${problem.message}\n`
    )
    process.exitCode = ExitCode.invalid
  })

/** A missing or malformed setting of a long-running process: exit 2. */
export class Misconfigured extends Data.TaggedError("Misconfigured")<{ readonly message: string }> {}

/**
 * Following a run on the terminal: renders or prints (NDJSON) its events until
 * it ends or pauses, and turns how it stopped into the CLI exit code.
 */
import { Effect, Stream } from "effect"
import { WorkflowEngine } from "@relavium/core"
import { RunEvent as RE } from "@relavium/domain"
import { ExitCode } from "./ExitCodes.js"
import { colors, makeRenderer, plain } from "./Render.js"
import * as Settings from "./runtime/Settings.js"

export interface FollowOptions {
  readonly json: boolean
  readonly workflowName: string
  /** Print only events after this sequence number. */
  readonly after?: number | undefined
  /** Keep following through pauses (someone else decides the gate). */
  readonly throughPauses?: boolean | undefined
}

export const exitCodeFor = (event: RE.RunEvent | undefined): number =>
  event?.type === "run:completed" ? ExitCode.ok : event?.type === "run:paused" ? ExitCode.paused : ExitCode.failed

/** Follows `runId` to its end (or its next pause) and returns the exit code. Ctrl-C cancels the run. */
export const followRun = (runId: string, options: FollowOptions) =>
  Effect.gen(function* () {
    const engine = yield* WorkflowEngine
    const render = makeRenderer((yield* Settings.colors) ? colors : plain, options.workflowName)
    let last: RE.RunEvent | undefined
    yield* engine.events(runId, options.after).pipe(
      Stream.takeUntil((e) => RE.isTerminal(e) || (!options.throughPauses && e.type === "run:paused")),
      Stream.runForEach((event) =>
        Effect.sync(() => {
          last = event
          process.stdout.write(options.json ? `${RE.encodeRunEventJson(event)}\n` : render(event))
        })
      ),
      Effect.onInterrupt(() => engine.cancel(runId, "interrupted").pipe(Effect.ignore))
    )
    const code = exitCodeFor(last)
    if (code === ExitCode.paused && !options.json) {
      process.stderr.write(
        `relavium: run ${runId} is paused at a human gate (exit 3); decide it with: relavium gate ${runId} --approve | --reject | --input JSON\n`
      )
    }
    return code
  })

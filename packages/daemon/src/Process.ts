/**
 * Runs a program without a shell, in its own session and process group,
 * streaming its output. The whole tree (the group, and descendants that left
 * it with setsid: see ProcessTree) is killed with SIGKILL on timeout, on
 * interruption (a cancelled run, a dropped RPC connection) and once the leader
 * exits, so no child outlives the tool call.
 */
import * as ChildProcess from "node:child_process"
import { randomUUID } from "node:crypto"
import { Effect, Option, Stream } from "effect"
import { ToolError } from "@relavium/ports"
import { Coalescer } from "./LiveOutput.js"
import * as ProcessTree from "./ProcessTree.js"

export type ProcessEvent =
  | { readonly _tag: "Output"; readonly stream: "stdout" | "stderr"; readonly text: string }
  | {
      readonly _tag: "Exit"
      readonly code: number | null
      readonly signal: string | null
      readonly timedOut: boolean
      readonly elapsedMs: number
    }

export interface SpawnOptions {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  readonly timeoutMs: number
  readonly env?: Readonly<Record<string, string>> | undefined
}

/** Environment variables a command may see; the daemon's secrets (API keys, tokens) are not among them. */
const INHERITED_ENV = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SHELL", "TERM"]

export const commandEnv = (extra: Readonly<Record<string, string>> = {}): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const name of INHERITED_ENV) {
    const value = process.env[name]
    if (value !== undefined) env[name] = value
  }
  return { ...env, ...extra }
}

/** Sends SIGKILL to every process in the group led by `pid`. */
export const killGroup = (pid: number) => {
  try {
    process.kill(-pid, "SIGKILL")
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * The process's events: its output coalesced into chunks (LiveOutput.Coalescer: at most
 * one per 50 ms or 8 KiB per stream), then its exit.
 */
export const spawn = (options: SpawnOptions): Stream.Stream<ProcessEvent, ToolError> =>
  Stream.asyncPush<ProcessEvent, ToolError>((emit) =>
    Effect.gen(function* () {
      const started = Date.now()
      const marker = randomUUID()
      const child = yield* Effect.try({
        try: () =>
          ChildProcess.spawn(options.command, [...options.args], {
            cwd: options.cwd,
            env: { ...commandEnv(options.env), [ProcessTree.MARKER_VARIABLE]: marker },
            shell: false,
            detached: true,
            stdio: ["ignore", "pipe", "pipe"]
          }),
        catch: (error) => new ToolError({ code: "tool_failed", message: `cannot run '${options.command}': ${String(error)}` })
      })
      const tree = child.pid !== undefined ? ProcessTree.track(child.pid, marker) : undefined
      const sweeper = setInterval(() => tree?.sweep(), ProcessTree.SWEEP_INTERVAL_MS)
      const killTree = () => {
        clearInterval(sweeper)
        if (tree !== undefined) tree.killAll()
        else if (child.pid !== undefined) killGroup(child.pid)
      }
      const output = new Coalescer((chunk) => emit.single({ _tag: "Output", ...chunk }))
      let settled = false
      let timedOut = false
      let exit: { code: number | null; signal: string | null } | undefined
      const finish = () => {
        if (settled || exit === undefined) return
        settled = true
        output.flush()
        emit.single({ _tag: "Exit", ...exit, timedOut, elapsedMs: Date.now() - started })
        emit.end()
      }
      child.stdout.setEncoding("utf8")
      child.stderr.setEncoding("utf8")
      child.stdout.on("data", (text: string) => output.push("stdout", text))
      child.stderr.on("data", (text: string) => output.push("stderr", text))
      child.on("error", (error: NodeJS.ErrnoException) => {
        if (settled) return
        settled = true
        output.close()
        const why = error.code === "ENOENT" ? "no such program on the daemon's PATH" : error.message
        emit.fail(new ToolError({ code: "tool_failed", message: `cannot run '${options.command}': ${why}` }))
      })
      child.on("exit", (code, signal) => {
        exit = { code, signal }
        // Children that outlived the leader keep its pipes open; end them so 'close' comes.
        killTree()
      })
      child.on("close", (code, signal) => {
        exit ??= { code, signal }
        finish()
      })
      const timer = setTimeout(() => {
        timedOut = true
        killTree()
      }, options.timeoutMs)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          clearTimeout(timer)
          output.close()
          killTree()
        })
      )
    }),
    { bufferSize: "unbounded" }
  )

/** Everything a finished process printed, interleaved as it arrived, and how it ended. */
export const describeExit = (exit: Extract<ProcessEvent, { _tag: "Exit" }>, timeoutMs: number): Option.Option<string> => {
  if (exit.timedOut) return Option.some(`[timed out after ${timeoutMs} ms; the command and its children were killed]`)
  if (exit.signal !== null) return Option.some(`[killed by ${exit.signal}]`)
  if (exit.code !== 0) return Option.some(`[exit code ${exit.code}]`)
  return Option.none()
}

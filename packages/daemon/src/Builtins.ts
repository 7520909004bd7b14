/**
 * The built-in tools the daemon owns (docs/workflow-format.md, "Tools"): files, search, commands,
 * git and HTTPS egress. Each declares its arguments once, as a Schema: the
 * daemon decodes calls with it and the model sees its JSON Schema.
 */
import { Effect, JSONSchema, Option, Schema, Stream } from "effect"
import { ArrayFormatter } from "effect/ParseResult"
import { ToolError } from "@relavium/ports"
import { type Llm, ToolPolicyCheck } from "@relavium/domain"
import { boundOutput, HeadCapture, MAX_OUTPUT_BYTES } from "./Bounding.js"
import { LiveBound } from "./LiveOutput.js"
import { forbiddenAddress, type HostResolver, type HttpRequester } from "./HttpEgress.js"
import * as Process from "./Process.js"
import * as Search from "./Search.js"
import { type ExecuteChunk, OutputChunk, ResultChunk } from "./ToolCall.js"
import { authorize } from "./CommandPolicy.js"
import type { ToolPolicy } from "./ToolPolicy.js"
import * as Workspace from "./Workspace.js"

export interface ToolContext {
  readonly workspace: Workspace.Workspace
  readonly policy: ToolPolicy
  readonly resolver: HostResolver
  readonly requester: HttpRequester
  readonly commandTimeoutMs: number
  readonly maxCommandTimeoutMs: number
}

export interface BuiltinTool {
  readonly definition: Llm.ToolDef
  /** Decodes the model's arguments; a failure names the offending path. */
  readonly decode: (args: unknown) => Effect.Effect<unknown, ToolError>
  readonly run: (args: unknown, context: ToolContext) => Stream.Stream<ExecuteChunk, ToolError>
}

const parametersOf = (schema: Schema.Schema.Any): Record<string, unknown> => {
  const { $schema: _ignored, ...rest } = JSONSchema.make(schema) as unknown as Record<string, unknown>
  return rest
}

const define = <A, I>(
  name: string,
  description: string,
  args: Schema.Schema<A, I>,
  run: (args: A, context: ToolContext) => Stream.Stream<ExecuteChunk, ToolError>
): BuiltinTool => {
  const decodeArgs = Schema.decodeUnknown(args, { onExcessProperty: "error", errors: "all" })
  return {
    definition: { name, description, parameters: parametersOf(args) },
    decode: (raw) =>
      decodeArgs(raw).pipe(
        Effect.mapError((error) => {
          const issues = ParseIssues.format(error)
          return new ToolError({ code: "tool_failed", message: `bad arguments for ${name}: ${issues}` })
        })
      ),
    run: (decoded, context) => run(decoded as A, context)
  }
}

const ParseIssues = {
  format: (error: Parameters<typeof ArrayFormatter.formatErrorSync>[0]) =>
    ArrayFormatter.formatErrorSync(error)
      .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(arguments)"}: ${issue.message}`)
      .join("; ")
}

const result = (output: string, isError = false): ExecuteChunk => new ResultChunk({ output: boundOutput(output), isError })
const once = (effect: Effect.Effect<ExecuteChunk, ToolError>) => Stream.fromEffect(effect)

const hostCall = <A>(what: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (error) => Workspace.failed(`${what}: ${Workspace.errorText(error)}`) })

const Path = Schema.String.pipe(Schema.minLength(1)).annotations({
  description: "a path relative to the workspace root"
})

// ---------------------------------------------------------------------------
// files
// ---------------------------------------------------------------------------

/** Files larger than this are read only up to it (the model sees 50 KB anyway). */
const READ_LIMIT_BYTES = 8 * 1024 * 1024

const isBinary = (head: Buffer) => head.subarray(0, 8192).includes(0)

/** Reads a regular file of the workspace through the descriptor confinement checked (Workspace.openRead). */
const readText = (context: ToolContext, path: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const file = yield* Workspace.openRead(context.workspace, path)
      return yield* hostCall(`cannot read '${path}'`, async () => {
        const size = Math.min(file.size, READ_LIMIT_BYTES)
        const buffer = Buffer.alloc(size)
        let offset = 0
        while (offset < size) {
          const { bytesRead } = await file.handle.read(buffer, offset, size - offset, offset)
          if (bytesRead === 0) break
          offset += bytesRead
        }
        return { bytes: buffer.subarray(0, offset), size: file.size, real: file.real }
      })
    })
  )

/** Writes through the descriptor confinement checked (Workspace.openWrite: no .git, one hard link, regular file). */
const writeText = (context: ToolContext, path: string, content: string, mode: "truncate" | "append") =>
  Effect.scoped(
    Effect.gen(function* () {
      const file = yield* Workspace.openWrite(context.workspace, path, mode === "append")
      yield* hostCall(`cannot write '${path}'`, () => file.handle.writeFile(content, "utf8"))
      return file.real
    })
  )

/** edit_file refuses .git before reading (the write would refuse it too, after the read). */
const refuseGitMetadata = (context: ToolContext, path: string) =>
  Workspace.resolve(context.workspace, path).pipe(
    Effect.filterOrFail(
      (real) => !Workspace.isGitMetadata(context.workspace, real),
      () => Workspace.denied(`'${path}' is inside .git; file tools do not change repository metadata (use git_commit)`)
    )
  )

const readFile = define(
  "read_file",
  "Read a UTF-8 text file in the workspace.",
  Schema.Struct({ path: Path }),
  (args, context) =>
    once(
      Effect.gen(function* () {
        const { bytes, size } = yield* readText(context, args.path)
        if (isBinary(bytes)) return yield* Workspace.failed(`'${args.path}' is a binary file (${size} bytes); read_file returns text only`)
        const text = bytes.toString("utf8")
        return new ResultChunk({ output: boundOutput(text, { bytes: size }), isError: false })
      })
    )
)

const writeFile = define(
  "write_file",
  "Write (or append) a UTF-8 text file in the workspace, creating parent directories.",
  Schema.Struct({ path: Path, content: Schema.String, append: Schema.optional(Schema.Boolean) }),
  (args, context) =>
    once(
      Effect.gen(function* () {
        const real = yield* writeText(context, args.path, args.content, args.append === true ? "append" : "truncate")
        const size = Buffer.byteLength(args.content, "utf8")
        return result(`${args.append === true ? "appended" : "wrote"} ${size} bytes to ${Workspace.relative(context.workspace, real)}`)
      })
    )
)

const countOccurrences = (text: string, needle: string) => {
  let count = 0
  for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) count++
  return count
}

const editFile = define(
  "edit_file",
  "Replace an exact piece of text in a file. old_string must occur exactly once unless replace_all is true.",
  Schema.Struct({
    path: Path,
    old_string: Schema.String.pipe(Schema.minLength(1)),
    new_string: Schema.String,
    replace_all: Schema.optional(Schema.Boolean)
  }),
  (args, context) =>
    once(
      Effect.gen(function* () {
        yield* refuseGitMetadata(context, args.path)
        const { bytes, size } = yield* readText(context, args.path)
        if (size > READ_LIMIT_BYTES) return yield* Workspace.failed(`'${args.path}' is too large to edit (${size} bytes)`)
        if (isBinary(bytes)) return yield* Workspace.failed(`'${args.path}' is a binary file; edit_file edits text only`)
        const text = bytes.toString("utf8")
        const count = countOccurrences(text, args.old_string)
        if (count === 0) {
          return yield* Workspace.failed(`old_string was not found in '${args.path}'; nothing was changed (it must match the file exactly, whitespace included)`)
        }
        if (count > 1 && args.replace_all !== true) {
          return yield* Workspace.failed(
              `old_string occurs ${count} times in '${args.path}'; nothing was changed. Include more surrounding text to make it unique, or set replace_all`
            )
        }
        const updated = args.replace_all === true ? text.split(args.old_string).join(args.new_string) : text.replace(args.old_string, () => args.new_string)
        const real = yield* writeText(context, args.path, updated, "truncate")
        return result(`replaced ${count} occurrence${count === 1 ? "" : "s"} in ${Workspace.relative(context.workspace, real)}`)
      })
    )
)

const searchIn = (context: ToolContext, path: string) =>
  Effect.map(Workspace.resolve(context.workspace, path), (base) => ({
    root: context.workspace.root,
    base,
    prefix: Workspace.relative(context.workspace, base),
    excluded: context.workspace.excludedRelative,
    excludedPaths: context.workspace.excluded
  }))

// The walk, glob matching and regular expressions run in a worker with a time limit (Search.ts).

const listDirectory = define(
  "list_directory",
  "List a directory of the workspace (directories end with /, symlinks with @), optionally recursively and filtered by a glob.",
  Schema.Struct({
    path: Schema.optionalWith(Path, { default: () => "." }),
    recursive: Schema.optional(Schema.Boolean),
    glob: Schema.optional(Schema.String)
  }),
  (args, context) =>
    once(
      searchIn(context, args.path).pipe(
        Effect.flatMap((where) => Search.search({ ...where, op: "list", recursive: args.recursive === true, glob: args.glob })),
        Effect.map((output) => result(output))
      )
    )
)

const globTool = define(
  "glob",
  "Find files in the workspace whose path matches a glob (** crosses directories; a pattern without / matches file names at any depth).",
  Schema.Struct({ pattern: Schema.String.pipe(Schema.minLength(1)), path: Schema.optional(Path) }),
  (args, context) =>
    once(
      searchIn(context, args.path ?? ".").pipe(
        Effect.flatMap((where) => Search.search({ ...where, op: "glob", pattern: args.pattern })),
        Effect.map((output) => result(output))
      )
    )
)

const grepTool = define(
  "grep",
  "Search the text files of the workspace for a regular expression; prints path:line: text for each matching line.",
  Schema.Struct({
    pattern: Schema.String.pipe(Schema.minLength(1)),
    path: Schema.optional(Path),
    glob: Schema.optional(Schema.String),
    ignore_case: Schema.optional(Schema.Boolean)
  }),
  (args, context) =>
    once(
      searchIn(context, args.path ?? ".").pipe(
        Effect.flatMap((where) =>
          Search.search({ ...where, op: "grep", pattern: args.pattern, ignoreCase: args.ignore_case === true, glob: args.glob })
        ),
        Effect.map((output) => result(output))
      )
    )
)

// ---------------------------------------------------------------------------
// commands
// ---------------------------------------------------------------------------

/** Runs a program and streams its output, then one Result with the bounded head and how it ended. */
const runProgram = (
  options: Process.SpawnOptions,
  describe: (exit: Extract<Process.ProcessEvent, { _tag: "Exit" }>) => Option.Option<string>
): Stream.Stream<ExecuteChunk, ToolError> =>
  Stream.suspend(() => {
    const capture = new HeadCapture(MAX_OUTPUT_BYTES * 2)
    // Output forwarded live per call (coalesced by Process.spawn); the model's copy is bounded separately.
    const live = new LiveBound()
    return Process.spawn(options).pipe(
      Stream.mapConcat((event): ReadonlyArray<ExecuteChunk> => {
        if (event._tag === "Output") {
          capture.push(event.text)
          return live.admit(event).map((chunk) => new OutputChunk(chunk))
        }
        const note = Option.getOrUndefined(describe(event))
        const failed = event.timedOut || event.signal !== null || event.code !== 0
        const output = capture.bytes === 0 && note === undefined ? "(no output)" : capture.bounded(note)
        return [new ResultChunk({ output, isError: failed })]
      })
    )
  })

const runCommand = define(
  "run_command",
  "Run a program in the workspace (no shell: pass each argument separately in args). Only commands the workflow's allowlist patterns match can run; a refusal names the argument to change.",
  Schema.Struct({
    command: Schema.String.pipe(Schema.minLength(1)),
    args: Schema.optional(Schema.Array(Schema.String)),
    timeout_ms: Schema.optional(Schema.Int.pipe(Schema.positive()))
  }),
  (args, context) =>
    Stream.unwrap(
      Effect.gen(function* () {
        const argv = args.args ?? []
        const root = context.workspace.root
        const { executable } = yield* authorize(context.policy, args.command, argv, { cwd: root, searchPath: process.env.PATH, workspaceRoot: root })
        const timeoutMs = Math.min(args.timeout_ms ?? context.commandTimeoutMs, context.maxCommandTimeoutMs)
        return runProgram({ command: executable, args: argv, cwd: root, timeoutMs }, (exit) =>
          Process.describeExit(exit, timeoutMs)
        )
      })
    )
)

/** Git never runs hooks or an fsmonitor a model could have planted. */
const GIT_SAFETY = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.pager=cat"]
const GIT_TIMEOUT_MS = 60_000

const git = (context: ToolContext, args: ReadonlyArray<string>) =>
  runProgram(
    { command: "git", args: [...GIT_SAFETY, ...args], cwd: context.workspace.root, timeoutMs: GIT_TIMEOUT_MS, env: { GIT_TERMINAL_PROMPT: "0" } },
    (exit) => Process.describeExit(exit, GIT_TIMEOUT_MS)
  )

/** Only the final Result of a program, for tools that run several steps. */
const lastResult = (stream: Stream.Stream<ExecuteChunk, ToolError>) =>
  stream.pipe(
    Stream.runLast,
    Effect.flatMap((last) =>
      Option.isSome(last) && last.value._tag === "Result" ? Effect.succeed(last.value) : Effect.fail(Workspace.failed("git ended without a result"))
    )
  )

const gitStatus = define("git_status", "Show the git status of the workspace (branch and changed files).", Schema.Struct({}), (_, context) =>
  git(context, ["status", "--short", "--branch"])
)

const gitCommit = define(
  "git_commit",
  "Commit changes in the workspace: the given files (paths in the workspace), or every change when files is omitted.",
  Schema.Struct({
    message: Schema.String.pipe(Schema.minLength(1)),
    files: Schema.optional(
      Schema.Array(
        Schema.String.pipe(
          Schema.minLength(1),
          Schema.filter((f) => !f.startsWith("-") || "a path must not start with '-'")
        )
      )
    )
  }),
  (args, context) =>
    Stream.unwrap(
      Effect.gen(function* () {
        const files = yield* Effect.forEach(args.files ?? [], (file) =>
          Workspace.resolve(context.workspace, file).pipe(Effect.map((real) => Workspace.relative(context.workspace, real)))
        )
        // The data directory and key file are never staged, even when they lie inside the repository.
        const excluded = context.workspace.excludedRelative.filter((path) => path !== ".").map((path) => `:(top,exclude,literal)${path}`)
        const pathspecs = files.length > 0 ? [...files, ...excluded] : excluded.length > 0 ? [":(top)", ...excluded] : []
        const added = yield* lastResult(git(context, ["add", "-A", ...(pathspecs.length > 0 ? ["--", ...pathspecs] : [])]))
        if (added.isError) return Stream.make(added)
        return git(context, ["commit", "--no-verify", "-m", args.message, ...(files.length > 0 ? ["--", ...files] : [])]).pipe(
          Stream.filter((chunk) => chunk._tag === "Result")
        )
      })
    )
)

// ---------------------------------------------------------------------------
// egress
// ---------------------------------------------------------------------------

const HTTP_TIMEOUT_MS = 30_000
const HTTP_MAX_BODY_BYTES = 1024 * 1024
const SHOWN_RESPONSE_HEADERS = ["content-type", "content-length", "location", "retry-after"]

const httpRequest = define(
  "http_request",
  "Make an HTTPS request to a host the workflow allows (allowedDomains).",
  Schema.Struct({
    url: Schema.String.pipe(Schema.minLength(1)),
    method: Schema.optional(Schema.Literal("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")),
    headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
    body: Schema.optional(Schema.String)
  }),
  (args, context) =>
    once(
      Effect.gen(function* () {
        const url = yield* Effect.try({
          try: () => new URL(args.url),
          catch: () => Workspace.failed(`bad arguments for http_request: url: '${args.url}' is not an absolute URL`)
        })
        // Scheme, credentials and allowedDomains: the same rule a workflow agent applies before calling.
        const refused = ToolPolicyCheck.httpDenial(context.policy, url)
        if (refused !== undefined) return yield* Workspace.denied(refused)
        const hostname = ToolPolicyCheck.hostOf(url)
        const addresses = yield* context.resolver(hostname)
        if (addresses.length === 0) return yield* Workspace.failed(`${hostname} resolved to no address`)
        for (const a of addresses) {
          const why = forbiddenAddress(a.address)
          if (why !== undefined) {
            return yield* Workspace.denied(`the host '${hostname}' resolves to ${a.address} (${why}); http_request only reaches public addresses`)
          }
        }
        const method = args.method ?? "GET"
        const response = yield* context.requester({
          url,
          method,
          // The Host header is the URL's: a model cannot point a checked connection at another virtual host.
          headers: Object.fromEntries(Object.entries(args.headers ?? {}).filter(([name]) => name.toLowerCase() !== "host")),
          body: args.body,
          address: addresses[0]!,
          timeoutMs: HTTP_TIMEOUT_MS,
          maxBodyBytes: HTTP_MAX_BODY_BYTES
        })
        const headers = SHOWN_RESPONSE_HEADERS.filter((h) => response.headers[h] !== undefined).map((h) => `${h}: ${response.headers[h]}`)
        const text = [`HTTP ${response.status}`, ...headers, "", response.body + (response.truncated ? "\n[response body cut at 1 MB]" : "")].join("\n")
        return result(text, response.status >= 400)
      })
    )
)

export const builtins: ReadonlyArray<BuiltinTool> = [
  readFile,
  writeFile,
  editFile,
  listDirectory,
  globTool,
  grepTool,
  runCommand,
  gitStatus,
  gitCommit,
  httpRequest
]

export const builtinNames = builtins.map((tool) => tool.definition.name)

/**
 * Finding and reading the scenario files of `relavium test`: every file is read, decoded and
 * checked against its workflow (and its cassettes read) before anything runs, so a bad file, a
 * missing workflow or an unknown key stops the command with every problem listed (exit 2).
 */
import { FileSystem } from "@effect/platform"
import { Effect, Either } from "effect"
import { dirname, join, relative, resolve } from "node:path"
import { Scenario } from "@relavium/core"
import { type Plan, WorkflowYaml } from "@relavium/domain"
import { Cassette } from "@relavium/llm"

export const SCENARIO_SUFFIX = ".scenario.yaml"

export interface LoadedScenario {
  readonly scenario: Scenario.Scenario
  readonly model: Scenario.ModelSource
}

export interface LoadedFile {
  /** The scenario file as shown in reports (relative to the current directory when under it). */
  readonly file: string
  readonly workflow: { readonly id: string; readonly text: string; readonly file: string }
  readonly plan: Plan.WorkflowPlan
  /** The directory the real tools are confined to. */
  readonly workspace: string
  readonly scenarios: ReadonlyArray<LoadedScenario>
}

const SKIPPED_DIRECTORIES = new Set(["node_modules", ".git"])

/** Scenario files under `dir`, sorted; hidden directories and node_modules are not searched. */
const walk = (fs: FileSystem.FileSystem, dir: string): Effect.Effect<Array<string>> =>
  Effect.gen(function* () {
    const names = [...(yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed(() => [] as Array<string>)))].sort()
    const found: Array<string> = []
    for (const name of names) {
      const path = join(dir, name)
      const info = yield* fs.stat(path).pipe(Effect.option)
      if (info._tag === "None") continue
      if (info.value.type === "Directory") {
        if (!name.startsWith(".") && !SKIPPED_DIRECTORIES.has(name)) found.push(...(yield* walk(fs, path)))
      } else if (name.endsWith(SCENARIO_SUFFIX)) found.push(path)
    }
    return found
  })

const shown = (path: string): string => {
  const rel = relative(process.cwd(), path)
  return rel !== "" && !rel.startsWith("..") ? rel : path
}

/** The scenario files the paths name: files as given, directories searched for `*.scenario.yaml`. */
export const discover = (paths: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const files: Array<string> = []
    const problems: Array<string> = []
    for (const path of paths.length === 0 ? ["."] : paths) {
      const info = yield* fs.stat(path).pipe(Effect.option)
      if (info._tag === "None") problems.push(`${path}: no such file or directory`)
      else if (info.value.type === "Directory") {
        const found = yield* walk(fs, path)
        if (found.length === 0) problems.push(`${path}: no scenario files (*${SCENARIO_SUFFIX}) in this directory`)
        files.push(...found)
      } else files.push(path)
    }
    return { files: [...new Set(files.map((f) => resolve(f)))].map(shown), problems }
  })

/** One scenario file with its workflow and cassettes, or the lines saying what is wrong with it. */
export const loadFile = (file: string): Effect.Effect<Either.Either<LoadedFile, Array<string>>, never, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const read = yield* fs.readFileString(file).pipe(Effect.either)
    if (Either.isLeft(read)) return Either.left([`${file}: cannot read the scenario file: ${read.left.message}`])
    const text = read.right
    const document = Scenario.parseScenarioFile(text, file)
    if (Either.isLeft(document)) return Either.left(document.left.message.split("\n"))
    const dir = dirname(file)
    const workflowFile = shown(resolve(dir, document.right.workflow))
    const workflowText = yield* fs.readFileString(workflowFile).pipe(Effect.either)
    if (Either.isLeft(workflowText)) {
      const at = WorkflowYaml.locateIssues(text, file, [{ path: ["workflow"], message: `cannot read the workflow ${workflowFile}: ${workflowText.left.message}` }])
      return Either.left(at.message.split("\n"))
    }
    const plan = WorkflowYaml.parseWorkflow(workflowText.right, workflowFile)
    if (Either.isLeft(plan)) return Either.left(plan.left.message.split("\n"))
    const checked = Scenario.checkAgainstWorkflow(document.right, plan.right, text, file)
    if (Either.isLeft(checked)) return Either.left(checked.left.message.split("\n"))
    const workspace = resolve(dir, document.right.workspace ?? ".")
    const workspaceInfo = yield* fs.stat(workspace).pipe(Effect.option)
    if (workspaceInfo._tag === "None" || workspaceInfo.value.type !== "Directory") {
      const at = WorkflowYaml.locateIssues(text, file, [{ path: ["workspace"], message: `${shown(workspace)} is not a directory` }])
      return Either.left(at.message.split("\n"))
    }
    const problems: Array<string> = []
    const scenarios: Array<LoadedScenario> = []
    for (const [i, scenario] of document.right.scenarios.entries()) {
      if (scenario.cassette !== undefined) {
        const cassetteFile = shown(resolve(dir, scenario.cassette))
        const cassette = yield* Cassette.readCassetteFile(cassetteFile).pipe(Effect.either)
        if (Either.isLeft(cassette)) {
          const at = WorkflowYaml.locateIssues(text, file, [{ path: ["scenarios", i, "cassette"], message: cassette.left.message }])
          problems.push(...at.message.split("\n"))
          continue
        }
        scenarios.push({ scenario, model: { _tag: "cassette", file: cassetteFile, calls: cassette.right.calls } })
      } else if (scenario.model !== undefined) scenarios.push({ scenario, model: { _tag: "script", answers: scenario.model } })
      else scenarios.push({ scenario, model: { _tag: "none" } })
    }
    if (problems.length > 0) return Either.left(problems)
    return Either.right({
      file,
      workflow: { id: plan.right.spec.id, text: workflowText.right, file: workflowFile },
      plan: plan.right,
      workspace,
      scenarios
    })
  })

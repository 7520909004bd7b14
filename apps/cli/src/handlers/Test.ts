/**
 * `relavium test`: finds and reads every scenario file first (any problem: exit 2, nothing run),
 * then runs each scenario on a fresh offline engine (runtime/Scenario.ts) and reports: exit 0 when
 * every scenario passed, 1 when one failed.
 */
import { FileSystem } from "@effect/platform"
import { Clock, Effect, Either, Layer, Option } from "effect"
import { QuickJsSandbox, Scenario } from "@relavium/core"
import type { TestArgs } from "../commands/Test.js"
import { ExitCode } from "../ExitCodes.js"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"
import * as Report from "../scenario/Report.js"
import { discover, type LoadedFile, type LoadedScenario, loadFile } from "../scenario/Load.js"
import { scenarioLayer, toolsLayer } from "../runtime/Scenario.js"
import * as Settings from "../runtime/Settings.js"

const runOne = (file: LoadedFile, loaded: LoadedScenario) =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    const model = yield* Scenario.makeModel(loaded.model)
    const result = yield* Scenario.runScenario({ scenario: loaded.scenario, workflow: file.workflow, ranOut: model.ranOut }).pipe(
      Effect.provide(scenarioLayer(model.layer, toolsLayer(loaded.scenario.tools, file.workspace)))
    )
    const endedAt = yield* Clock.currentTimeMillis
    return {
      file: file.file,
      name: loaded.scenario.name,
      durationMs: endedAt - startedAt,
      outcome: result.outcome,
      mismatches: result.mismatches
    } satisfies Report.ScenarioReport
  })

export const test = ({ json, junit, paths }: TestArgs) =>
  Effect.gen(function* () {
    const found = yield* discover(paths)
    const problems = [...found.problems]
    const files: Array<LoadedFile> = []
    for (const file of found.files) {
      const loaded = yield* loadFile(file)
      if (Either.isLeft(loaded)) problems.push(...loaded.left)
      else files.push(loaded.right)
    }
    if (problems.length > 0) return yield* Effect.fail(new UsageProblem(`nothing was run:\n${problems.join("\n")}`))

    const startedAt = yield* Clock.currentTimeMillis
    const reports: Array<Report.ScenarioReport> = []
    yield* Effect.gen(function* () {
      for (const file of files) {
        for (const scenario of file.scenarios) reports.push(yield* runOne(file, scenario))
      }
    }).pipe(Effect.provide(Layer.orDie(QuickJsSandbox.layerQuickJs)))
    const totalMs = (yield* Clock.currentTimeMillis) - startedAt

    if (Option.isSome(junit)) {
      const fs = yield* FileSystem.FileSystem
      yield* fs
        .writeFileString(junit.value, Report.junit(reports, totalMs))
        .pipe(Effect.mapError((e) => new UsageProblem(`${junit.value}: cannot write the JUnit report: ${e.message}`)))
    }
    process.stdout.write(json ? `${Report.json(reports, totalMs)}\n` : Report.text(reports, totalMs, yield* Settings.colors))
    process.exitCode = Report.summary(reports).failed > 0 ? ExitCode.failed : ExitCode.ok
  }).pipe(Effect.catchIf(isUsageProblem, report(json)))

/** `relavium validate FILE`, and reading a workflow file for `run` and `validate`. */
import { FileSystem } from "@effect/platform"
import { Console, Effect, Either } from "effect"
import { WorkflowYaml } from "@relavium/domain"
import { isUsageProblem, report, UsageProblem } from "../Problem.js"

export const loadWorkflow = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(file)
      .pipe(Effect.mapError((e) => new UsageProblem(`${file}: cannot read the workflow: ${e.message}`)))
    const plan = WorkflowYaml.parseWorkflow(text, file)
    if (Either.isLeft(plan)) return yield* Effect.fail(new UsageProblem(plan.left.message))
    return { text, plan: plan.right }
  })

export const validate = ({ file, json }: { readonly file: string; readonly json: boolean }) =>
  loadWorkflow(file).pipe(
    Effect.flatMap(({ plan }) => {
      const edges = [...plan.incoming.values()].reduce((n, e) => n + e.length, 0)
      return json
        ? Console.log(JSON.stringify({ valid: true, workflow: plan.spec.id, nodes: plan.order.length, edges }))
        : Console.log(`${file}: valid — workflow ${plan.spec.id}, ${plan.order.length} nodes, ${edges} dependencies`)
    }),
    Effect.catchIf(isUsageProblem, report(json))
  )

/**
 * Benchmark 8: loading a workflow file, as `relavium run` and `validate` do before anything runs:
 * YAML text → parsed, decoded (Schema) and compiled into a plan (`WorkflowYaml.parseWorkflow`).
 * A chain of 10,000 no-op transforms and a 1,000-way fan-out (the engine benchmarks' workflows).
 * The first parse in the process is its own figure: a CLI parses once, before its JIT has warmed.
 */
import { Either } from "effect"
import { WorkflowYaml } from "@relavium/domain"
import { chainYaml, fanoutYaml } from "./EngineBench.js"
import { type BenchConfig, type Measurement, measured, type Outcome, settle } from "./Harness.js"

const parseOnce = (yaml: string, file: string): number => {
  const started = performance.now()
  const plan = WorkflowYaml.parseWorkflow(yaml, file)
  const ms = performance.now() - started
  if (Either.isLeft(plan)) throw new Error(`the benchmark workflow does not load: ${plan.left.message}`)
  return ms
}

export const workflowParse = async (config: BenchConfig): Promise<Outcome> => {
  const chain = config.quick ? 1000 : 10_000
  const cases = [
    { id: `workflow.parse.chain.${chain}`, label: `parse + compile, chain of ${chain.toLocaleString("en-US")}`, yaml: chainYaml(chain) },
    { id: `workflow.parse.fanout.${config.fanout}`, label: `parse + compile, fan-out of ${config.fanout.toLocaleString("en-US")}`, yaml: fanoutYaml(config.fanout) }
  ]
  const warmups = config.quick ? 1 : 2
  const runs = config.quick ? 2 : Math.max(1, Math.round(9 * config.repeat))
  const out: Array<Measurement> = []
  for (const c of cases) {
    const file = `${c.id}.relavium.yaml`
    const first = parseOnce(c.yaml, file)
    for (let i = 0; i < warmups; i++) parseOnce(c.yaml, file)
    const samples: Array<number> = []
    for (let i = 0; i < runs; i++) {
      settle()
      samples.push(parseOnce(c.yaml, file))
    }
    const bytes = `${Math.round(c.yaml.length / 1024)} KiB of YAML`
    out.push(
      { id: `${c.id}.first`, label: `${c.label}: first parse`, unit: "ms", samples: [first], sampleIs: `the process's first parseWorkflow of this text (${bytes})`, warmups: 0 },
      { id: c.id, label: c.label, unit: "ms", samples, sampleIs: `one parseWorkflow: YAML text → decoded, compiled plan (${bytes})`, warmups: warmups + 1 }
    )
  }
  return measured(out)
}

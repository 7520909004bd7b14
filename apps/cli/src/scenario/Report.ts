/**
 * The reports of `relavium test`: the terminal report (✓/✗ per scenario with its duration, and a
 * readable diff of what was expected against what the run did), the `--json` report and the JUnit
 * XML of `--junit FILE`.
 */
import { Scenario } from "@relavium/core"

export interface ScenarioReport {
  /** The scenario file, as given or found. */
  readonly file: string
  readonly name: string
  readonly durationMs: number
  readonly outcome: Scenario.Outcome
  readonly mismatches: ReadonlyArray<Scenario.Mismatch>
}

export const passed = (report: ScenarioReport): boolean => report.mismatches.length === 0

const seconds = (ms: number): string => (ms / 1000).toFixed(3)

const duration = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`)

/** The diff of a failed scenario, one line per line. */
export const failureText = (report: ScenarioReport): Array<string> => report.mismatches.flatMap(Scenario.diffLines)

export const summary = (reports: ReadonlyArray<ScenarioReport>): { readonly total: number; readonly passed: number; readonly failed: number } => {
  const ok = reports.filter(passed).length
  return { total: reports.length, passed: ok, failed: reports.length - ok }
}

/** The terminal report: scenarios grouped by file, in the order they ran. */
export const text = (reports: ReadonlyArray<ScenarioReport>, totalMs: number, color: boolean): string => {
  const paint = (code: string, s: string) => (color ? `\u001b[${code}m${s}\u001b[0m` : s)
  const lines: Array<string> = []
  let file: string | undefined
  for (const report of reports) {
    if (report.file !== file) {
      if (file !== undefined) lines.push("")
      file = report.file
      lines.push(file)
    }
    const mark = passed(report) ? paint("32", "✓") : paint("31", "✗")
    lines.push(`  ${mark} ${report.name} (${duration(report.durationMs)})`)
    if (!passed(report)) for (const line of failureText(report)) lines.push(`      ${line}`)
  }
  const { failed, passed: ok, total } = summary(reports)
  lines.push("", `${total} scenario${total === 1 ? "" : "s"}: ${ok} passed, ${failed} failed (${duration(totalMs)})`)
  return `${lines.join("\n")}\n`
}

/** The `--json` report: one object. */
export const json = (reports: ReadonlyArray<ScenarioReport>, totalMs: number): string =>
  JSON.stringify({
    ...summary(reports),
    durationMs: Math.round(totalMs),
    scenarios: reports.map((report) => ({
      file: report.file,
      name: report.name,
      passed: passed(report),
      durationMs: Math.round(report.durationMs),
      status: report.outcome.status,
      outputs: report.outcome.outputs,
      costMicrocents: report.outcome.costMicrocents,
      nodes: report.outcome.nodes,
      failures: report.mismatches
    }))
  })

/** Text made safe for XML content and attribute values; characters XML 1.0 cannot hold are dropped. */
export const escapeXml = (value: string): string =>
  value
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")

/** JUnit XML: a `testsuite` per scenario file, a `testcase` per scenario, a `failure` with its diff. */
export const junit = (reports: ReadonlyArray<ScenarioReport>, totalMs: number): string => {
  const files = [...new Set(reports.map((r) => r.file))]
  const { failed, total } = summary(reports)
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="relavium test" tests="${total}" failures="${failed}" errors="0" time="${seconds(totalMs)}">`
  ]
  for (const file of files) {
    const inFile = reports.filter((r) => r.file === file)
    const counts = summary(inFile)
    const time = inFile.reduce((ms, r) => ms + r.durationMs, 0)
    out.push(
      `  <testsuite name="${escapeXml(file)}" tests="${counts.total}" failures="${counts.failed}" errors="0" skipped="0" time="${seconds(time)}">`
    )
    for (const report of inFile) {
      const open = `    <testcase classname="${escapeXml(file)}" name="${escapeXml(report.name)}" time="${seconds(report.durationMs)}"`
      if (passed(report)) {
        out.push(`${open}/>`)
        continue
      }
      const first = report.mismatches[0]
      const message = first === undefined ? "failed" : `${first.path}: ${first.message}`
      out.push(
        `${open}>`,
        `      <failure message="${escapeXml(message)}" type="ScenarioFailure">${escapeXml(failureText(report).join("\n"))}</failure>`,
        `    </testcase>`
      )
    }
    out.push(`  </testsuite>`)
  }
  out.push(`</testsuites>`)
  return `${out.join("\n")}\n`
}

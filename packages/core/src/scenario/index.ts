/**
 * Scenario tests of a user's own workflow (docs/testing-workflows.md): the file format, the
 * offline model and tools a scenario runs on, the runner and the expectation matcher. The CLI's
 * `relavium test` chooses the layers and prints the reports.
 */
export * from "./ScenarioFile.js"
export * from "./Expect.js"
export * from "./Script.js"
export * from "./Runner.js"

/**
 * @relavium/ports/testing — one contract test suite per tag, for every layer
 * of the tag to run. Each suite is a function taking the layer (or a way to
 * make one) and registering `@effect/vitest` tests; call it at the top level
 * of a `*.test.ts` file:
 *
 *     runStoreContract("SQLite", Store.layerSqlite({ filename }))
 *
 * Only test files import this module (it imports `@effect/vitest`).
 */
export * from "./ChatStoreContract.js"
export * from "./DaemonRouterContract.js"
export * from "./KeyStoreContract.js"
export * from "./LlmProviderContract.js"
export * from "./RunQueueContract.js"
export * from "./RunStoreContract.js"
export * from "./TenancyContract.js"
export * from "./UpdateHubContract.js"
export * from "./WorkflowStoreContract.js"
export * from "./TriggersContract.js"

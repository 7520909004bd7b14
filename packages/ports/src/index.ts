/**
 * @relavium/ports — the components of Relavium as Effect tags: each service
 * interface with its typed errors, its reference memory layer and the rules
 * every implementation keeps (how a log is numbered, how a run's status moves).
 * The engine (`@relavium/core`) and the chats depend on these tags only; the
 * store, llm, keys, daemon, hub and queue packages implement them, and a
 * deployment is a choice of their layers (see docs/architecture.md).
 */
export * from "./ChatStore.js"
export * from "./DaemonRouter.js"
export * from "./EventLog.js"
export * from "./ExpressionSandbox.js"
export * from "./KeyStore.js"
export * from "./KnownSecrets.js"
export * from "./LlmProvider.js"
export * from "./ModelPricing.js"
export * from "./RunQueue.js"
export * from "./RunStore.js"
export * from "./Tenancy.js"
export * from "./Triggers.js"
export * from "./UpdateHub.js"
export * from "./WorkflowStore.js"
export * as NumberedLog from "./NumberedLog.js"
export * as Tracing from "./Tracing.js"
export * from "./Notifications.js"

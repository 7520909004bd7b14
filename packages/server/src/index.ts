/**
 * @relavium/server — the HTTP API (HttpApi + OpenAPI), run events over SSE,
 * bearer auth, the route → action table of the permission checks, the audit
 * trail of changes, and what a monolith keeps in its data directory (lock,
 * token, TLS certificate). The deployments that serve it are composed in the CLI
 * (apps/cli/src/runtime/).
 */
export * from "./Api.js"
export * as Audit from "./Audit.js"
export * as Auth from "./Auth.js"
export * from "./Authorize.js"
export * as ChatHandlers from "./ChatHandlers.js"
export * as Handlers from "./Handlers.js"
export * as HttpGuard from "./HttpGuard.js"
export * as Monolith from "./Monolith.js"
export * as ProjectDirs from "./ProjectDirs.js"
export * as Routes from "./Routes.js"
export * as Server from "./Server.js"
export * as Sse from "./Sse.js"
export * as TenancyApi from "./TenancyApi.js"
export * as TenancyHandlers from "./TenancyHandlers.js"
export * as TriggerHandlers from "./TriggerHandlers.js"
export * as TriggerInputs from "./TriggerInputs.js"
export * as TriggersApi from "./TriggersApi.js"
export * as WebhookSignature from "./WebhookSignature.js"
export * as Webhooks from "./Webhooks.js"
export * as TriggerScheduler from "./TriggerScheduler.js"
export * as NotifyApi from "./NotifyApi.js"
export * as NotifyHandlers from "./NotifyHandlers.js"
export * as Notifier from "./notify/Notifier.js"
export * as GateLinks from "./notify/GateLinks.js"
export * as Senders from "./notify/Senders.js"

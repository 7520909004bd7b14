/**
 * @relavium/server — the HTTP API (HttpApi + OpenAPI), run events over SSE,
 * bearer auth, and what a monolith keeps in its data directory (lock, token,
 * TLS certificate).
 */
export * from "./Api.js"
export * as Auth from "./Auth.js"
export * as Handlers from "./Handlers.js"
export * as Monolith from "./Monolith.js"
export * as Server from "./Server.js"
export * as Sse from "./Sse.js"

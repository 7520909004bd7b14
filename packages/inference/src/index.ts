/**
 * @relavium/inference — the managed inference gateway: an OpenAI-compatible HTTP API in front of the
 * providers, holding the org's managed keys, metering every call and enforcing budgets and rate limits.
 */
export * as Gateway from "./Gateway.js"
export * as OpenAi from "./OpenAi.js"
export * as Routing from "./Routing.js"
export * as Translate from "./Translate.js"
export * from "./Metering.js"
export * as SqlMetering from "./SqlMetering.js"
export * as RedisRateLimiter from "./RedisRateLimiter.js"

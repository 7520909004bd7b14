/**
 * @relavium/inference — the managed inference gateway: an OpenAI-compatible HTTP API in front of the
 * providers, holding the org's managed keys, metering every call and enforcing budgets and rate limits.
 */
export * from "./Metering.js"
export * as SqlMetering from "./SqlMetering.js"
export * as RedisRateLimiter from "./RedisRateLimiter.js"

/**
 * @relavium/llm: model-side building blocks that need no network — cassette
 * replay (offline stand-in for a provider) and the shipped price list.
 */
export * as Cassette from "./Cassette.js"
export * as Pricing from "./Pricing.js"

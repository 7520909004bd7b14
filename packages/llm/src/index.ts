/**
 * @relavium/llm: the model side — live provider adapters with retries and
 * fallback (`Providers.layer`), cassette replay (offline stand-in for a
 * provider) and the shipped price list.
 */
export * as Cassette from "./Cassette.js"
export * as Pricing from "./Pricing.js"
export * as Providers from "./Providers.js"
export * as Anthropic from "./adapters/Anthropic.js"
export * as Gemini from "./adapters/Gemini.js"
export * as OpenAiChat from "./adapters/OpenAiChat.js"
export * as OpenAiResponses from "./adapters/OpenAiResponses.js"
export * as ManagedGateway from "./ManagedGateway.js"

export * as NatsUpdateHub from "./NatsUpdateHub.js"

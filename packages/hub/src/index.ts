export * as NatsUpdateHub from "./NatsUpdateHub.js"
export * as NatsDaemonRouter from "./NatsDaemonRouter.js"
export * as RedisStreamsUpdateHub from "./RedisStreamsUpdateHub.js"
export * as NatsTopic from "./NatsTopic.js"

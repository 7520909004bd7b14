export * as NatsUpdateHub from "./NatsUpdateHub.js"
export * as NatsDaemonRouter from "./NatsDaemonRouter.js"

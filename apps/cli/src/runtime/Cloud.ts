/**
 * The distributed deployment's pieces in one namespace, for the in-process
 * tests and the distributed bench that compose them as `relavium server api`
 * and `relavium server worker` do.
 */
export * from "./CloudApi.js"
export * from "./CloudWorker.js"
export * from "./Deployment.js"

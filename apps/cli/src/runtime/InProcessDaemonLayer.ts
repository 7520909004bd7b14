/** What InProcessDaemon.ts loads on the first tool call. */
export { layerLocal } from "@relavium/daemon"

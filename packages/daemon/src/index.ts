/**
 * @relavium/daemon — the machine-local tools daemon: built-in file, search,
 * command, git and HTTPS tools and MCP servers, confined to one workspace;
 * its @effect/rpc protocol; and the `DaemonRouter` layers that reach it
 * in-process (`layerLocal`) or over a websocket (`layerRpcClient`); and the
 * reverse connection, where the daemon dials in to a gateway (`dialGateway`)
 * and the gateway routes calls to it (`DaemonRegistry`, `layerRouterGateway`).
 */
export * from "./DaemonRouterLayers.js"
export * from "./Server.js"
export * from "./DaemonRpcs.js"
export * from "./Dial.js"
export * from "./Gateway.js"
export * from "./ToolCall.js"
export * from "./ToolPolicy.js"
export { Daemon, type DaemonOptions, type DaemonService, DAEMON_VERSION, collectResult, make as makeDaemon } from "./Daemon.js"
export { builtins, builtinNames, type BuiltinTool, type ToolContext } from "./Builtins.js"
export { boundOutput, MAX_OUTPUT_BYTES, MAX_OUTPUT_LINES } from "./Bounding.js"
export { forbiddenAddress, type HostResolver, type HttpRequester, type ResolvedAddress, type EgressRequest, type EgressResponse, systemResolver, nodeRequester } from "./HttpEgress.js"
export { McpServerConfig, type McpManager, toolName as mcpToolName } from "./Mcp.js"
export { Coalescer, COALESCE_BYTES, COALESCE_MS, LiveBound, MAX_LIVE_BYTES, MAX_LIVE_CHUNKS, truncationNote } from "./LiveOutput.js"
export * as LazyStarter from "./LazyStarter.js"
export * as Workspace from "./Workspace.js"

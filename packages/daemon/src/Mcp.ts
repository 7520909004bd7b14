/**
 * MCP servers as daemon tools, through the official MCP SDK: stdio servers
 * (a child process) and streamable HTTP servers. A server's tool `t` is the
 * daemon tool `mcp_{server}_{t}`. A server that died (its process exited, its
 * connection closed) is reconnected on the next call.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Schema } from "effect"
import { ToolError } from "@relavium/ports"
import type { Llm } from "@relavium/domain"
import { errorText } from "./Workspace.js"

export const McpStdioServer = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]+$/)),
  transport: Schema.Literal("stdio"),
  command: Schema.String,
  args: Schema.optional(Schema.Array(Schema.String)),
  env: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  cwd: Schema.optional(Schema.String),
  tools_allowlist: Schema.optional(Schema.Array(Schema.String))
})
export const McpHttpServer = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]+$/)),
  transport: Schema.Literal("http"),
  url: Schema.String,
  headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  tools_allowlist: Schema.optional(Schema.Array(Schema.String))
})
export const McpServerConfig = Schema.Union(McpStdioServer, McpHttpServer)
export type McpServerConfig = typeof McpServerConfig.Type

const CLIENT_INFO = { name: "relavium-daemon", version: "0.1.0" }
const CONNECT_TIMEOUT_MS = 15_000
const CALL_TIMEOUT_MS = 120_000

export const toolName = (server: string, tool: string) => `mcp_${server}_${tool}`

interface RemoteTool {
  readonly name: string
  readonly description?: string | undefined
  readonly inputSchema: Record<string, unknown>
}

interface Connection {
  readonly client: Client
  readonly tools: ReadonlyArray<RemoteTool>
  /** The server process, for a stdio server. */
  readonly pid: number | undefined
  closed: boolean
}

export interface McpCallResult {
  readonly output: string
  readonly isError: boolean
}

export interface McpManager {
  readonly servers: ReadonlyArray<McpServerConfig>
  /** Connects every configured server; a server that fails is reported and retried on use. */
  readonly connectAll: Effect.Effect<ReadonlyArray<{ readonly id: string; readonly error?: string | undefined }>>
  /** The server and tool a daemon tool name refers to, if it is an MCP tool name of a configured server. */
  readonly parse: (name: string) => { readonly server: McpServerConfig; readonly tool: string } | undefined
  readonly definition: (name: string) => Effect.Effect<Llm.ToolDef, ToolError>
  readonly definitions: Effect.Effect<ReadonlyArray<Llm.ToolDef>>
  readonly call: (name: string, args: Record<string, unknown>) => Effect.Effect<McpCallResult, ToolError>
  /** The pid of a connected stdio server (tests kill it to exercise reconnection). */
  readonly pid: (serverId: string) => number | undefined
  readonly closeAll: Effect.Effect<void>
}

const unavailable = (message: string) => new ToolError({ code: "tool_unavailable", message })

export const makeManager = (servers: ReadonlyArray<McpServerConfig>, workspaceRoot: string): McpManager => {
  const connections = new Map<string, Connection>()
  const connecting = new Map<string, Promise<Connection>>()

  const open = async (server: McpServerConfig): Promise<Connection> => {
    const client = new Client(CLIENT_INFO, { capabilities: {} })
    const transport =
      server.transport === "stdio"
        ? new StdioClientTransport({
            command: server.command,
            args: [...(server.args ?? [])],
            env: { ...getDefaultEnvironment(), ...server.env },
            cwd: server.cwd ?? workspaceRoot,
            stderr: "ignore"
          })
        : new StreamableHTTPClientTransport(new URL(server.url), {
            requestInit: server.headers !== undefined ? { headers: { ...server.headers } } : undefined
          })
    try {
      await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS })
      const listed: Array<RemoteTool> = []
      let cursor: string | undefined
      do {
        const page = await client.listTools(cursor !== undefined ? { cursor } : undefined, { timeout: CONNECT_TIMEOUT_MS })
        listed.push(...page.tools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema as Record<string, unknown> })))
        cursor = page.nextCursor
      } while (cursor !== undefined)
      const allow = server.tools_allowlist
      const connection: Connection = {
        client,
        tools: allow === undefined ? listed : listed.filter((t) => allow.includes(t.name)),
        pid: transport instanceof StdioClientTransport ? (transport.pid ?? undefined) : undefined,
        closed: false
      }
      client.onclose = () => {
        connection.closed = true
        if (connections.get(server.id) === connection) connections.delete(server.id)
      }
      return connection
    } catch (error) {
      await client.close().catch(() => undefined)
      throw error
    }
  }

  /** The live connection to a server, opening (or re-opening) it if needed; concurrent callers share one attempt. */
  const ensure = (server: McpServerConfig): Effect.Effect<Connection, ToolError> =>
    Effect.suspend(() => {
      const live = connections.get(server.id)
      if (live !== undefined && !live.closed) return Effect.succeed(live)
      let pending = connecting.get(server.id)
      if (pending === undefined) {
        pending = open(server).then(
          (connection) => {
            connecting.delete(server.id)
            connections.set(server.id, connection)
            return connection
          },
          (error: unknown) => {
            connecting.delete(server.id)
            throw error
          }
        )
        connecting.set(server.id, pending)
      }
      const attempt = pending
      return Effect.tryPromise({
        try: () => attempt,
        catch: (error) => unavailable(`the MCP server '${server.id}' is not reachable: ${errorText(error)}`)
      })
    })

  const parse = (name: string) => {
    if (!name.startsWith("mcp_")) return undefined
    let best: { server: McpServerConfig; tool: string } | undefined
    for (const server of servers) {
      const prefix = `mcp_${server.id}_`
      if (name.startsWith(prefix) && name.length > prefix.length && (best === undefined || server.id.length > best.server.id.length)) {
        best = { server, tool: name.slice(prefix.length) }
      }
    }
    return best
  }

  const toDef = (server: McpServerConfig, tool: RemoteTool): Llm.ToolDef => ({
    name: toolName(server.id, tool.name),
    description: tool.description ?? `the ${tool.name} tool of the MCP server ${server.id}`,
    parameters: tool.inputSchema
  })

  const definition = (name: string) =>
    Effect.gen(function* () {
      const target = parse(name)
      if (target === undefined) return yield* unavailable(`no tool named '${name}' is available on this daemon`)
      const connection = yield* ensure(target.server)
      const tool = connection.tools.find((t) => t.name === target.tool)
      if (tool === undefined) {
        return yield* unavailable(`the MCP server '${target.server.id}' has no tool '${target.tool}' (or it is not in its tools_allowlist)`)
      }
      return toDef(target.server, tool)
    })

  const call = (name: string, args: Record<string, unknown>) =>
    Effect.gen(function* () {
      const target = parse(name)
      if (target === undefined) return yield* unavailable(`no tool named '${name}' is available on this daemon`)
      const connection = yield* ensure(target.server)
      if (!connection.tools.some((t) => t.name === target.tool)) {
        return yield* unavailable(`the MCP server '${target.server.id}' has no tool '${target.tool}' (or it is not in its tools_allowlist)`)
      }
      const result = yield* Effect.tryPromise({
        try: (signal) =>
          connection.client.callTool({ name: target.tool, arguments: args }, undefined, { signal, timeout: CALL_TIMEOUT_MS }),
        catch: (error) =>
          connection.closed
            ? unavailable(`the MCP server '${target.server.id}' went away during the call (it will be restarted on the next call): ${errorText(error)}`)
            : new ToolError({ code: "tool_failed", message: `${name}: ${errorText(error)}` })
      })
      const parts = Array.isArray(result.content) ? (result.content as Array<Record<string, unknown>>) : []
      const text = parts
        .map((part) => {
          switch (part.type) {
            case "text":
              return String(part.text)
            case "image":
            case "audio":
              return `[${String(part.type)}: ${String(part.mimeType)}]`
            case "resource_link":
              return `[resource: ${String(part.uri)}]`
            case "resource": {
              const resource = part.resource as Record<string, unknown> | undefined
              return typeof resource?.text === "string" ? resource.text : `[resource: ${String(resource?.uri)}]`
            }
            default:
              return JSON.stringify(part)
          }
        })
        .join("\n")
      const structured = parts.length === 0 && result.structuredContent !== undefined ? JSON.stringify(result.structuredContent) : ""
      return { output: text || structured, isError: result.isError === true }
    })

  const definitions = Effect.forEach(servers, (server) =>
    ensure(server).pipe(
      Effect.map((connection) => connection.tools.map((tool) => toDef(server, tool))),
      Effect.orElseSucceed(() => [] as Array<Llm.ToolDef>)
    )
  ).pipe(Effect.map((lists) => lists.flat()))

  const connectAll = Effect.forEach(
    servers,
    (server) =>
      ensure(server).pipe(
        Effect.as({ id: server.id }),
        Effect.catchAll((error) => Effect.succeed({ id: server.id, error: error.message }))
      ),
    { concurrency: "unbounded" }
  )

  const closeAll = Effect.promise(async () => {
    const open = [...connections.values()]
    connections.clear()
    await Promise.all(open.map((c) => c.client.close().catch(() => undefined)))
  })

  return {
    servers,
    connectAll,
    parse,
    definition,
    definitions,
    call,
    pid: (serverId) => connections.get(serverId)?.pid,
    closeAll
  }
}

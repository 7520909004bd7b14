/**
 * Every Schema whose values cross a process boundary as a job or a message
 * payload, in one place: what test/security/payload-schemas.test.ts checks
 * can never carry a key. A new job, message or RPC belongs here.
 *
 * - RunQueue jobs (BullMQ job `data` in Redis, between api and workers);
 * - run events on the UpdateHub (NATS messages, Redis Streams entries), which
 *   are also what SSE delivers to clients and what the event log stores;
 * - chat events (stored and delivered over SSE);
 * - the NATS DaemonRouter messages between workers and the gateway (request,
 *   reply, cancel);
 * - the tools daemon's RPCs (a websocket between a gateway or a process and a
 *   daemon): each RPC's payload, success and error, and the auth middleware's
 *   failure.
 */
import type { Schema } from "effect"
import { Job } from "@relavium/ports"
import { RunEvent } from "@relavium/domain"
import { NatsDaemonRouter } from "@relavium/hub"
import { ChatEvent } from "@relavium/chat"
import { DaemonAuth, DaemonRpcs } from "../../packages/daemon/src/index.js"

export interface Boundary {
  /** Which payload, named as a reader of the code would look it up. */
  readonly name: string
  /** Between which processes it travels. */
  readonly crosses: string
  readonly schema: Schema.Schema.All
}

const rpcBoundaries: Array<Boundary> = [...DaemonRpcs.requests.values()].flatMap((rpc) => [
  { name: `DaemonRpcs.${rpc._tag} payload`, crosses: "websocket to a tools daemon", schema: rpc.payloadSchema as Schema.Schema.All },
  { name: `DaemonRpcs.${rpc._tag} success`, crosses: "websocket from a tools daemon", schema: rpc.successSchema as Schema.Schema.All },
  { name: `DaemonRpcs.${rpc._tag} error`, crosses: "websocket from a tools daemon", schema: rpc.errorSchema as Schema.Schema.All }
])

export const boundarySchemas: ReadonlyArray<Boundary> = [
  { name: "RunQueue.Job", crosses: "BullMQ job data in Redis (api → workers)", schema: Job },
  { name: "RunEvent.RunEvent", crosses: "UpdateHub on NATS or Redis Streams (workers → api), SSE to clients", schema: RunEvent.RunEvent },
  { name: "ChatEvent", crosses: "SSE to clients", schema: ChatEvent },
  { name: "NatsDaemonRouter.Request", crosses: "NATS (worker → gateway)", schema: NatsDaemonRouter.Request },
  { name: "NatsDaemonRouter.Reply", crosses: "NATS (gateway → worker)", schema: NatsDaemonRouter.Reply },
  { name: "NatsDaemonRouter.Cancel", crosses: "NATS (worker → gateway)", schema: NatsDaemonRouter.Cancel },
  ...rpcBoundaries,
  { name: "DaemonAuth failure", crosses: "websocket from a tools daemon", schema: DaemonAuth.failure }
]

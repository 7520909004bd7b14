/**
 * @relavium/chat — the coding-agent chat: `ChatService` (projects, chats,
 * turns with approvals, worktrees, recovery, export), its event stream
 * (`ChatEvent`, `ChatHub`), the per-workspace tools (`ChatTools`) and git
 * worktrees (`Worktrees`). The repository is `ChatStore` in @relavium/core,
 * with its SQL layers in @relavium/store.
 */
export * from "./ChatError.js"
export * from "./ChatEvent.js"
export * as ChatExport from "./ChatExport.js"
export { ChatHub } from "./ChatHub.js"
export * from "./ChatService.js"
export * as ChatSettings from "./ChatSettings.js"
export * from "./ChatTools.js"
export * as Conversation from "./Conversation.js"
export { Worktrees } from "./Worktrees.js"
export { ChatCancels, ChatTurnQueue } from "./TurnQueue.js"
export { layerTurnJobs, type TurnJobsOptions } from "./TurnJobs.js"

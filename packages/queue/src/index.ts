export * as BullMqRunQueue from "./BullMqRunQueue.js"

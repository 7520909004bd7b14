/** The store contracts against the in-memory layers of core (the reference behaviour). */
import { Layer } from "effect"
import { RunStore, WorkflowStore } from "@relavium/ports"
import { runStoreContract, workflowStoreContract } from "./contract.js"

runStoreContract("memory", RunStore.layerMemory as Layer.Layer<RunStore, never>)
workflowStoreContract("memory", WorkflowStore.layerMemory)

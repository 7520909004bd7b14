/**
 * Every contract suite against the reference memory layers of @relavium/ports
 * (the behaviour the other layers are held to). The in-process `DaemonRouter`
 * is given the suite's small confined `read_file`.
 */
import {
  ChatStore,
  DaemonRouter,
  KeyStore,
  RunQueue,
  layerTenancyMemory,
  RunStore,
  UpdateHub,
  WorkflowStore
} from "@relavium/ports"
import {
  chatStoreContract,
  daemonRouterContract,
  keyStoreContract,
  runQueueContract,
  runStoreContract,
  tenancyContract,
  updateHubContract,
  workflowStoreContract,
  workspaceReadFile
} from "@relavium/ports/testing"

runStoreContract("memory", RunStore.layerMemory)
workflowStoreContract("memory", WorkflowStore.layerMemory)
chatStoreContract("memory", ChatStore.layerMemory)
updateHubContract("memory", () => UpdateHub.layerMemory)
runQueueContract("memory", () => ({ instance: (concurrency) => RunQueue.layerMemory(concurrency) }), { distributed: false, delaysOnClock: true })
keyStoreContract("memory", (seed) => KeyStore.layerMemory(seed))
tenancyContract("memory", layerTenancyMemory)

daemonRouterContract("in-process", (workspace) => DaemonRouter.layerInProcess([workspaceReadFile(workspace)]))

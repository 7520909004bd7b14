/** The memory `Triggers` layer against the contract every layer meets. */
import { layerTriggersMemory } from "@relavium/ports"
import { triggersContract } from "@relavium/ports/testing"

triggersContract("memory", layerTriggersMemory)
